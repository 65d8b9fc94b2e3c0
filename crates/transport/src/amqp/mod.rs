//! The RabbitMQ transport (lapin): the gateway side ([`AmqpTransport`]) and the
//! worker side ([`run_worker`]).
//!
//! Topology, all names prefixed by a namespace (default `horizon`) so that
//! several deployments or tests can share one broker:
//! - `{ns}.jobs`: topic exchange; fits are published with routing key
//!   `job.fit`. The `{ns}.forecast` queue is bound to it with `job.forecast`,
//!   but the gateway publishes forecasts straight to that queue through the
//!   default exchange (cheaper for the broker: no topic routing).
//! - `{ns}.fit`: quorum queue (durable, replicated) bound to `job.fit`, with
//!   `x-delivery-limit` so that a fit that keeps crashing workers is
//!   dead-lettered by the broker instead of looping forever.
//! - `{ns}.forecast`: durable classic queue bound to `job.forecast`; forecasts
//!   travel in batches (see `batch`) as transient messages (idempotent
//!   reads, the client can retry) for throughput. Classic queues count no
//!   deliveries, so workers count redeliveries themselves in a header (see
//!   [`ATTEMPTS_HEADER`]).
//! - `{ns}.forecast.retry`: durable classic queue of forecasts that were in
//!   hand when a worker died, one per message, which workers take one at a
//!   time, so that a forecast that crashes workers is dead-lettered alone.
//! - `{ns}.dlx` exchange and `{ns}.dead` queue: dead letters. Whoever consumes
//!   `{ns}.dead` (the gateway, and workers when given a store) marks a dead
//!   fit's version failed in the store, answers the waiting client with an
//!   error reply and parks a copy in `{ns}.parked` for operators.
//!
//! Answers travel by direct reply-to (`amq.rabbitmq.reply-to`) with
//! correlation ids. Fits are persistent and published with publisher
//! confirms; a worker acknowledges a job only after its handler returned
//! (the result is stored) and the answer was published: at-least-once.
//! Both sides reconnect with backoff; while the broker is unreachable the
//! gateway fails requests at once with [`TransportError::Unavailable`].

mod batch;
mod dead_letter;
mod gateway;
mod queue_metrics;
mod worker;

pub use gateway::AmqpTransport;
pub use worker::run_worker;

use crate::TransportError;
use lapin::{
    options::{BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    protocol::basic::AMQPProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
};
use std::{
    sync::{Mutex, RwLock},
    time::Duration,
};

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "horizon";
/// Routing key of fit jobs.
pub const FIT_KEY: &str = "job.fit";
/// Routing key of forecast jobs.
pub const FORECAST_KEY: &str = "job.forecast";
/// AMQP `type` of a backtest (sent on the fit queue, CPU-heavy like a fit)
/// and of its reply.
pub const BACKTEST_KIND: &str = "horizon.backtest";
/// Header a worker keeps on a redelivered forecast: how often it was delivered.
pub const ATTEMPTS_HEADER: &str = "x-horizon-attempts";
/// Header of an error answer (a dead-lettered job); the body is empty, or the
/// batch itself for a forecast batch.
pub const ERROR_HEADER: &str = "x-horizon-error";
/// Header of an answer too large for the broker, instead of the answer: a
/// fit's outcome is then read from the store.
pub const TOO_LARGE_HEADER: &str = "x-horizon-too-large";
/// RabbitMQ's default `max_message_size` (3.8 to 3.13; 4.0 lowered it to
/// 16 MiB): set [`AmqpConfig::max_message_bytes`] to the broker's own.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;
const REPLY_TO: &str = "amq.rabbitmq.reply-to";
/// How long a fit whose answer was lost with the connection waits for its
/// version to settle in the store.
const LOST_REPLY_WAIT: Duration = Duration::from_secs(30);

/// Checks a namespace: 1 to 40 characters from `a-z 0-9 _`, starting with a
/// letter (it also names a PostgreSQL schema).
pub fn validate_namespace(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 40
        && ns.starts_with(|c: char| c.is_ascii_lowercase())
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "namespace must be 1 to 40 characters from a-z, 0-9, '_' starting with a letter, got '{ns}'"
        ))
    }
}

