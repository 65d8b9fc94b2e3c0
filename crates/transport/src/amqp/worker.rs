//! The worker side: consume jobs, run them, publish the answers, acknowledge.

use crate::JobHandler;
use futures_util::{future::join_all, stream::FuturesUnordered, FutureExt, StreamExt};
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions,
        BasicQosOptions, BasicRejectOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Connection,
};
use protocol::{BacktestJob, FitJob, ForecastJob, ForecastReply, JobError};
use serde_json::value::RawValue;
use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};
use store::ModelStore;
use tokio::{sync::Notify, task::JoinSet};
use tracing::{debug, error, info, warn};

use super::batch::{self, Tagged, BATCH_KIND};
use super::dead_letter::dead_letter_handler;
use super::{
    connect, header_int, lock, long_str, publish_reply, AmqpConfig, Backoff, Topology,
    ATTEMPTS_HEADER, FORECAST_KEY, TOO_LARGE_HEADER,
};

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
                        if backoff.failed() {
                            warn!("worker cannot reach the broker (retrying): {e}");
                        } else {
                            debug!("worker cannot reach the broker: {e}");
                        }
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

/// One connection of a worker and every task working for it: its
/// consumers, the jobs they started and the dead-letter handler. Nothing
/// outlives the session (mini-redis style): when any part of it dies, the
/// rest is stopped and the connection closed, so the broker redelivers every
/// job the session held to a live consumer.
struct WorkerSession {
    conn: Connection,
    consumers: Vec<(Channel, ShortString)>,
    /// The consumer loops (and the dead-letter handler).
    loops: JoinSet<()>,
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
            drop(tasks);
            self.loops.abort_all();
            let _ = self.conn.close(200, "worker stopping").await;
        } else {
            self.loops.abort_all();
            self.tasks.lock().await.abort_all();
            // A channel error leaves the connection open: closed here, the
            // jobs in hand on every channel go back to the queues at once.
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                self.conn.close(320, "worker session failed"),
            )
            .await;
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
    let mut loops = JoinSet::new();
    let mut consumers = Vec::new();
    let recounting = Arc::new(tokio::sync::RwLock::new(()));
    // Forecasts that were in hand when a worker died come back through the
    // retry queue, one at a time per worker: if one of them crashes its
    // worker again, it takes no other forecast with it (see `Job::recount`).
    for (kind, queue, prefetch, batched_acks) in [
        (Kind::Fit, &topo.fit_queue, cfg.fit_prefetch, false),
        (
            Kind::Forecast,
            &topo.forecast_queue,
            cfg.forecast_prefetch,
            true,
        ),
        (Kind::Forecast, &topo.retry_queue, 1, false),
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
        let acks = batched_acks.then(|| Arc::new(AckBatch::new(ch.clone())));
        let recounting = recounting.clone();
        let handler = handler.clone();
        let tasks = tasks.clone();
        let died = died.clone();
        let topo = topo.clone();
        let max = cfg.max_deliveries;
        let max_message_bytes = cfg.max_message_bytes;
        loops.spawn(async move {
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
                    max_message_bytes,
                    recounting: recounting.clone(),
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
        let handler = dead_letter_handler(&conn, topo.clone(), store).await?;
        let died = died.clone();
        loops.spawn(async move {
            handler.await;
            died.notify_one();
        });
    }
    Ok(WorkerSession {
        conn,
        consumers,
        loops,
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
    /// The largest answer the broker accepts; see [`AmqpConfig::max_message_bytes`].
    max_message_bytes: usize,
    /// Held (write) while a redelivered job's copies are published and the
    /// original acknowledged; no job of the worker starts meanwhile, see
    /// [`Job::recount`].
    recounting: Arc<tokio::sync::RwLock<()>>,
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
        drop(self.recounting.read().await);
        match self.kind {
            Kind::Fit
                if d.properties.kind().as_ref().map(|k| k.as_str())
                    == Some(super::BACKTEST_KIND) =>
            {
                let job = match serde_json::from_slice::<BacktestJob>(&d.data) {
                    Ok(job) => job,
                    Err(e) => return self.reject_malformed(d, e).await,
                };
                match serde_json::to_vec(&self.handler.backtest(job).await) {
                    Ok(answer) if answer.len() <= self.max_message_bytes => {
                        self.answer(&d, &answer, Some(super::BACKTEST_KIND)).await?
                    }
                    Ok(answer) => self.answer_too_large(&d, answer.len()).await?,
                    Err(e) => return self.reject_unanswerable(d, e).await,
                }
            }
            Kind::Fit => {
                let job = match serde_json::from_slice::<FitJob>(&d.data) {
                    Ok(job) => job,
                    Err(e) => return self.reject_malformed(d, e).await,
                };
                match serde_json::to_vec(&self.handler.fit(job).await) {
                    Ok(answer) if answer.len() <= self.max_message_bytes => {
                        self.answer(&d, &answer, None).await?
                    }
                    // The fit's outcome is in the store: the gateway reads it there.
                    Ok(answer) => self.answer_too_large(&d, answer.len()).await?,
                    Err(e) => return self.reject_unanswerable(d, e).await,
                }
            }
            Kind::Forecast => {
                let jobs = match batch::decode::<ForecastJob>(&d.data) {
                    Ok(jobs) => jobs,
                    Err(e) => return self.reject_malformed(d, e).await,
                };
                let handler = &self.handler;
                let mut running: FuturesUnordered<_> = jobs
                    .into_iter()
                    .map(|t| async move {
                        Tagged {
                            id: t.id,
                            body: handler.forecast(t.body).await,
                        }
                    })
                    .collect();
                // Answers together what is done together: usually the whole
                // batch at once, but a forecast that waits (its model loading
                // from the store) holds back none of the others.
                while let Some(first) = running.next().await {
                    let mut done = vec![first];
                    while let Some(Some(more)) = running.next().now_or_never() {
                        done.push(more);
                    }
                    match encode_within(done, self.max_message_bytes) {
                        Ok(answers) => {
                            for answer in answers {
                                self.answer(&d, &answer, Some(BATCH_KIND)).await?
                            }
                        }
                        Err(e) => return self.reject_unanswerable(d, e).await,
                    }
                }
            }
        }
        match &self.acks {
            Some(acks) => acks.ack(d.delivery_tag).await,
            None => d.acker.ack(BasicAckOptions::default()).await,
        }
    }

    /// Publishes an answer to whoever asked (direct reply-to).
    async fn answer(
        &self,
        d: &Delivery,
        body: &[u8],
        kind: Option<&str>,
    ) -> Result<(), lapin::Error> {
        let Some(reply_to) = d.properties.reply_to().as_ref() else {
            return Ok(());
        };
        let mut props = BasicProperties::default().with_content_type("application/json".into());
        if let Some(kind) = kind {
            props = props.with_type(kind.into());
        }
        if let Some(c) = d.properties.correlation_id().as_ref() {
            props = props.with_correlation_id(c.clone());
        }
        publish_reply(&self.ch, reply_to, body, props).await
    }

    /// Tells the asker that the answer is too large for the broker, instead
    /// of publishing it (the broker would close the channel).
    async fn answer_too_large(&self, d: &Delivery, bytes: usize) -> Result<(), lapin::Error> {
        let Some(reply_to) = d.properties.reply_to().as_ref() else {
            return Ok(());
        };
        let why = too_large(bytes, self.max_message_bytes);
        warn!("{why}");
        let mut headers = FieldTable::default();
        headers.insert(TOO_LARGE_HEADER.into(), long_str(&why));
        let mut props = BasicProperties::default().with_headers(headers);
        if let Some(c) = d.properties.correlation_id().as_ref() {
            props = props.with_correlation_id(c.clone());
        }
        publish_reply(&self.ch, reply_to, &[], props).await
    }

    async fn reject_unanswerable(
        &self,
        d: Delivery,
        e: serde_json::Error,
    ) -> Result<(), lapin::Error> {
        error!("cannot encode an answer: {e}");
        self.reject(d).await
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

    /// A redelivered forecast batch (its previous worker died or lost the
    /// connection): count the attempt in a header by publishing copies to the
    /// retry queue, or dead-letter it once it has had its deliveries. A
    /// batch of several forecasts is split into batches of one, and workers
    /// take retries one at a time, so that a forecast that crashes workers
    /// is counted and dead-lettered alone, not with the forecasts that
    /// happened to be in hand with it.
    ///
    /// No job of this worker starts until the broker has the original's
    /// ack: otherwise a copy could come straight back here and crash the
    /// worker before the ack left, and the original would return with its
    /// old count, again and again.
    async fn recount(self, d: Delivery) -> Result<(), lapin::Error> {
        let gate = self.recounting.clone();
        let _exclusive = gate.write().await;
        // The header counts the deliveries that failed before this one.
        let attempts = header_int(&d.properties, ATTEMPTS_HEADER).unwrap_or(0) + 1;
        debug!(attempts, "redelivered forecast");
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(attempts));
        let props = d.properties.clone().with_headers(headers);
        let (exchange, key, parts) = if attempts >= i64::from(self.max_deliveries) {
            warn!(attempts, "forecast dead-lettered after repeated deliveries");
            // The attempt count must travel with the dead letter: publish the
            // copy straight to the dead-letter exchange.
            let key = FORECAST_KEY;
            (self.topo.dead_exchange.as_str(), key, vec![d.data.clone()])
        } else {
            let parts = match batch::decode::<&RawValue>(&d.data) {
                Ok(items) if items.len() > 1 => items
                    .iter()
                    .map(|t| batch::encode(std::slice::from_ref(t)))
                    .collect::<Result<Vec<_>, _>>(),
                Ok(_) => Ok(vec![d.data.clone()]),
                Err(e) => Err(e),
            };
            match parts {
                Ok(p) => ("", self.topo.retry_queue.as_str(), p),
                Err(e) => return self.reject_malformed(d, e).await,
            }
        };
        let publishes = parts.iter().map(|part| {
            self.ch.basic_publish(
                exchange,
                key,
                BasicPublishOptions::default(),
                part,
                props.clone(),
            )
        });
        for sent in join_all(publishes).await {
            sent?;
        }
        self.ack_now(d).await?;
        // A synchronous method after the ack on the same channel: its answer
        // means the broker has processed the ack.
        self.ch
            .queue_declare(
                &self.topo.forecast_queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|_| ())
    }
}

fn too_large(bytes: usize, limit: usize) -> String {
    format!(
        "the answer would be a {bytes}-byte message, over the broker's limit of {limit} bytes; \
         ask for fewer series, a shorter horizon or fewer levels"
    )
}

/// Encodes the answers of forecasts done together as one batch reply, or,
/// if that is larger than `limit`, one reply each; an answer too large even
/// alone is replaced by an error saying so.
fn encode_within(
    done: Vec<Tagged<ForecastReply>>,
    limit: usize,
) -> serde_json::Result<Vec<Vec<u8>>> {
    let whole = batch::encode(&done)?;
    if whole.len() <= limit {
        return Ok(vec![whole]);
    }
    done.into_iter()
        .map(|t| {
            let alone = batch::encode(std::slice::from_ref(&t))?;
            if alone.len() <= limit {
                return Ok(alone);
            }
            warn!(
                bytes = alone.len(),
                limit, "forecast answer too large for the broker"
            );
            let error: ForecastReply = Err(JobError::Failed(too_large(alone.len(), limit)));
            batch::encode(&[Tagged {
                id: t.id,
                body: error,
            }])
        })
        .collect()
}
