//! Serving the API on a listener until told to stop, and the [`Shutdown`]
//! signal that tells it (mini-redis style: one sender, any number of waiters).
//!
//! On shutdown the listener stops accepting and in-flight requests finish
//! before [`serve`] returns.
//!
//! Connections are served by hyper directly (not `axum::serve`) so that the
//! [`ConnectionLimits`] apply: a header read timeout (which also ends idle
//! keep-alive connections), a cap on open connections, and JSend answers
//! with the right headers for what the HTTP layer refuses. HTTPS
//! ([`crate::tls`]) goes through the same loop, its TLS handshake being one
//! more step before a connection is served.

use crate::admission::RETRY_AFTER_SECS;
use crate::jsend::ApiError;
use crate::{router, AppState};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

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
    serve_with(listener, None, state, shutdown).await
}

/// The one connection loop, for HTTP and HTTPS: with `tls`, each accepted
/// connection first does its TLS handshake (the acceptor step), within the
/// header timeout, then is served exactly as a plain one, under the same
/// [`ConnectionLimits`] and the same answers for what the HTTP layer refuses.
pub(crate) async fn serve_with(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
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
        .max_headers(HYPER_MAX_HEADER_FIELDS)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
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
        let permit = open.clone().try_acquire_owned().ok();
        if permit.is_none() {
            metrics::counter!("horizon_connections_refused_total").increment(1);
        }
        let tls = tls.clone();
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            let Some(tls) = tls else {
                match permit {
                    Some(permit) => {
                        serve_connection(stream, permit, &builder, service, &shutdown).await
                    }
                    None => refuse_connection(stream).await,
                }
                return;
            };
            // The handshake is part of receiving the first request's headers:
            // a client that stalls in it is cut off by the same timer (shorter
            // when the connection is refused anyway).
            let limit = if permit.is_some() {
                header_timeout
            } else {
                REFUSAL_TIME.min(header_timeout)
            };
            let stream = match tokio::time::timeout(limit, tls.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            match permit {
                Some(permit) => {
                    serve_connection(stream, permit, &builder, service, &shutdown).await
                }
                None => refuse_connection(stream).await,
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one connection (plain or TLS) while it holds its place under the
/// cap; on shutdown, finishes the request in flight, then closes.
async fn serve_connection<I>(
    io: I,
    _permit: OwnedSemaphorePermit,
    builder: &http1::Builder,
    service: TowerToHyperService<Router>,
    shutdown: &Shutdown,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection(TokioIo::new(io), service);
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
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Time a refused connection is given to take its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// Answers a connection over the cap with a 503 and closes it, without
/// reading its request: a client sees why instead of a reset.
async fn refuse_connection<I: AsyncWrite + Unpin>(mut stream: I) {
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
    let _ = tokio::time::timeout(REFUSAL_TIME, write).await;
}

/// Most header fields a request may carry; more is a JSend 431.
pub const MAX_HEADER_FIELDS: usize = 100;
/// Most bytes of header fields (names, values and separators) a request may
/// carry; more is a JSend 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// hyper's own limit on header fields, above ours so that ours (with a JSend
/// answer) is met first; past it hyper answers 431 with an empty body. (Its
/// limit on header bytes is its read buffer, ~400 KiB, also above ours.)
const HYPER_MAX_HEADER_FIELDS: usize = 4 * MAX_HEADER_FIELDS;

/// What every request and answer go through at the HTTP layer:
/// - a request whose headers are over [`MAX_HEADER_FIELDS`] or
///   [`MAX_HEADER_BYTES`] is answered a JSend 431 before any routing and its
///   connection closed (a repeated `Content-Length` never gets here: hyper
///   merges equal ones and refuses different ones itself);
/// - `Connection: close` on an answer to a request whose body was not read
///   to its end (e.g. an early rejection), and on every error answered to a
///   request with a body: the unread rest cannot be told from the next
///   request, so the connection is closed, and saying so lets the client
///   open a new one instead of writing into a closed one;
/// - `Retry-After` on every 503 and 429.
async fn http_hygiene(request: Request, next: Next) -> Response {
    if let Some(refused) = refuse_headers(request.headers()) {
        let mut response = refused.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let read = Arc::new(AtomicBool::new(!has_body));
    let request = request.map(|body| {
        Body::new(Watched {
            inner: body,
            read: read.clone(),
        })
    });
    let mut response = next.run(request).await;
    let status = response.status();
    let unread = !read.load(Ordering::Acquire);
    let headers = response.headers_mut();
    if unread || (has_body && (status.is_client_error() || status.is_server_error())) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
        && !headers.contains_key(header::RETRY_AFTER)
    {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

/// The JSend answer for headers the server will not take, if any.
fn refuse_headers(headers: &HeaderMap) -> Option<ApiError> {
    let fields = headers.len();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if fields > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES {
        return Some(ApiError::fail(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers",
            format!(
                "the request has {fields} header fields of {bytes} bytes; at most \
                 {MAX_HEADER_FIELDS} fields and {MAX_HEADER_BYTES} bytes are accepted"
            ),
        ));
    }
    None
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.read.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
