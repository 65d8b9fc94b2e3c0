//! The worker: takes fit and forecast jobs, runs the engine, keeps fitted
//! models in the store and answers.
