//! For the integration tests that need the real RabbitMQ and PostgreSQL on
//! loopback. When a service does not answer, the test fails if `CI` is set or
//! `HORIZON_REQUIRE_SERVICES=1`; otherwise it prints a loud `SKIPPED` line and
//! returns, so a plain `cargo test` on a machine without them still passes
//! and says why.

pub mod postgres;
pub mod tools;

use std::io::Write;
use std::time::Duration;

/// A service the tests talk to.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub addr: &'static str,
}

pub const RABBITMQ: Service = Service {
    name: "RabbitMQ",
    addr: "127.0.0.1:5672",
};

pub const POSTGRES: Service = Service {
    name: "PostgreSQL",
    addr: "127.0.0.1:5432",
};

/// The broker and database URLs of the services above.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const STORE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether a missing service must fail the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
        || std::env::var("HORIZON_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Fails `test` when services are required, else prints a loud skip. Always
/// returns `false`, for `if !available_or_skip(..) { return; }`.
pub fn skip(test: &str, why: &str) -> bool {
    assert!(
        !required(),
        "{test}: {why} (required because CI or HORIZON_REQUIRE_SERVICES is set)"
    );
    // Straight to stderr: the test harness does not capture it, so the skip
    // shows in the output of a plain `cargo test`.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {test} because {why} ***\n"
    );
    false
}

/// Whether tests that stop or restart shared services (RabbitMQ, PostgreSQL)
/// may run: only with `HORIZON_TEST_DISRUPTIVE=1` (`.ci/run` sets it), so a
/// developer's `cargo test` never takes their broker or database down.
/// Without it the test prints a loud `SKIPPED` line, even in CI.
pub fn disruptive_allowed(test: &str) -> bool {
    if std::env::var("HORIZON_TEST_DISRUPTIVE").is_ok_and(|v| v == "1") {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {test} because it stops or restarts a shared service; \
         set HORIZON_TEST_DISRUPTIVE=1 to run it ***\n"
    );
    false
}

/// Whether every service answers; fails or skips loudly (see [`skip`]) if not.
pub fn available_or_skip(test: &str, services: &[Service]) -> bool {
    let down: Vec<String> = services
        .iter()
        .filter(|s| {
            let addr = s.addr.parse().expect("a literal socket address");
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
        })
        .map(|s| format!("{} is not reachable on {}", s.name, s.addr))
        .collect();
    down.is_empty() || skip(test, &down.join(", "))
}
