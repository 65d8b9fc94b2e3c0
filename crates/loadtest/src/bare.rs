//! The ceilings the service is compared with: a bare axum handler doing the
//! same JSON work as a forecast (parse the request, compute a naive forecast
//! with intervals, answer JSend of the same shape), and the same handler
//! sending the work to a bare lapin worker through the broker and back
//! (direct reply-to, correlation ids), with none of Horizon's code.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

#[derive(Deserialize)]
struct ForecastBody {
    horizon: usize,
    #[serde(default)]
    level: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Job {
    model: String,
    version: i64,
    horizon: usize,
    levels: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Interval {
    level: f64,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Series {
    id: String,
    mean: Vec<f64>,
    intervals: Vec<Interval>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    model: String,
    version: i64,
    horizon: usize,
    series: Vec<Series>,
}

/// A naive forecast with normal intervals: the work a cached model does.
fn compute(job: &Job) -> Answer {
    let (last, sigma) = (42.0_f64, 1.5_f64);
    let h = job.horizon.clamp(1, 1000);
    let mean = vec![last; h];
    let intervals = job
        .levels
        .iter()
        .map(|&level| {
            // Normal quantile by a rational approximation (enough here).
            let p = 0.5 + level.clamp(1.0, 99.9) / 200.0;
            let t = (-2.0 * (1.0 - p).ln()).sqrt();
            let z = t
                - (2.515517 + 0.802853 * t + 0.010328 * t * t)
                    / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
            let width: Vec<f64> = (1..=h).map(|k| z * sigma * (k as f64).sqrt()).collect();
            Interval {
                level,
                lower: width.iter().map(|w| last - w).collect(),
                upper: width.iter().map(|w| last + w).collect(),
            }
        })
        .collect();
    Answer {
        model: job.model.clone(),
        version: job.version,
        horizon: h,
        series: vec![Series {
            id: "a".into(),
            mean,
            intervals,
        }],
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "fail", "data": {"body": message}})),
    )
        .into_response()
}

fn parse(body: &[u8]) -> Result<Job, String> {
    let b: ForecastBody = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(Job {
        model: "lt".into(),
        version: 1,
        horizon: b.horizon,
        levels: b.level,
    })
}

fn jsend(data: &Answer) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// Serves the bare axum ceiling on `listen`.
pub async fn serve_axum(listen: SocketAddr) -> std::io::Result<()> {
    async fn handler(body: Bytes) -> Response {
        match parse(&body) {
            Ok(job) => jsend(&compute(&job)),
            Err(e) => bad_request(e),
        }
    }
    let app = Router::new().route("/forecast", post(handler));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await
}

async fn connect(uri: &str) -> Result<Connection, lapin::Error> {
    Connection::connect(
        uri,
        ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio),
    )
    .await
}

