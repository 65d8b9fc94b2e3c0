//! In-process wake-ups for [`crate::ModelStore::wait_settled`].
//!
//! A waiter subscribes *before* it reads a version's status, so a settle that
//! happens between the read and the wait still wakes it: no lost wake-ups.
//! The signal only says "something about this model changed"; waiters always
//! re-read the store to learn what.

use crate::{StoreError, VersionInfo, VersionStatus};
use protocol::{ModelName, Version};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest a waiter sleeps between two reads, whatever the signals say: a
/// safety net for wake-ups that cannot reach this process.
const RECHECK: Duration = Duration::from_secs(1);

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

impl SettleSignals {
    /// The wait of [`crate::ModelStore::wait_settled`]: reads `version` with
    /// `read` until it is no longer pending, woken by [`Self::notify`] and
    /// re-reading at least every second, for at most `timeout`.
    pub async fn wait_settled<F, Fut>(
        &self,
        model: &ModelName,
        version: Version,
        timeout: Duration,
        mut read: F,
    ) -> Result<VersionInfo, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<VersionInfo>, StoreError>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            // Subscribe before reading, so a settle in between still wakes us.
            let mut changed = self.subscribe(model);
            let info = read().await?.ok_or_else(|| StoreError::UnknownVersion {
                model: model.clone(),
                version,
            })?;
            if info.status != VersionStatus::Pending {
                return Ok(info);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::WaitTimeout(timeout));
            }
            let nap = (deadline - now).min(RECHECK);
            if let Ok(Err(_)) = tokio::time::timeout(nap, changed.changed()).await {
                // The signal went away; fall back to polling for this nap.
                tokio::time::sleep(nap.min(Duration::from_millis(50))).await;
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
