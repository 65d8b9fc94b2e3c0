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
//!   are transient messages (idempotent reads, the client can retry) for
//!   throughput. Classic queues count no deliveries, so workers count
//!   redeliveries themselves in a header (see [`ATTEMPTS_HEADER`]).
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

use crate::{JobHandler, Transport, TransportError};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions,
        BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
        QueueBindOptions, QueueDeclareOptions,
    },
    protocol::basic::AMQPProperties,
    publisher_confirm::Confirmation,
    types::{AMQPValue, FieldTable, LongString, ShortString},
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
};
use protocol::{FitJob, FitReply, ForecastJob, ForecastReply, JobError};
use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};
use store::{ModelStore, StoreError, VersionStatus};
use tokio::{
    sync::{oneshot, Notify},
    task::JoinSet,
};
use tracing::{debug, error, info, warn};

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "horizon";
/// Routing key of fit jobs.
pub const FIT_KEY: &str = "job.fit";
/// Routing key of forecast jobs.
pub const FORECAST_KEY: &str = "job.forecast";
/// Header a worker keeps on a redelivered forecast: how often it was delivered.
pub const ATTEMPTS_HEADER: &str = "x-horizon-attempts";
/// Header of an error answer (a dead-lettered job); the body is empty.
pub const ERROR_HEADER: &str = "x-horizon-error";
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
    /// Unacknowledged forecasts one worker holds at a time.
    pub forecast_prefetch: u16,
    /// Deliveries of a job before it is dead-lettered.
    pub max_deliveries: u32,
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
            max_deliveries: 3,
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
        ch.queue_declare(&self.forecast_queue, dq, fc_args).await?;
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

fn unavailable(e: impl std::fmt::Display) -> TransportError {
    TransportError::Unavailable(format!("broker: {e}"))
}

