//! Support for the worker's integration tests: a private PostgreSQL server
//! that a test starts, stops and restarts as it likes (never the shared one),
//! from `test-services`.

pub use test_services::postgres::PrivatePostgres;
