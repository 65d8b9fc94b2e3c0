//! Turns by key: requests about the same key (a model, a tenant) that must
//! not interleave wait for each other, others do not. One gateway carries
//! all traffic, so an in-process lock per key is enough.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OwnedMutexGuard;

type Lock = Arc<tokio::sync::Mutex<()>>;

/// A lock per key, made when first asked for and dropped when nobody holds
/// or waits for it.
pub(crate) struct Turns<K: Eq + Hash + Clone> {
    locks: Arc<Mutex<HashMap<K, Lock>>>,
}

impl<K: Eq + Hash + Clone> Default for Turns<K> {
    fn default() -> Self {
        Self {
            locks: Arc::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> Turns<K> {
    /// Waits for the turn of `key`; it ends when the [`Turn`] is dropped.
    pub(crate) async fn take(&self, key: &K) -> Turn<K> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        Turn {
            guard: Some(guard),
            lock,
            key: key.clone(),
            locks: self.locks.clone(),
        }
    }
}

/// A key's turn, held until dropped.
pub(crate) struct Turn<K: Eq + Hash + Clone> {
    guard: Option<OwnedMutexGuard<()>>,
    lock: Lock,
    key: K,
    locks: Arc<Mutex<HashMap<K, Lock>>>,
}

impl<K: Eq + Hash + Clone> Drop for Turn<K> {
    fn drop(&mut self) {
        self.guard = None;
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's copy and this one: nobody else holds or waits for it
        // (a waiter holds a copy while it waits).
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_key_takes_turns_and_other_keys_do_not_wait() {
        let turns = Arc::new(Turns::<String>::default());
        let a = turns.take(&"a".to_string()).await;
        // Another key goes at once.
        let b = tokio::time::timeout(Duration::from_secs(5), turns.take(&"b".to_string()))
            .await
            .expect("another key does not wait");
        // The same key waits until the turn is given back.
        let waiter = {
            let turns = turns.clone();
            tokio::spawn(async move { turns.take(&"a".to_string()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a second turn of 'a' was given");
        drop(a);
        let again = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the turn comes")
            .expect("task");
        drop((again, b));
        // Nobody holds or waits: nothing is left behind.
        assert!(turns.locks.lock().unwrap().is_empty());
    }
}
