//! The gateway side: [`AmqpTransport`] publishes jobs and routes the answers
//! back to the requests waiting for them. Fits go one per message; forecasts
//! go in batches (see [`super::batch`]): one task sends every forecast
//! waiting at that moment as one message, so the batch size follows the load
//! without any waiting on purpose.

use crate::{Consumers, FitShards, Transport, TransportError};
use async_trait::async_trait;
use futures_util::{stream::FuturesUnordered, StreamExt};
use lapin::{
    message::Delivery,
    options::{
        BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    },
    publisher_confirm::Confirmation,
    types::{FieldTable, ShortString},
    BasicProperties, Channel, Connection,
};
use protocol::{
    BacktestJob, BacktestReply, FitJob, FitReply, ForecastJob, ForecastReply, JobError, ModelName,
    Version,
};
use serde_json::value::RawValue;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};
use store::{ModelStore, StoreError, VersionStatus};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info, warn};

use super::batch::{self, Tagged, BATCH_KIND};
use super::dead_letter::dead_letter_handler;
use super::{
    connect, header_str, json_len, lock, set_lock, unavailable, AmqpConfig, Backoff, Topology,
    ERROR_HEADER, FIT_KEY, FORECAST_KEY, LOST_REPLY_WAIT, REPLY_TO, TOO_LARGE_HEADER,
};

/// What came back for one request.
enum RawReply {
    Data(Vec<u8>),
    /// The job was dead-lettered; the reason.
    DeadLettered(String),
    /// The connection was lost before the answer came.
    Lost(String),
    /// The job could not be sent.
    NotSent(TransportError),
}

/// The gateway's two channels. The broker closes a channel, not the
/// connection, for an error in one of its messages: only the requests sent
/// on that channel are answered "lost", and the channel is opened again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Fit,
    Forecast,
}

/// One live connection of the gateway.
struct Link {
    conn: Connection,
    fit: RwLock<Channel>,
    forecast: RwLock<Channel>,
}

impl Link {
    fn slot(&self, lane: Lane) -> &RwLock<Channel> {
        match lane {
            Lane::Fit => &self.fit,
            Lane::Forecast => &self.forecast,
        }
    }

    fn channel(&self, lane: Lane) -> Channel {
        match self.slot(lane).read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

struct Inner {
    cfg: AmqpConfig,
    topo: Topology,
    link: RwLock<Option<Arc<Link>>>,
    /// Requests waiting for their answer, with the channel they were sent on.
    pending: Mutex<HashMap<String, (Lane, oneshot::Sender<RawReply>)>>,
    next_id: AtomicU64,
    last_error: Mutex<String>,
    store: Option<Arc<dyn ModelStore>>,
    /// Forecasts waiting for the batch sender.
    outbox: mpsc::UnboundedSender<Tagged<Box<RawValue>>>,
    /// The last consumer counts and when they were read.
    consumers: tokio::sync::Mutex<Option<(Instant, Consumers)>>,
}

/// Consumer counts younger than this (and not zero) are answered without
/// asking the broker, unless the caller asks for fresh ones (readiness).
const CONSUMERS_FRESH: Duration = Duration::from_millis(500);

/// The gateway's side of the RabbitMQ transport. Connects in the background
/// and reconnects with backoff; see the module doc.
pub struct AmqpTransport {
    inner: Arc<Inner>,
    supervisor: tokio::task::JoinHandle<()>,
    sender: tokio::task::JoinHandle<()>,
}

impl Drop for AmqpTransport {
    fn drop(&mut self) {
        self.supervisor.abort();
        self.sender.abort();
    }
}

impl AmqpTransport {
    /// Starts connecting in the background and returns at once; requests
    /// fail with `Unavailable` until the first connection is up (see
    /// [`Self::wait_connected`]). With a `store`, the gateway also handles
    /// dead letters, and a fit whose answer was lost with the connection is
    /// answered from the store once its version settles.
    pub fn start(cfg: AmqpConfig, store: Option<Arc<dyn ModelStore>>) -> Self {
        let (outbox, waiting) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            topo: Topology::new(&cfg.namespace),
            cfg,
            link: RwLock::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            last_error: Mutex::new("not connected yet".to_string()),
            store,
            outbox,
            consumers: tokio::sync::Mutex::new(None),
        });
        let supervisor = tokio::spawn(supervise(inner.clone()));
        let sender = tokio::spawn(send_forecasts(inner.clone(), waiting));
        Self {
            inner,
            supervisor,
            sender,
        }
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
        let (lane_died, mut lanes_died) = mpsc::unbounded_channel();
        match open_link(&inner, died.clone(), lane_died.clone()).await {
            Ok(link) => {
                backoff.reset();
                info!(namespace = %inner.cfg.namespace, "gateway connected to the broker");
                set_lock(&inner.link, Some(link.clone()));
                loop {
                    tokio::select! {
                        _ = died.notified() => break,
                        Some(lane) = lanes_died.recv() => {
                            if !link.conn.status().connected() {
                                break;
                            }
                            warn!(?lane, error = %inner.last_error(), "the broker closed a channel of the gateway; reopening it");
                            inner.fail_pending(Some(lane), "the broker closed the channel the job was sent on");
                            match open_lane(&inner, &link.conn, lane, lane_died.clone()).await {
                                Ok(ch) => set_lock(link.slot(lane), ch),
                                Err(e) => {
                                    *lock(&inner.last_error) = e.to_string();
                                    break;
                                }
                            }
                        }
                    }
                }
                set_lock(&inner.link, None);
                warn!("gateway lost its broker connection; reconnecting");
                inner.fail_pending(None, "the connection to the broker was lost");
                // Closed for good, should a broken channel have ended it alone.
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    link.conn.close(320, "gateway reconnecting"),
                )
                .await;
            }
            Err(e) => {
                if backoff.failed() {
                    warn!("gateway cannot reach the broker (retrying): {e}");
                } else {
                    debug!("gateway cannot reach the broker: {e}");
                }
                *lock(&inner.last_error) = e.to_string();
            }
        }
        backoff.wait().await;
    }
}

