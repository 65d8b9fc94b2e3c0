//! Serving the API on a listener until told to stop, and the [`Shutdown`]
//! signal that tells it (mini-redis style: one sender, any number of waiters).
//!
//! On shutdown the listener stops accepting and in-flight requests finish
//! before [`serve`] returns.

use crate::{router, AppState};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A stop signal that can be triggered once and awaited by many.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Asks everything waiting on this signal to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`Self::trigger`] has been called (at once if it was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // Err only if the sender is gone, which cannot happen while we hold it.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Triggers this signal on Ctrl-C or SIGTERM.
    pub fn trigger_on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let ctrl_c = async {
                if let Err(e) = tokio::signal::ctrl_c().await {
                    tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            };
            #[cfg(unix)]
            let term = async {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        std::future::pending::<()>().await;
                    }
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            tokio::select! {
                _ = ctrl_c => tracing::info!("Ctrl-C received, finishing in-flight requests"),
                _ = term => tracing::info!("SIGTERM received, finishing in-flight requests"),
                _ = this.wait() => return,
            }
            this.trigger();
        });
    }
}

/// Serves the API on `listener` until `shutdown` triggers and every
/// in-flight request has been answered.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