/// Backoff between reconnection attempts: 100 ms doubling up to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(100))
    }
    fn reset(&mut self) {
        self.0 = Duration::from_millis(100);
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------- gateway side

/// What came back for one request.
enum RawReply {
    Data(Vec<u8>),
    /// The job was dead-lettered; the reason.
    DeadLettered(String),
    /// The connection was lost before the answer came.
    Lost(String),
}

/// One live connection of the gateway.
struct Link {
    conn: Connection,
    fit: Channel,
    forecast: Channel,
}

struct Inner {
    cfg: AmqpConfig,
    topo: Topology,
    link: RwLock<Option<Arc<Link>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<RawReply>>>,
    next_id: AtomicU64,
    last_error: Mutex<String>,
    store: Option<Arc<dyn ModelStore>>,
}

/// The gateway's side of the RabbitMQ transport. Connects in the background
/// and reconnects with backoff; see the module doc.
pub struct AmqpTransport {
    inner: Arc<Inner>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for AmqpTransport {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl AmqpTransport {
    /// Starts connecting in the background and returns at once; requests
    /// fail with `Unavailable` until the first connection is up (see
    /// [`Self::wait_connected`]). With a `store`, the gateway also handles
    /// dead letters, and a fit whose answer was lost with the connection is
    /// answered from the store once its version settles.
    pub fn start(cfg: AmqpConfig, store: Option<Arc<dyn ModelStore>>) -> Self {
        let inner = Arc::new(Inner {
            topo: Topology::new(&cfg.namespace),
            cfg,
            link: RwLock::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            last_error: Mutex::new("not connected yet".to_string()),
            store,
        });
        let supervisor = tokio::spawn(supervise(inner.clone()));
        Self { inner, supervisor }
    }

    /// Waits until connected, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.inner.current().is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(unavailable(self.inner.last_error()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn supervise(inner: Arc<Inner>) {
    let mut backoff = Backoff::new();
    loop {
        let died = Arc::new(Notify::new());
        match open_link(&inner, died.clone()).await {
            Ok(link) => {
                backoff.reset();
                info!(namespace = %inner.cfg.namespace, "gateway connected to the broker");
                set_lock(&inner.link, Some(link));
                died.notified().await;
                set_lock(&inner.link, None);
                warn!("gateway lost its broker connection; reconnecting");
                inner.fail_pending("the connection to the broker was lost");
            }
            Err(e) => {
                debug!("gateway cannot reach the broker: {e}");
                *lock(&inner.last_error) = e.to_string();
            }
        }
        backoff.wait().await;
    }
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

async fn open_link(inner: &Arc<Inner>, died: Arc<Notify>) -> Result<Arc<Link>, lapin::Error> {
    let conn = connect(&inner.cfg.uri, "horizon-gateway").await?;
    {
        let died = died.clone();
        let inner = inner.clone();
        conn.on_error(move |e| {
            *lock(&inner.last_error) = e.to_string();
            died.notify_one();
        });
    }
    let fit = conn.create_channel().await?;
    inner.topo.declare(&fit, inner.cfg.max_deliveries).await?;
    fit.confirm_select(ConfirmSelectOptions::default()).await?;
    let forecast = conn.create_channel().await?;
    if inner.cfg.persistent_forecasts {
        forecast
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
    }
    for ch in [&fit, &forecast] {
        let consumer = ch
            .basic_consume(
                REPLY_TO,
                "",
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let inner = inner.clone();
        let died = died.clone();
        tokio::spawn(async move {
            let mut consumer = consumer;
            while let Some(d) = consumer.next().await {
                match d {
                    Ok(d) => inner.deliver(d),
                    Err(e) => {
                        *lock(&inner.last_error) = e.to_string();
                        break;
                    }
                }
            }
            died.notify_one();
        });
    }
    if let Some(store) = inner.store.clone() {
        spawn_dead_letter_handler(&conn, inner.topo.clone(), store, died.clone()).await?;
    }
    Ok(Arc::new(Link {
        conn,
        fit,
        forecast,
    }))
}

impl Inner {
    fn last_error(&self) -> String {
        lock(&self.last_error).clone()
    }

    fn current(&self) -> Result<Arc<Link>, TransportError> {
        let link = match self.link.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        match link {
            Some(l) if l.conn.status().connected() => Ok(l),
            _ => Err(unavailable(self.last_error())),
        }
    }

    fn register(&self) -> (String, oneshot::Receiver<RawReply>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        (id, rx)
    }

    fn forget(&self, id: &str) {
        lock(&self.pending).remove(id);
    }

    fn deliver(&self, d: Delivery) {
        let Some(id) = d
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
        else {
            debug!("reply without correlation id dropped");
            return;
        };
        let Some(tx) = lock(&self.pending).remove(&id) else {
            // The requester gave up (timeout) or a duplicate answer.
            return;
        };
        let reply = match header_str(&d.properties, ERROR_HEADER) {
            Some(reason) => RawReply::DeadLettered(reason),
            None => RawReply::Data(d.data),
        };
        let _ = tx.send(reply);
    }

    fn fail_pending(&self, why: &str) {
        let drained: Vec<_> = lock(&self.pending).drain().collect();
        for (_, tx) in drained {
            let _ = tx.send(RawReply::Lost(why.to_string()));
        }
    }

    async fn publish(
        &self,
        ch: &Channel,
        key: &str,
        body: &[u8],
        props: BasicProperties,
        confirm: bool,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        // Forecasts go straight to their queue through the default
        // exchange: the topic exchange's routing costs the broker about a
        // sixth of its throughput on this path (measured), and the forecast
        // queue is the only destination anyway. Fits keep the topic exchange.
        let (exchange, key) = if key == FORECAST_KEY {
            ("", self.topo.forecast_queue.as_str())
        } else {
            (self.topo.exchange.as_str(), key)
        };
        let pc = ch
            .basic_publish(
                exchange,
                key,
                BasicPublishOptions {
                    mandatory: confirm,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(unavailable)?;
        if !confirm {
            return Ok(());
        }
        match tokio::time::timeout(timeout, pc).await {
            Ok(Ok(Confirmation::Ack(None))) | Ok(Ok(Confirmation::NotRequested)) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => {
                Err(TransportError::Internal(if exchange.is_empty() {
                    format!("the queue '{key}' does not exist")
                } else {
                    format!("no queue is bound for '{key}' on exchange '{exchange}'")
                }))
            }
            Ok(Ok(Confirmation::Nack(_))) => Err(TransportError::Unavailable(
                "the broker refused the job".to_string(),
            )),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(TransportError::Unavailable(
                "the broker did not confirm the job in time".to_string(),
            )),
        }
    }

    async fn request(
        &self,
        fit: bool,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<RawReply, TransportError> {
        let deadline = Instant::now() + timeout;
        let link = self.current()?;
        let (id, rx) = self.register();
        let (ch, key, confirm) = if fit {
            (&link.fit, FIT_KEY, true)
        } else {
            (&link.forecast, FORECAST_KEY, self.cfg.persistent_forecasts)
        };
        let mut props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(ShortString::from(id.clone()));
        props = if fit || self.cfg.persistent_forecasts {
            props.with_delivery_mode(2)
        } else {
            props
                .with_delivery_mode(1)
                .with_expiration(timeout.as_millis().to_string().into())
        };
        if let Err(e) = self.publish(ch, key, &body, props, confirm, timeout).await {
            self.forget(&id);
            return Err(e);
        }
        drop(link);
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Ok(RawReply::Lost("the request was dropped".to_string())),
            Err(_) => {
                self.forget(&id);
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    /// A fit whose answer was lost with the connection: the job is safe in
    /// the durable queue, so its outcome will reach the store.
    async fn fit_from_store(
        &self,
        job: &FitJob,
        why: String,
        deadline: Instant,
    ) -> Result<FitReply, TransportError> {
        let Some(store) = &self.store else {
            return Err(TransportError::Unavailable(why));
        };
        // Bounded apart from the fit timeout, so a long broker outage answers
        // with a timeout (the fit goes on) instead of hanging for minutes.
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .min(LOST_REPLY_WAIT);
        match store.wait_settled(&job.model, job.version, remaining).await {
            Ok(info) => match info.status {
                VersionStatus::Ready => match info.summary {
                    Some(s) => Ok(Ok(s)),
                    None => Err(TransportError::Internal(format!(
                        "version {} of '{}' is ready without a summary",
                        job.version, job.model
                    ))),
                },
                VersionStatus::Failed { reason } => Ok(Err(JobError::Failed(reason))),
                VersionStatus::Pending => Err(TransportError::Timeout(self.cfg.fit_timeout)),
            },
            Err(StoreError::WaitTimeout(_)) => Err(TransportError::Timeout(self.cfg.fit_timeout)),
            Err(e) => Err(TransportError::Unavailable(format!("{why}; {e}"))),
        }
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn fit(&self, job: FitJob) -> Result<FitReply, TransportError> {
        let deadline = Instant::now() + self.inner.cfg.fit_timeout;
        let body = serde_json::to_vec(&job).map_err(|e| TransportError::Internal(e.to_string()))?;
        match self
            .inner
            .request(true, body, self.inner.cfg.fit_timeout)
            .await?
        {
            RawReply::Data(d) => serde_json::from_slice(&d)
                .map_err(|e| TransportError::Internal(format!("bad fit answer: {e}"))),
            RawReply::DeadLettered(r) => Err(TransportError::DeadLettered(r)),
            RawReply::Lost(why) => self.inner.fit_from_store(&job, why, deadline).await,
        }
    }

    async fn forecast(&self, job: ForecastJob) -> Result<ForecastReply, TransportError> {
        let body = serde_json::to_vec(&job).map_err(|e| TransportError::Internal(e.to_string()))?;
        match self
            .inner
            .request(false, body, self.inner.cfg.forecast_timeout)
            .await?
        {
            RawReply::Data(d) => serde_json::from_slice(&d)
                .map_err(|e| TransportError::Internal(format!("bad forecast answer: {e}"))),
            RawReply::DeadLettered(r) => Err(TransportError::DeadLettered(r)),
            RawReply::Lost(why) => Err(TransportError::Unavailable(why)),
        }
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.current().map(|_| ())
    }
}

// ------------------------------------------------------------- dead letters

async fn spawn_dead_letter_handler(
    conn: &Connection,
    topo: Topology,
    store: Arc<dyn ModelStore>,
    died: Arc<Notify>,
) -> Result<(), lapin::Error> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(16, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            &topo.dead_queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            match d {
                Ok(d) => {
                    if let Err(e) = handle_dead_letter(&ch, &topo, store.as_ref(), d).await {
                        warn!("dead letter not handled: {e}");
                    }
                }
                Err(_) => break,
            }
        }
        died.notify_one();
    });
    Ok(())
}

async fn handle_dead_letter(
    ch: &Channel,
    topo: &Topology,
    store: &dyn ModelStore,
    d: Delivery,
) -> Result<(), lapin::Error> {
    let reason = header_str(&d.properties, "x-first-death-reason").unwrap_or_default();
    if reason == "expired" {
        // A forecast nobody waits for any more.
        return d.acker.ack(BasicAckOptions::default()).await;
    }
    let attempts = header_int(&d.properties, ATTEMPTS_HEADER);
    let why = match (reason.as_str(), attempts) {
        ("delivery_limit", _) => {
            "the job was dead-lettered: it failed on every one of its delivery attempts (did it crash the workers?)".to_string()
        }
        (_, Some(n)) => format!(
            "the job was dead-lettered after {n} delivery attempts (did it crash the workers?)"
        ),
        _ => format!("the job was dead-lettered ({reason}): a worker could not process it"),
    };
    let key = d.routing_key.as_str();
    if key == FIT_KEY {
        if let Ok(job) = serde_json::from_slice::<FitJob>(&d.data) {
            if let Err(e) = store.fail(&job.model, job.version, &why).await {
                // Keep it for a later attempt, when the store is back.
                warn!("cannot mark dead-lettered fit failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return d.acker.reject(BasicRejectOptions { requeue: true }).await;
            }
            error!(model = %job.model, version = job.version, "{why}");
        }
    } else {
        error!(routing_key = key, "{why}");
    }
    if let Some(reply_to) = d.properties.reply_to().as_ref() {
        let mut headers = FieldTable::default();
        headers.insert(ERROR_HEADER.into(), long_str(&why));
        let mut props = BasicProperties::default().with_headers(headers);
        if let Some(c) = d.properties.correlation_id().as_ref() {
            props = props.with_correlation_id(c.clone());
        }
        // The asker may be gone; nothing to do then.
        let _ = ch
            .basic_publish(
                "",
                reply_to.as_str(),
                BasicPublishOptions::default(),
                &[],
                props,
            )
            .await;
    }
    let _ = ch
        .basic_publish(
            "",
            &topo.parked_queue,
            BasicPublishOptions::default(),
            &d.data,
            d.properties.clone().with_delivery_mode(2),
        )
        .await;
    d.acker.ack(BasicAckOptions::default()).await
}

// -------------------------------------------------------------- worker side

/// Runs a worker until `shutdown` resolves: consumes fits and forecasts on
/// separate channels, hands them to `handler`, publishes the answers and
/// acknowledges. Reconnects with backoff. With a `store`, also handles dead
/// letters. On shutdown it stops taking jobs and finishes those in hand.
pub async fn run_worker(
    cfg: AmqpConfig,
    handler: Arc<dyn JobHandler>,
    store: Option<Arc<dyn ModelStore>>,
    shutdown: impl Future<Output = ()>,
) {
    let topo = Topology::new(&cfg.namespace);
    let mut backoff = Backoff::new();
    tokio::pin!(shutdown);
    loop {
        let died = Arc::new(Notify::new());
        let session = worker_session(&cfg, &topo, handler.clone(), store.clone(), died.clone());
        let stop = tokio::select! {
            r = session => {
                match r {
                    Ok(mut s) => {
                        backoff.reset();
                        info!(namespace = %cfg.namespace, "worker connected to the broker");
                        let stop = tokio::select! {
                            _ = died.notified() => false,
                            _ = &mut shutdown => true,
                        };
                        s.finish(stop).await;
                        if !stop {
                            warn!("worker lost its broker connection; reconnecting");
                        }
                        stop
                    }
                    Err(e) => {
                        debug!("worker cannot reach the broker: {e}");
                        false
                    }
                }
            }
            _ = &mut shutdown => true,
        };
        if stop {
            info!("worker stopped");
            return;
        }
        tokio::select! {
            _ = backoff.wait() => {}
            _ = &mut shutdown => return,
        }
    }
}

struct WorkerSession {
    conn: Connection,
    consumers: Vec<(Channel, ShortString)>,
    tasks: Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl WorkerSession {
    async fn finish(&mut self, graceful: bool) {
        if graceful {
            for (ch, tag) in &self.consumers {
                let _ = ch
                    .basic_cancel(tag.as_str(), BasicCancelOptions::default())
                    .await;
            }
            let mut tasks = self.tasks.lock().await;
            while tasks.join_next().await.is_some() {}
            let _ = self.conn.close(200, "worker stopping").await;
        } else {
            self.tasks.lock().await.abort_all();
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Fit,
    Forecast,
}

async fn worker_session(
    cfg: &AmqpConfig,
    topo: &Topology,
    handler: Arc<dyn JobHandler>,
    store: Option<Arc<dyn ModelStore>>,
    died: Arc<Notify>,
) -> Result<WorkerSession, lapin::Error> {
    let conn = connect(&cfg.uri, "horizon-worker").await?;
    {
        let died = died.clone();
        conn.on_error(move |_| died.notify_one());
    }
    let tasks = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
    let mut consumers = Vec::new();
    for (kind, queue, prefetch) in [
        (Kind::Fit, &topo.fit_queue, cfg.fit_prefetch),
        (Kind::Forecast, &topo.forecast_queue, cfg.forecast_prefetch),
    ] {
        let ch = conn.create_channel().await?;
        if kind == Kind::Fit {
            topo.declare(&ch, cfg.max_deliveries).await?;
        }
        ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await?;
        let consumer = ch
            .basic_consume(
                queue,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        consumers.push((ch.clone(), consumer.tag()));
        // Forecasts are short and many: acknowledged in batches. Fits are
        // acknowledged one by one, so a long fit never holds back the ack
        // (and thus the prefetch slot) of a quick one finished after it.
        let acks = (kind == Kind::Forecast).then(|| Arc::new(AckBatch::new(ch.clone())));
        let handler = handler.clone();
        let tasks = tasks.clone();
        let died = died.clone();
        let topo = topo.clone();
        let max = cfg.max_deliveries;
        tokio::spawn(async move {
            let mut consumer = consumer;
            while let Some(d) = consumer.next().await {
                let Ok(d) = d else { break };
                let job = Job {
                    kind,
                    ch: ch.clone(),
                    acks: acks.clone(),
                    handler: handler.clone(),
                    topo: topo.clone(),
                    max_deliveries: max,
                };
                let mut set = tasks.lock().await;
                // Reap finished tasks so the set stays small.
                while set.try_join_next().is_some() {}
                set.spawn(job.run(d));
            }
            died.notify_one();
        });
    }
    if let Some(store) = store {
        spawn_dead_letter_handler(&conn, topo.clone(), store, died.clone()).await?;
    }
    Ok(WorkerSession {
        conn,
        consumers,
        tasks,
    })
}

struct Job {
    kind: Kind,
    ch: Channel,
    /// Batched acks (forecasts), or `None` to ack each delivery at once.
    acks: Option<Arc<AckBatch>>,
    handler: Arc<dyn JobHandler>,
    topo: Topology,
    max_deliveries: u32,
}

/// Acknowledges one channel's deliveries in batches: a delivery whose job is
/// done (answer published) is acknowledged with `multiple` once every
/// delivery before it on the channel is settled, together with those done
/// meanwhile. Under load that is one ack frame for many jobs instead of one
/// each (less work for the broker and for lapin's I/O thread); never an ack
/// before the job is done. Every delivery of the channel must be reported
/// here, acknowledged ([`Self::ack`]) or settled otherwise ([`Self::settled`]).
struct AckBatch {
    ch: Channel,
    state: Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    /// Every delivery tag up to this one is settled.
    settled: u64,
    /// Finished tags above `settled`: true if it waits for our ack.
    done: BTreeMap<u64, bool>,
    /// The highest settled tag waiting for our ack, not yet sent.
    to_ack: Option<u64>,
    /// An ack is being sent; whoever sends it sends the next one too.
    sending: bool,
}

impl AckBatch {
    fn new(ch: Channel) -> Self {
        Self {
            ch,
            state: Mutex::new(AckState::default()),
        }
    }

    /// The job of delivery `tag` is done: acknowledge it (maybe with others).
    async fn ack(&self, tag: u64) -> Result<(), lapin::Error> {
        self.finish(tag, true).await
    }

    /// Delivery `tag` was settled by its own ack, reject or nack.
    async fn settled(&self, tag: u64) -> Result<(), lapin::Error> {
        self.finish(tag, false).await
    }

    async fn finish(&self, tag: u64, wants_ack: bool) -> Result<(), lapin::Error> {
        {
            let mut s = lock(&self.state);
            s.done.insert(tag, wants_ack);
            loop {
                let next = s.settled + 1;
                match s.done.remove(&next) {
                    Some(a) => {
                        s.settled = next;
                        if a {
                            s.to_ack = Some(next);
                        }
                    }
                    None => break,
                }
            }
            if s.sending || s.to_ack.is_none() {
                return Ok(());
            }
            s.sending = true;
        }
        loop {
            let target = {
                let mut s = lock(&self.state);
                match s.to_ack.take() {
                    Some(t) => t,
                    None => {
                        s.sending = false;
                        return Ok(());
                    }
                }
            };
            let multiple = BasicAckOptions { multiple: true };
            if let Err(e) = self.ch.basic_ack(target, multiple).await {
                lock(&self.state).sending = false;
                return Err(e);
            }
        }
    }
}

impl Job {
    async fn run(self, d: Delivery) {
        if let Err(e) = self.process(d).await {
            // The delivery stays unacknowledged; the broker redelivers it
            // when this channel closes.
            warn!("job not acknowledged: {e}");
        }
    }

    async fn process(self, d: Delivery) -> Result<(), lapin::Error> {
        if self.kind == Kind::Forecast && d.redelivered {
            return self.recount(d).await;
        }
        if d.redelivered {
            debug!("redelivered fit");
        }
        let answer = match self.kind {
            Kind::Fit => match serde_json::from_slice::<FitJob>(&d.data) {
                Ok(job) => serde_json::to_vec(&self.handler.fit(job).await),
                Err(e) => return self.reject_malformed(d, e).await,
            },
            Kind::Forecast => match serde_json::from_slice::<ForecastJob>(&d.data) {
                Ok(job) => serde_json::to_vec(&self.handler.forecast(job).await),
                Err(e) => return self.reject_malformed(d, e).await,
            },
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                error!("cannot encode an answer: {e}");
                return self.reject(d).await;
            }
        };
        if let Some(reply_to) = d.properties.reply_to().as_ref() {
            let mut props = BasicProperties::default().with_content_type("application/json".into());
            if let Some(c) = d.properties.correlation_id().as_ref() {
                props = props.with_correlation_id(c.clone());
            }
            self.ch
                .basic_publish(
                    "",
                    reply_to.as_str(),
                    BasicPublishOptions::default(),
                    &answer,
                    props,
                )
                .await?;
        }
        match &self.acks {
            Some(acks) => acks.ack(d.delivery_tag).await,
            None => d.acker.ack(BasicAckOptions::default()).await,
        }
    }

    async fn reject_malformed(self, d: Delivery, e: serde_json::Error) -> Result<(), lapin::Error> {
        error!("malformed job dead-lettered: {e}");
        self.reject(d).await
    }

    /// Dead-letters the delivery at once, then reports it settled.
    async fn reject(&self, d: Delivery) -> Result<(), lapin::Error> {
        d.acker
            .reject(BasicRejectOptions { requeue: false })
            .await?;
        match &self.acks {
            Some(acks) => acks.settled(d.delivery_tag).await,
            None => Ok(()),
        }
    }

    /// Acknowledges the delivery at once (it was replaced by a copy), then
    /// reports it settled.
    async fn ack_now(&self, d: Delivery) -> Result<(), lapin::Error> {
        d.acker.ack(BasicAckOptions::default()).await?;
        match &self.acks {
            Some(acks) => acks.settled(d.delivery_tag).await,
            None => Ok(()),
        }
    }

    /// A redelivered forecast (its previous worker died or lost the
    /// connection): count the attempt in a header by publishing a copy, or
    /// dead-letter it once it has had its deliveries.
    async fn recount(self, d: Delivery) -> Result<(), lapin::Error> {
        // The header counts the deliveries that failed before this one.
        let attempts = header_int(&d.properties, ATTEMPTS_HEADER).unwrap_or(0) + 1;
        debug!(attempts, "redelivered forecast");
        if attempts >= i64::from(self.max_deliveries) {
            warn!(attempts, "forecast dead-lettered after repeated deliveries");
            let mut headers = d.properties.headers().clone().unwrap_or_default();
            headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(attempts));
            // The attempt count must travel with the dead letter: publish the
            // copy straight to the dead-letter exchange.
            let props = d.properties.clone().with_headers(headers);
            self.ch
                .basic_publish(
                    &self.topo.dead_exchange,
                    FORECAST_KEY,
                    BasicPublishOptions::default(),
                    &d.data,
                    props,
                )
                .await?;
            return self.ack_now(d).await;
        }
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(attempts));
        let props = d.properties.clone().with_headers(headers);
        self.ch
            .basic_publish(
                "",
                &self.topo.forecast_queue,
                BasicPublishOptions::default(),
                &d.data,
                props,
            )
            .await?;
        self.ack_now(d).await
    }
}
