//! Queue depth and consumers as metrics (`horizon_queue_messages`,
//! `horizon_queue_consumers`, by `queue`): the gateway asks the broker every
//! few seconds with passive declares on a channel of its own, for as long
//! as its connection lives.

use super::Topology;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::Connection;
use std::time::Duration;

/// How often the queues are looked at.
const EVERY: Duration = Duration::from_secs(5);

/// Starts watching the job queues of `topo` on `conn`; stops when the
/// channel or the connection closes.
pub(super) async fn watch(conn: &Connection, topo: Topology) {
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    tokio::spawn(async move {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queues = [
            ("fit", topo.fit_queue),
            ("forecast", topo.forecast_queue),
            ("forecast_retry", topo.retry_queue),
            ("dead", topo.dead_queue),
        ];
        loop {
            for (label, name) in &queues {
                match ch.queue_declare(name, passive, FieldTable::default()).await {
                    Ok(q) => {
                        metrics::gauge!("horizon_queue_messages", "queue" => *label)
                            .set(f64::from(q.message_count()));
                        metrics::gauge!("horizon_queue_consumers", "queue" => *label)
                            .set(f64::from(q.consumer_count()));
                    }
                    // The channel is gone with it; a new link starts a new watch.
                    Err(_) => return,
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}
