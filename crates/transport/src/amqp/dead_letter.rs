//! Dead letters: a job the broker gave up on is failed in the store and its
//! client answered with an error.

use futures_util::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        BasicRejectOptions,
    },
    types::FieldTable,
    BasicProperties, Channel, Connection,
};
use protocol::FitJob;
use std::{sync::Arc, time::Duration};
use store::ModelStore;
use tracing::{error, warn};

use super::batch::{self, BATCH_KIND};
use super::{
    header_int, header_str, long_str, publish_reply, Topology, ATTEMPTS_HEADER, ERROR_HEADER,
    FIT_KEY,
};

/// Consumes the dead-letter queue on a channel of its own; the future ends
/// when the channel does. The caller runs it, tied to its connection.
pub(super) async fn dead_letter_handler(
    conn: &Connection,
    topo: Topology,
    store: Arc<dyn ModelStore>,
) -> Result<impl std::future::Future<Output = ()>, lapin::Error> {
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
    Ok(async move {
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
    })
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
            // A dead shard fails its whole version, and says which it was.
            let why = match job.shard {
                Some(shard) => format!("{shard}: {why}"),
                None => why.clone(),
            };
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
        // A batch's error answer carries the batch back: its ids say whom
        // it answers.
        let body: &[u8] = if batch::is_batch(&d.properties) {
            props = props.with_type(BATCH_KIND.into());
            &d.data
        } else {
            &[]
        };
        // The asker may be gone; nothing to do then.
        let _ = publish_reply(ch, reply_to, body, props).await;
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