/// Settings shared by the gateway and the worker side.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`
    pub uri: String,
    pub namespace: String,
    /// How long the gateway waits for a fit's answer.
    pub fit_timeout: Duration,
    /// How long the gateway waits for a forecast's answer; also the message
    /// TTL of forecasts, so a forecast nobody waits for any more is dropped.
    pub forecast_timeout: Duration,
    /// Publish forecasts persistent with publisher confirms (slower).
    pub persistent_forecasts: bool,
    /// Unacknowledged fits one worker holds at a time.
    pub fit_prefetch: u16,
    /// Unacknowledged forecast messages (batches) one worker holds at a time.
    pub forecast_prefetch: u16,
    /// Most forecasts the gateway puts in one message; 1 sends each alone.
    pub forecast_batch: usize,
    /// Deliveries of a job before it is dead-lettered.
    pub max_deliveries: u32,
    /// The largest message the broker accepts (its `max_message_size`): a
    /// larger one would make it close the channel. Larger fits are refused
    /// before they are registered; a larger answer becomes an error answer.
    pub max_message_bytes: usize,
}

impl AmqpConfig {
    pub fn new(uri: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            namespace: namespace.into(),
            fit_timeout: Duration::from_secs(120),
            forecast_timeout: Duration::from_secs(30),
            persistent_forecasts: false,
            fit_prefetch: 4,
            forecast_prefetch: 128,
            forecast_batch: 32,
            max_deliveries: 3,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// The names of the exchanges and queues of one namespace.
#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub dead_exchange: String,
    pub fit_queue: String,
    pub forecast_queue: String,
    /// Forecasts that were in hand when a worker died, taken one at a time.
    pub retry_queue: String,
    pub dead_queue: String,
    pub parked_queue: String,
}

impl Topology {
    pub fn new(namespace: &str) -> Self {
        Self {
            exchange: format!("{namespace}.jobs"),
            dead_exchange: format!("{namespace}.dlx"),
            fit_queue: format!("{namespace}.fit"),
            forecast_queue: format!("{namespace}.forecast"),
            retry_queue: format!("{namespace}.forecast.retry"),
            dead_queue: format!("{namespace}.dead"),
            parked_queue: format!("{namespace}.parked"),
        }
    }

    /// Declares everything; idempotent (same arguments every time), so the
    /// gateway and every worker call it at each (re)connection.
    pub async fn declare(&self, ch: &Channel, max_deliveries: u32) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for x in [&self.exchange, &self.dead_exchange] {
            ch.exchange_declare(x, ExchangeKind::Topic, durable, FieldTable::default())
                .await?;
        }
        let dq = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut fit_args = FieldTable::default();
        fit_args.insert("x-queue-type".into(), long_str("quorum"));
        // The broker counts the first delivery apart: limit N-1 means N deliveries.
        fit_args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(max_deliveries.saturating_sub(1).min(i32::MAX as u32) as i32),
        );
        fit_args.insert(
            "x-dead-letter-exchange".into(),
            long_str(&self.dead_exchange),
        );
        ch.queue_declare(&self.fit_queue, dq, fit_args).await?;
        let mut fc_args = FieldTable::default();
        fc_args.insert("x-queue-type".into(), long_str("classic"));
        fc_args.insert(
            "x-dead-letter-exchange".into(),
            long_str(&self.dead_exchange),
        );
        ch.queue_declare(&self.forecast_queue, dq, fc_args.clone())
            .await?;
        ch.queue_declare(&self.retry_queue, dq, fc_args).await?;
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), long_str("classic"));
        ch.queue_declare(&self.dead_queue, dq, dead_args).await?;
        let mut parked_args = FieldTable::default();
        parked_args.insert("x-queue-type".into(), long_str("classic"));
        parked_args.insert("x-max-length".into(), AMQPValue::LongInt(10_000));
        ch.queue_declare(&self.parked_queue, dq, parked_args)
            .await?;
        let bind = |q: &str, x: &str, key: &str| {
            let (q, x, key) = (q.to_string(), x.to_string(), key.to_string());
            let ch = ch.clone();
            async move {
                ch.queue_bind(
                    &q,
                    &x,
                    &key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
            }
        };
        bind(&self.fit_queue, &self.exchange, FIT_KEY).await?;
        bind(&self.forecast_queue, &self.exchange, FORECAST_KEY).await?;
        bind(&self.dead_queue, &self.dead_exchange, "#").await?;
        Ok(())
    }
}

