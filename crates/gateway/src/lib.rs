//! Horizon's HTTP API: parses requests, enforces the consistency rule and
//! dispatches jobs through a transport.
