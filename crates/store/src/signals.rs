//! In-process wake-ups for [`crate::ModelStore::wait_settled`].
//!
//! A waiter subscribes *before* it reads a version's status, so a settle that
//! happens between the read and the wait still wakes it: no lost wake-ups.
//! The signal only says "something about this model changed"; waiters always
//! re-read the store to learn what.

use protocol::ModelName;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// One change counter per model that has waiters.
#[derive(Debug, Default)]
pub struct SettleSignals {
    senders: Mutex<HashMap<ModelName, watch::Sender<u64>>>,
}

impl SettleSignals {
    pub fn new() -> Self {
        Self::default()
    }

    /// A receiver that fires on the next [`Self::notify`] for `model`.
    pub fn subscribe(&self, model: &ModelName) -> watch::Receiver<u64> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders
            .entry(model.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes every waiter on `model`.
    pub fn notify(&self, model: &ModelName) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = senders.get(model) {
            if tx.receiver_count() == 0 {
                // Nobody waits: forget the model so the map stays small.
                senders.remove(model);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_after_subscribe_is_not_lost() {
        let signals = SettleSignals::new();
        let model = ModelName::parse("m").unwrap();
        let mut rx = signals.subscribe(&model);
        signals.notify(&model);
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
            .await
            .expect("woken")
            .expect("sender alive");
    }
}
