//! Waiting out a store that is unavailable.
//!
//! A dropped connection or a restarting database says nothing about the job:
//! the worker holds the job and tries again with backoff (100 ms doubling to
//! 5 s) for up to [`STORE_RETRY_FOR`], as the README promises. Only then does
//! it give up, with [`protocol::JobError::Unavailable`] (a 503 the client may
//! retry), never with a verdict on the version.

use std::future::Future;
use std::time::Duration;
use store::StoreError;

/// How long a worker keeps retrying while the store is unreachable, holding
/// the job unacknowledged.
pub const STORE_RETRY_FOR: Duration = Duration::from_secs(120);

/// Runs `op` until it answers anything but [`StoreError::Unavailable`], or
/// until `retry_for` has passed (then the last `Unavailable` is returned).
pub(crate) async fn while_unavailable<T, F, Fut>(
    what: &str,
    retry_for: Duration,
    mut op: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + retry_for;
    let mut nap = Duration::from_millis(100);
    loop {
        match op().await {
            Err(StoreError::Unavailable(e)) if tokio::time::Instant::now() + nap < deadline => {
                tracing::warn!("store unavailable while {what}, retrying in {nap:?}: {e}");
                tokio::time::sleep(nap).await;
                nap = (nap * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn retries_only_unavailability_and_gives_up_in_time() {
        let calls = AtomicUsize::new(0);
        let ok: Result<u8, _> = while_unavailable("testing", Duration::from_secs(5), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(StoreError::Unavailable("down".into())),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(ok.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let verdict: Result<u8, _> =
            while_unavailable("testing", Duration::from_secs(5), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Internal("constraint".into()))
            })
            .await;
        assert!(matches!(verdict, Err(StoreError::Internal(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a verdict is not retried");

        let started = std::time::Instant::now();
        let down: Result<u8, _> =
            while_unavailable("testing", Duration::from_millis(400), || async {
                Err(StoreError::Unavailable("down".into()))
            })
            .await;
        assert!(matches!(down, Err(StoreError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