/// Deletes a namespace's queues (with any messages in them) and exchanges.
/// For tests and for operators retiring a deployment.
pub async fn delete_topology(uri: &str, namespace: &str) -> Result<(), TransportError> {
    let conn = connect(uri, "horizon-admin").await.map_err(unavailable)?;
    let ch = conn.create_channel().await.map_err(unavailable)?;
    let t = Topology::new(namespace);
    for q in [
        &t.fit_queue,
        &t.forecast_queue,
        &t.retry_queue,
        &t.dead_queue,
        &t.parked_queue,
    ] {
        ch.queue_delete(q, Default::default())
            .await
            .map_err(unavailable)?;
    }
    for x in [&t.exchange, &t.dead_exchange] {
        ch.exchange_delete(x, Default::default())
            .await
            .map_err(unavailable)?;
    }
    let _ = conn.close(200, "done").await;
    Ok(())
}

/// The length of `value` encoded as JSON, counted without building it.
fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to `Count` cannot fail, nor can encoding our own types.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// How many consumers `queue` has now (a passive declare). For tests and
/// operators checking that no consumer outlives its worker.
pub async fn queue_consumers(uri: &str, queue: &str) -> Result<u32, TransportError> {
    let conn = connect(uri, "horizon-admin").await.map_err(unavailable)?;
    let ch = conn.create_channel().await.map_err(unavailable)?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare(queue, passive, FieldTable::default())
        .await
        .map_err(unavailable)?;
    let _ = conn.close(200, "done").await;
    Ok(q.consumer_count())
}

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn header_str(props: &AMQPProperties, name: &str) -> Option<String> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn header_int(props: &AMQPProperties, name: &str) -> Option<i64> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

async fn connect(uri: &str, name: &str) -> Result<Connection, lapin::Error> {
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name(name.into());
    Connection::connect(uri, props).await
}

/// Publishes an answer to a requester's reply-to address.
async fn publish_reply(
    ch: &Channel,
    reply_to: &ShortString,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), lapin::Error> {
    ch.basic_publish(
        "",
        reply_to.as_str(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await
    .map(|_| ())
}

fn unavailable(e: impl std::fmt::Display) -> TransportError {
    TransportError::Unavailable(format!("broker: {e}"))
}

/// Backoff between reconnection attempts: 100 ms doubling up to 5 s.
struct Backoff {
    wait: Duration,
    failures: u32,
}

impl Backoff {
    fn new() -> Self {
        Self {
            wait: Duration::from_millis(100),
            failures: 0,
        }
    }
    fn reset(&mut self) {
        *self = Self::new();
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Duration::from_secs(5));
    }
    /// Counts a failed connection; true when it should be logged as a
    /// warning: the first, then about every minute (every 12th, at the
    /// 5 s ceiling), so a broker that stays away is said, not shouted.
    fn failed(&mut self) -> bool {
        self.failures += 1;
        self.failures % 12 == 1
    }
}

/// Checks a broker URL before anything connects: a URL that can never
/// work (not `amqp://` or `amqps://`, unparseable) is a startup error, not
/// an endless reconnection loop.
pub fn check_uri(uri: &str) -> Result<(), String> {
    uri.parse::<lapin::uri::AMQPUri>().map(|_| ()).map_err(|e| {
        format!("'{uri}' is not an AMQP URL ({e}); e.g. amqp://guest:guest@127.0.0.1:5672/%2f")
    })
}

fn set_lock<T>(l: &RwLock<T>, v: T) {
    match l.write() {
        Ok(mut g) => *g = v,
        Err(p) => *p.into_inner() = v,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_checked_and_failures_said_now_and_then() {
        assert!(check_uri("amqp://guest:guest@127.0.0.1:5672/%2f").is_ok());
        assert!(check_uri("amqps://broker.example/vhost").is_ok());
        for bad in ["garbage", "http://127.0.0.1:5672", ""] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
        let mut b = Backoff::new();
        let said: Vec<bool> = (0..25).map(|_| b.failed()).collect();
        let at: Vec<usize> = said
            .iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at, [0, 12, 24]);
        b.reset();
        assert!(b.failed());
    }
}