async fn open_link(
    inner: &Arc<Inner>,
    died: Arc<Notify>,
    lane_died: mpsc::UnboundedSender<Lane>,
) -> Result<Arc<Link>, lapin::Error> {
    let conn = connect(&inner.cfg.uri, "horizon-gateway").await?;
    {
        let died = died.clone();
        let inner = inner.clone();
        conn.on_error(move |e| {
            *lock(&inner.last_error) = e.to_string();
            died.notify_one();
        });
    }
    let setup = conn.create_channel().await?;
    inner.topo.declare(&setup, inner.cfg.max_deliveries).await?;
    let _ = setup.close(200, "declared").await;
    super::queue_metrics::watch(&conn, inner.topo.clone()).await;
    let fit = open_lane(inner, &conn, Lane::Fit, lane_died.clone()).await?;
    let forecast = open_lane(inner, &conn, Lane::Forecast, lane_died).await?;
    if let Some(store) = inner.store.clone() {
        let handler = dead_letter_handler(&conn, inner.topo.clone(), store).await?;
        tokio::spawn(async move {
            handler.await;
            died.notify_one();
        });
    }
    Ok(Arc::new(Link {
        conn,
        fit: RwLock::new(fit),
        forecast: RwLock::new(forecast),
    }))
}

/// Opens the channel of `lane` with its reply consumer; `lane_died` hears
/// when the channel ends.
async fn open_lane(
    inner: &Arc<Inner>,
    conn: &Connection,
    lane: Lane,
    lane_died: mpsc::UnboundedSender<Lane>,
) -> Result<Channel, lapin::Error> {
    let ch = conn.create_channel().await?;
    if lane == Lane::Fit || inner.cfg.persistent_forecasts {
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
    }
    let mut consumer = ch
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
    tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            match d {
                Ok(d) => inner.deliver(d),
                Err(e) => {
                    *lock(&inner.last_error) = e.to_string();
                    break;
                }
            }
        }
        let _ = lane_died.send(lane);
    });
    Ok(ch)
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

    fn register(&self, lane: Lane) -> (String, oneshot::Receiver<RawReply>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), (lane, tx));
        (id, rx)
    }

    fn forget(&self, id: &str) {
        lock(&self.pending).remove(id);
    }

    fn deliver(&self, d: Delivery) {
        if batch::is_batch(&d.properties) {
            return self.deliver_batch(d);
        }
        let Some(id) = d
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
        else {
            debug!("reply without correlation id dropped");
            return;
        };
        let Some((_, tx)) = lock(&self.pending).remove(&id) else {
            // The requester gave up (timeout) or a duplicate answer.
            return;
        };
        let reply = if let Some(reason) = header_str(&d.properties, ERROR_HEADER) {
            RawReply::DeadLettered(reason)
        } else if let Some(why) = header_str(&d.properties, TOO_LARGE_HEADER) {
            // The outcome is in the store (a fit's summary), only too large
            // to travel back.
            RawReply::Lost(why)
        } else {
            RawReply::Data(d.data)
        };
        let _ = tx.send(reply);
    }

    /// Answers every request of a batch reply.
    fn deliver_batch(&self, d: Delivery) {
        if let Some(reason) = header_str(&d.properties, ERROR_HEADER) {
            match batch::ids(&d.data) {
                Ok(ids) => self.answer(ids, |_| RawReply::DeadLettered(reason.clone())),
                Err(e) => warn!("error answer of a forecast batch dropped: {e}"),
            }
            return;
        }
        match batch::decode::<&RawValue>(&d.data) {
            Ok(items) => {
                let mut pending = lock(&self.pending);
                let senders: Vec<_> = items
                    .into_iter()
                    .filter_map(|t| pending.remove(&t.id).map(|(_, tx)| (tx, t.body)))
                    .collect();
                drop(pending);
                for (tx, body) in senders {
                    let _ = tx.send(RawReply::Data(body.get().as_bytes().to_vec()));
                }
            }
            Err(e) => warn!("malformed forecast batch answer dropped: {e}"),
        }
    }

    /// Answers the requests `ids` that still wait.
    fn answer(&self, ids: Vec<String>, reply: impl Fn(&str) -> RawReply) {
        let mut pending = lock(&self.pending);
        let senders: Vec<_> = ids
            .into_iter()
            .filter_map(|id| pending.remove(&id).map(|(_, tx)| (id, tx)))
            .collect();
        drop(pending);
        for (id, tx) in senders {
            let _ = tx.send(reply(&id));
        }
    }

    /// Answers "lost" the requests sent on `lane`, or all of them.
    fn fail_pending(&self, lane: Option<Lane>, why: &str) {
        let drained: Vec<_> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<String> = pending
                .iter()
                .filter(|(_, (l, _))| lane.is_none_or(|lane| *l == lane))
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
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
        let _timed = Timed::new("horizon_broker_publish_duration_seconds", key);
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

    /// Sends a fit in a message of its own, records it dispatched once the
    /// broker has it, and waits for its answer.
    async fn request_fit(
        &self,
        body: Vec<u8>,
        model: &ModelName,
        version: Version,
    ) -> Result<RawReply, TransportError> {
        let _timed = Timed::new("horizon_broker_request_duration_seconds", "fit");
        let timeout = self.cfg.fit_timeout;
        let deadline = Instant::now() + timeout;
        let (id, rx) = self.send_fit(&body).await?;
        self.mark_dispatched(model, version).await;
        self.wait_reply(id, rx, deadline, timeout).await
    }

    /// Publishes a fit message (confirmed by the broker); its answer comes
    /// to the receiver.
    async fn send_fit(
        &self,
        body: &[u8],
    ) -> Result<(String, oneshot::Receiver<RawReply>), TransportError> {
        let link = self.current()?;
        let (id, rx) = self.register(Lane::Fit);
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(ShortString::from(id.clone()))
            .with_delivery_mode(2);
        if let Err(e) = self
            .publish(
                &link.channel(Lane::Fit),
                FIT_KEY,
                body,
                props,
                true,
                self.cfg.fit_timeout,
            )
            .await
        {
            self.forget(&id);
            return Err(e);
        }
        Ok((id, rx))
    }

    /// Records that the fit of `version` is in the broker's keeping.
    async fn mark_dispatched(&self, model: &ModelName, version: Version) {
        if let Some(store) = &self.store {
            // Without the mark a retry would send the fit again: harmless.
            if let Err(e) = store.mark_dispatched(model, version).await {
                warn!(%model, version, "could not record the fit as dispatched: {e}");
            }
        }
    }

    /// Sends a backtest on the fit queue (typed [`super::BACKTEST_KIND`]) and
    /// waits for its answer; nothing is stored, so nothing is recorded.
    async fn request_backtest(&self, body: Vec<u8>) -> Result<RawReply, TransportError> {
        let timeout = self.cfg.fit_timeout;
        let deadline = Instant::now() + timeout;
        let link = self.current()?;
        let (id, rx) = self.register(Lane::Fit);
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_type(super::BACKTEST_KIND.into())
            .with_reply_to(REPLY_TO.into())
            .with_correlation_id(ShortString::from(id.clone()))
            .with_delivery_mode(2);
        if let Err(e) = self
            .publish(
                &link.channel(Lane::Fit),
                FIT_KEY,
                &body,
                props,
                true,
                timeout,
            )
            .await
        {
            self.forget(&id);
            return Err(e);
        }
        drop(link);
        self.wait_reply(id, rx, deadline, timeout).await
    }

    /// Hands a forecast to the batch sender and waits for its answer.
    async fn request_forecast(&self, job: Box<RawValue>) -> Result<RawReply, TransportError> {
        let _timed = Timed::new("horizon_broker_request_duration_seconds", "forecast");
        let timeout = self.cfg.forecast_timeout;
        let deadline = Instant::now() + timeout;
        // Fail fast while disconnected rather than queue for the sender.
        self.current()?;
        let (id, rx) = self.register(Lane::Forecast);
        let item = Tagged {
            id: id.clone(),
            body: job,
        };
        if self.outbox.send(item).is_err() {
            self.forget(&id);
            return Err(TransportError::Internal(
                "the forecast sender has stopped".to_string(),
            ));
        }
        self.wait_reply(id, rx, deadline, timeout).await
    }

    async fn wait_reply(
        &self,
        id: String,
        rx: oneshot::Receiver<RawReply>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<RawReply, TransportError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, rx).await {
            Ok(Ok(RawReply::NotSent(e))) => Err(e),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Ok(RawReply::Lost("the request was dropped".to_string())),
            Err(_) => {
                self.forget(&id);
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    /// Publishes the forecasts `items` as one batch message.
    async fn publish_batch(&self, items: &[Tagged<Box<RawValue>>]) -> Result<(), TransportError> {
        let link = self.current()?;
        let body = batch::encode(items).map_err(|e| TransportError::Internal(e.to_string()))?;
        let limit = self.cfg.max_message_bytes;
        if body.len() > limit {
            return Err(TransportError::TooLarge {
                bytes: body.len(),
                limit,
            });
        }
        let timeout = self.cfg.forecast_timeout;
        let persistent = self.cfg.persistent_forecasts;
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_type(BATCH_KIND.into())
            .with_reply_to(REPLY_TO.into());
        let props = if persistent {
            props.with_delivery_mode(2)
        } else {
            // A forecast nobody waits for any more is dropped by the broker.
            props
                .with_delivery_mode(1)
                .with_expiration(timeout.as_millis().to_string().into())
        };
        self.publish(
            &link.channel(Lane::Forecast),
            FORECAST_KEY,
            &body,
            props,
            persistent,
            timeout,
        )
        .await
    }

    /// A fit whose answer was lost with the connection: the job is safe in
    /// the durable queue, so its outcome will reach the store. Needs only
    /// the job's version, not its series (which are let go once published).
    async fn fit_from_store(
        &self,
        (model, version): &(ModelName, Version),
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
        match store.wait_settled(model, *version, remaining).await {
            Ok(info) => match info.status {
                VersionStatus::Ready => match info.summary {
                    Some(s) => Ok(Ok(s)),
                    None => Err(TransportError::Internal(format!(
                        "version {version} of '{model}' is ready without a summary"
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
        let (model, version) = (job.model.clone(), job.version);
        // The series go with the encoding: only the body is held from here.
        let body = encode_fit(Arc::new(job)).await?;
        // Never published: the broker would close the channel.
        let limit = self.inner.cfg.max_message_bytes;
        if body.len() > limit {
            return Err(TransportError::TooLarge {
                bytes: body.len(),
                limit,
            });
        }
        match self.inner.request_fit(body, &model, version).await? {
            RawReply::Data(d) => serde_json::from_slice(&d)
                .map_err(|e| TransportError::Internal(format!("bad fit answer: {e}"))),
            RawReply::DeadLettered(r) => Err(TransportError::DeadLettered(r)),
            RawReply::Lost(why) => {
                self.inner
                    .fit_from_store(&(model, version), why, deadline)
                    .await
            }
            RawReply::NotSent(e) => Err(e),
        }
    }

    /// Every shard is published before any answer is awaited, and the
    /// version is recorded dispatched only once all of them are in the
    /// broker: a gateway that dies midway leaves it undispatched, so a retry
    /// sends the fit again (shards stored before are kept: first wins).
    async fn fit_shards(&self, mut shards: FitShards) -> Vec<Result<FitReply, TransportError>> {
        let _timed = Timed::new("horizon_broker_request_duration_seconds", "fit_shards");
        let timeout = self.inner.cfg.fit_timeout;
        let deadline = Instant::now() + timeout;
        let limit = self.inner.cfg.max_message_bytes;
        let mut sent = Vec::with_capacity(shards.count());
        // One shard at a time is taken from the source and let go once
        // published: while the fit runs (and waits for its answers) only
        // (model, version) stay.
        while let Some(job) = shards.next().await {
            let key = (shards.model().clone(), shards.version());
            let published = match job {
                Ok(job) => match encode_fit(Arc::new(job)).await {
                    Ok(body) if body.len() > limit => Err(TransportError::TooLarge {
                        bytes: body.len(),
                        limit,
                    }),
                    Ok(body) => self.inner.send_fit(&body).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            sent.push((key, published));
        }
        if let Some(((model, version), _)) = sent.first() {
            if sent.iter().all(|(_, p)| p.is_ok()) {
                self.inner.mark_dispatched(model, *version).await;
            }
        }
        let inner = &self.inner;
        futures_util::future::join_all(sent.into_iter().map(|(job, published)| async move {
            let (id, rx) = published?;
            let reply = match inner.wait_reply(id, rx, deadline, timeout).await? {
                RawReply::Data(d) => serde_json::from_slice(&d)
                    .map_err(|e| TransportError::Internal(format!("bad fit answer: {e}"))),
                RawReply::DeadLettered(r) => Err(TransportError::DeadLettered(r)),
                RawReply::Lost(why) => inner.fit_from_store(&job, why, deadline).await,
                RawReply::NotSent(e) => Err(e),
            };
            reply.map(crate::without_series)
        }))
        .await
    }

    async fn forecast(&self, job: ForecastJob) -> Result<ForecastReply, TransportError> {
        let body = serde_json::value::to_raw_value(&job)
            .map_err(|e| TransportError::Internal(e.to_string()))?;
        match self.inner.request_forecast(body).await? {
            RawReply::Data(d) => serde_json::from_slice(&d)
                .map_err(|e| TransportError::Internal(format!("bad forecast answer: {e}"))),
            RawReply::DeadLettered(r) => Err(TransportError::DeadLettered(r)),
            RawReply::Lost(why) => Err(TransportError::Unavailable(why)),
            RawReply::NotSent(e) => Err(e),
        }
    }

    async fn backtest(&self, job: BacktestJob) -> Result<BacktestReply, TransportError> {
        let body = serde_json::to_vec(&job).map_err(|e| TransportError::Internal(e.to_string()))?;
        let limit = self.inner.cfg.max_message_bytes;
        if body.len() > limit {
            return Err(TransportError::TooLarge {
                bytes: body.len(),
                limit,
            });
        }
        match self.inner.request_backtest(body).await? {
            RawReply::Data(d) => serde_json::from_slice(&d)
                .map_err(|e| TransportError::Internal(format!("bad backtest answer: {e}"))),
            RawReply::DeadLettered(r) => Err(TransportError::DeadLettered(r)),
            RawReply::Lost(why) => Err(TransportError::Unavailable(why)),
            RawReply::NotSent(e) => Err(e),
        }
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.current().map(|_| ())
    }

    async fn consumers(&self, fresh: bool) -> Result<Option<Consumers>, TransportError> {
        // One reader asks the broker at a time; the others take its answer.
        let mut cached = self.inner.consumers.lock().await;
        if let Some((at, counts)) = *cached {
            // A zero is asked again: trusting a stale one refuses work
            // that a worker which just joined would take.
            if !fresh && at.elapsed() < CONSUMERS_FRESH && counts.fit > 0 && counts.forecast > 0 {
                return Ok(Some(counts));
            }
        }
        let link = self.inner.current()?;
        // A channel of its own: a passive declare of a missing queue closes
        // the channel it runs on.
        let ch = link.conn.create_channel().await.map_err(unavailable)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let topo = &self.inner.topo;
        let fit = ch
            .queue_declare(&topo.fit_queue, passive, FieldTable::default())
            .await;
        let forecast = ch
            .queue_declare(&topo.forecast_queue, passive, FieldTable::default())
            .await;
        let _ = ch.close(200, "done").await;
        let counts = Consumers {
            fit: fit.map_err(unavailable)?.consumer_count(),
            forecast: forecast.map_err(unavailable)?.consumer_count(),
        };
        *cached = Some((Instant::now(), counts));
        Ok(Some(counts))
    }

    fn check_fit(&self, job: &FitJob) -> Result<(), TransportError> {
        let limit = self.inner.cfg.max_message_bytes;
        let bytes = fit_message_len(job, limit);
        if bytes > limit {
            return Err(TransportError::TooLarge { bytes, limit });
        }
        Ok(())
    }
}

/// Encodes a fit job, off the async threads when it is large.
async fn encode_fit(job: Arc<FitJob>) -> Result<Vec<u8>, TransportError> {
    let values: usize = job.series.iter().map(|s| s.values.len()).sum();
    let encode =
        move || serde_json::to_vec(&*job).map_err(|e| TransportError::Internal(e.to_string()));
    if values < 100_000 {
        return encode();
    }
    tokio::task::spawn_blocking(encode)
        .await
        .map_err(|e| TransportError::Internal(format!("encoding the fit: {e}")))?
}

/// The size of `job`'s message with any version number, or a bound of it
/// when that bound is within `limit` (measuring a large job costs about as
/// much as encoding it).
fn fit_message_len(job: &FitJob, limit: usize) -> usize {
    // The longest JSON numbers (`-2.2250738585072014e-308`) and an escape of
    // every byte of an id.
    const VALUE: usize = 25;
    const PER_SERIES: usize = 64;
    let spec = json_len(&job.spec);
    let bound = job
        .series
        .iter()
        .fold(1024 + 6 * job.model.as_str().len() + spec, |n, s| {
            n.saturating_add(PER_SERIES + 6 * s.id.len())
                .saturating_add(VALUE.saturating_mul(s.values.len()))
        });
    if bound <= limit {
        return bound;
    }
    // The version in the job may be a placeholder: count the longest one.
    json_len(job) + i64::MIN.to_string().len()
}

/// Batches being published at once. One at a time serialises every batch
/// behind the hand-over to lapin's I/O thread (the send, or the publisher
/// confirm); two kept the broker busy and the batches large in the load
/// benchmark, four measured no better.
const BATCHES_IN_FLIGHT: usize = 2;

/// Sends the forecasts handed to the transport: whatever waits when a
/// publish slot is free goes as the next batch (at most
/// [`AmqpConfig::forecast_batch`]), so batches grow with the load and a lone
/// forecast never waits for company.
async fn send_forecasts(
    inner: Arc<Inner>,
    mut waiting: mpsc::UnboundedReceiver<Tagged<Box<RawValue>>>,
) {
    let max = inner.cfg.forecast_batch.max(1);
    let mut in_flight = FuturesUnordered::new();
    loop {
        let mut items = Vec::with_capacity(max);
        tokio::select! {
            n = waiting.recv_many(&mut items, max), if in_flight.len() < BATCHES_IN_FLIGHT => {
                if n == 0 {
                    break;
                }
                let inner = inner.clone();
                in_flight.push(async move {
                    if let Err(e) = inner.publish_batch(&items).await {
                        let ids = items.into_iter().map(|t| t.id).collect();
                        inner.answer(ids, |_| RawReply::NotSent(e.clone()));
                    }
                });
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}

/// Records the seconds from its creation to its drop in a histogram, by
/// `kind` (the routing key or the request kind).
struct Timed {
    name: &'static str,
    kind: String,
    start: Instant,
}

impl Timed {
    fn new(name: &'static str, kind: &str) -> Self {
        Self {
            name,
            kind: kind.to_string(),
            start: Instant::now(),
        }
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        metrics::histogram!(self.name, "kind" => std::mem::take(&mut self.kind))
            .record(self.start.elapsed().as_secs_f64());
    }
}