async fn declare(ch: &Channel, queue: &str) -> Result<(), lapin::Error> {
    ch.queue_declare(
        queue,
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map(|_| ())
}

struct LapinGateway {
    ch: Channel,
    queue: String,
    persistent: bool,
    pending: Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>,
    next: AtomicU64,
}

/// Serves the bare axum + lapin ceiling on `listen`: each request goes to a
/// bare worker through `queue` and back.
pub async fn serve_lapin_gateway(
    listen: SocketAddr,
    uri: &str,
    queue: &str,
    persistent: bool,
) -> Result<(), String> {
    let conn = connect(uri).await.map_err(|e| e.to_string())?;
    let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
    declare(&ch, queue).await.map_err(|e| e.to_string())?;
    if persistent {
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut replies = ch
        .basic_consume(
            "amq.rabbitmq.reply-to",
            "",
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let gw = Arc::new(LapinGateway {
        ch,
        queue: queue.to_string(),
        persistent,
        pending: Mutex::new(HashMap::new()),
        next: AtomicU64::new(0),
    });
    {
        let gw = gw.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = replies.next().await {
                let id = d
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|c| c.to_string());
                if let Some(id) = id {
                    let tx = gw
                        .pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    if let Some(tx) = tx {
                        let _ = tx.send(d.data);
                    }
                }
            }
        });
    }
    async fn handler(State(gw): State<Arc<LapinGateway>>, body: Bytes) -> Response {
        let job = match parse(&body) {
            Ok(job) => job,
            Err(e) => return bad_request(e),
        };
        let error = |m: String| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "error", "message": m})),
            )
                .into_response()
        };
        let payload = match serde_json::to_vec(&job) {
            Ok(p) => p,
            Err(e) => return error(e.to_string()),
        };
        let id = gw.next.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        gw.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), tx);
        let props = BasicProperties::default()
            .with_reply_to("amq.rabbitmq.reply-to".into())
            .with_correlation_id(ShortString::from(id))
            .with_delivery_mode(if gw.persistent { 2 } else { 1 });
        match gw
            .ch
            .basic_publish(
                "",
                &gw.queue,
                BasicPublishOptions::default(),
                &payload,
                props,
            )
            .await
        {
            Ok(confirm) => {
                if gw.persistent {
                    if let Err(e) = confirm.await {
                        return error(e.to_string());
                    }
                }
            }
            Err(e) => return error(e.to_string()),
        }
        match rx.await {
            Ok(data) => match serde_json::from_slice::<Answer>(&data) {
                Ok(answer) => jsend(&answer),
                Err(e) => error(e.to_string()),
            },
            Err(_) => error("no answer".into()),
        }
    }
    let app = Router::new()
        .route("/forecast", post(handler))
        .with_state(gw);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| e.to_string())?;
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// Acknowledges a channel's deliveries in batches (`multiple`) once every
/// earlier delivery is done: the same scheme as Horizon's worker, so the
/// ceiling stays comparable.
#[derive(Default)]
struct Acks {
    /// Every tag up to this one is done.
    done_upto: u64,
    done: BTreeMap<u64, ()>,
    to_ack: Option<u64>,
    sending: bool,
}

async fn batch_ack(ch: &Channel, acks: &Mutex<Acks>, tag: u64) {
    {
        let mut s = acks.lock().unwrap_or_else(|p| p.into_inner());
        s.done.insert(tag, ());
        let s = &mut *s;
        while s.done.remove(&(s.done_upto + 1)).is_some() {
            s.done_upto += 1;
            s.to_ack = Some(s.done_upto);
        }
        if s.sending || s.to_ack.is_none() {
            return;
        }
        s.sending = true;
    }
    loop {
        let target = {
            let mut s = acks.lock().unwrap_or_else(|p| p.into_inner());
            match s.to_ack.take() {
                Some(t) => t,
                None => {
                    s.sending = false;
                    return;
                }
            }
        };
        if ch
            .basic_ack(target, BasicAckOptions { multiple: true })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A bare lapin worker: takes jobs from `queue`, computes, replies, acks.
pub async fn serve_lapin_worker(uri: &str, queue: &str) -> Result<(), String> {
    let conn = connect(uri).await.map_err(|e| e.to_string())?;
    let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
    declare(&ch, queue).await.map_err(|e| e.to_string())?;
    ch.basic_qos(128, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut jobs = ch
        .basic_consume(
            queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let acks = Arc::new(Mutex::new(Acks::default()));
    while let Some(Ok(d)) = jobs.next().await {
        let ch = ch.clone();
        let acks = acks.clone();
        tokio::spawn(async move {
            if let Ok(job) = serde_json::from_slice::<Job>(&d.data) {
                let answer = serde_json::to_vec(&compute(&job)).unwrap_or_default();
                if let (Some(to), Some(id)) = (
                    d.properties.reply_to().as_ref(),
                    d.properties.correlation_id().as_ref(),
                ) {
                    let props = BasicProperties::default().with_correlation_id(id.clone());
                    let _ = ch
                        .basic_publish(
                            "",
                            to.as_str(),
                            BasicPublishOptions::default(),
                            &answer,
                            props,
                        )
                        .await;
                }
            }
            batch_ack(&ch, &acks, d.delivery_tag).await;
        });
    }
    Ok(())
}

/// Deletes the bare scenario's queue.
pub async fn delete_queue(uri: &str, queue: &str) {
    if let Ok(conn) = connect(uri).await {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch.queue_delete(queue, Default::default()).await;
        }
        let _ = conn.close(200, "done").await;
    }
}
