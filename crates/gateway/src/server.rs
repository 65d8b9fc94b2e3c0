//! Serving the API on a listener until told to stop, and the [`Shutdown`]
//! signal that tells it (mini-redis style: one sender, any number of waiters).
//!
//! On shutdown the listener stops accepting and in-flight requests finish
//! before [`serve`] returns.
//!
//! Connections are served by hyper directly (not `axum::serve`) so that the
//! [`ConnectionLimits`] apply: a header read timeout (which also ends idle
//! keep-alive connections), a cap on open connections, and JSend answers
//! with the right headers for what the HTTP layer refuses.

use crate::admission::RETRY_AFTER_SECS;
use crate::{router, AppState};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

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

/// Limits on the connections themselves, enforced before any request is
/// routed: slow or idle clients are dropped, and the number of open
/// connections stays under the process's file descriptors so that accepting
/// (and `/healthz`) keeps working.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at most; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Time to receive a request's headers, counted from the first poll for
    /// them; it also ends an idle keep-alive connection (hyper waits for the
    /// next request's headers under the same timer).
    pub header_timeout: Duration,
    /// Time to receive a whole request body once its headers are in.
    pub body_timeout: Duration,
}

/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves the API on `listener` until `shutdown` triggers and every
/// in-flight request has been answered.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let limits = state.config.connections.clone();
    let app = router(state).layer(axum::middleware::from_fn(http_hygiene));
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors (or another transient error):
                    // wait a little instead of spinning, and keep serving the
                    // connections already open.
                    tracing::warn!(error = %e, "accept error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics::counter!("horizon_connections_refused_total").increment(1);
            connections.spawn(refuse_connection(stream));
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.wait() => conn.as_mut().graceful_shutdown(),
            }
            // Finishes the request in flight, then closes.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers a connection over the cap with a 503 and closes it, without
/// reading its request: a client sees why instead of a reset.
async fn refuse_connection(mut stream: TcpStream) {
    let body =
        r#"{"status":"error","message":"too many open connections; retry later","code":503}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// What every answer gets at the HTTP layer:
/// - `Connection: close` on an error answered to a request that came with a
///   body: the handler may not have read it, and the unread rest cannot be
///   told from the next request, so the connection is closed, and saying so
///   lets the client open a new one instead of writing into a closed one;
/// - `Retry-After` on every 503 and 429.
async fn http_hygiene(request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    let status = response.status();
    let headers = response.headers_mut();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
        && !headers.contains_key(header::RETRY_AFTER)
    {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}
