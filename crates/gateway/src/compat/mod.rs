//! Endpoints that speak other services' protocols, translated to Horizon's
//! engine, so that clients written for them work by changing one URL.

pub mod nixtla;
