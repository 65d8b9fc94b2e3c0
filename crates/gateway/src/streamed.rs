//! A request body parsed on the blocking pool while it arrives: the one
//! path of large JSON bodies ([`crate::body`]) and of CSV and Parquet
//! bodies ([`crate::bulk`]).
//!
//! The async side reads the chunks within the size limit and the body's
//! [`Pace`] and queues a few of them (what the gateway holds of a body's
//! text at most). The parser reads them as a blocking [`Read`] that digests
//! each chunk as it takes it and drops it once read, and holds one of a few
//! parse slots while it has bytes to parse, not while it waits for the
//! client. A failure on the async side (too large, too slow, a lost
//! connection) is the answer, whatever the parser made of the part it got;
//! the parser sees it as a read error, never as the end of a whole body.

use crate::jsend::ApiError;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use futures_util::StreamExt;
use sha2::Digest;
use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Chunks of a body queued for its parser: what the gateway holds of a
/// body's text at most (hyper's chunks are up to a few hundred KiB).
const QUEUED_CHUNKS: usize = 8;

/// At most this many large bodies are parsed at once (one per core), so a
/// burst of them does not crowd out every other CPU user.
fn parse_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// How long a client may take to send a body.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pace {
    /// The whole body within this time, not counting the time its chunks
    /// wait for the parser (the client is not to blame for that).
    Whole(Duration),
    /// Each chunk within this time of the one before: an upload of
    /// gigabytes may take long, but never stall.
    Steady(Duration),
}

impl Pace {
    /// The time the client has for the whole body or for each chunk.
    pub(crate) fn time(self) -> Duration {
        match self {
            Pace::Whole(d) | Pace::Steady(d) => d,
        }
    }
}

/// What a body may take: its size and its pace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub bytes: u64,
    /// What the body is called in errors ("request body").
    pub what: &'static str,
    /// The setting of the size limit, named when the body is too large.
    pub setting: &'static str,
    pub pace: Pace,
}

impl Limits {
    pub(crate) fn too_large(self) -> ApiError {
        ApiError::fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
            format!(
                "the {} is larger than the limit of {} bytes ({})",
                self.what, self.bytes, self.setting
            ),
        )
    }

    pub(crate) fn timed_out(self) -> ApiError {
        let message = match self.pace {
            Pace::Whole(d) => format!(
                "the {} did not arrive within {}",
                self.what,
                humantime::format_duration(d)
            ),
            Pace::Steady(d) => format!(
                "no part of the {} arrived for {}",
                self.what,
                humantime::format_duration(d)
            ),
        };
        ApiError::fail(StatusCode::REQUEST_TIMEOUT, "body", message)
    }
}

/// The body as its parser reads it.
pub(crate) struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, ()>>,
    current: Bytes,
    digest: Option<sha2::Sha256>,
    text: bool,
    slot: Option<SemaphorePermit<'static>>,
    runtime: Handle,
}

impl BodyReader {
    /// Whether anything but whitespace has been read.
    pub(crate) fn saw_text(&self) -> bool {
        self.text
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            let next = match self.rx.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    self.slot = None;
                    self.rx.blocking_recv()
                }
            };
            let chunk = match next {
                None => return Ok(0),
                Some(Err(())) => return Err(std::io::Error::other("the request body was cut off")),
                Some(Ok(chunk)) => chunk,
            };
            if self.slot.is_none() {
                let slot = self.runtime.block_on(parse_slots().acquire());
                self.slot = Some(slot.map_err(|_| std::io::Error::other("shutting down"))?);
            }
            if let Some(d) = &mut self.digest {
                d.update(&chunk);
            }
            self.text = self.text || !chunk.iter().all(u8::is_ascii_whitespace);
            self.current = chunk;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Parses `body` with `parse` on the blocking pool while it arrives. With a
/// `digest` (seeded with whatever else is keyed), the answer carries its
/// hex SHA-256 over the body's bytes once `parse` has read them all.
pub(crate) async fn parse<T, F>(
    body: Body,
    limits: Limits,
    digest: Option<sha2::Sha256>,
    parse: F,
) -> Result<(T, Option<String>), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut BodyReader) -> Result<T, ApiError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    let mut reader = BodyReader {
        rx,
        current: Bytes::new(),
        digest,
        text: false,
        slot: None,
        runtime: Handle::current(),
    };
    let parsed = tokio::task::spawn_blocking(move || {
        let parsed = parse(&mut reader)?;
        Ok::<_, ApiError>((parsed, reader.digest.take().map(|d| hex(d.finalize()))))
    });
    let failed = feed(body, limits, &tx).await;
    if failed.is_some() {
        // The parser must not take a cut-off body for a whole one.
        let _ = tx.send(Err(())).await;
    }
    drop(tx);
    let parsed = parsed.await.map_err(|_| {
        tracing::error!("parsing a request body panicked");
        ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while reading the request body",
        )
    })?;
    match failed {
        Some(e) => Err(e),
        None => parsed,
    }
}

/// Queues the body's chunks for the parser until its end, a failure, or
/// the parser stopping (at an error, which it tells).
async fn feed(
    body: Body,
    limits: Limits,
    tx: &mpsc::Sender<Result<Bytes, ()>>,
) -> Option<ApiError> {
    let mut stream = body.into_data_stream();
    let mut deadline = Instant::now() + limits.pace.time();
    let mut read = 0u64;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, stream.next()) => next,
            () = tx.closed() => return None,
        };
        let chunk = match next {
            Err(_) => return Some(limits.timed_out()),
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                return Some(ApiError::field(
                    "body",
                    format!("the request body could not be read: {e}"),
                ))
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        read += chunk.len() as u64;
        if read > limits.bytes {
            return Some(limits.too_large());
        }
        let queued = Instant::now();
        if tx.send(Ok(chunk)).await.is_err() {
            return None;
        }
        deadline = match limits.pace {
            Pace::Whole(_) => deadline + queued.elapsed(),
            Pace::Steady(d) => Instant::now() + d,
        };
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn limits(pace: Pace) -> Limits {
        Limits {
            bytes: 1 << 20,
            what: "test body",
            setting: "--test",
            pace,
        }
    }

    /// `n` chunks of "ab", each `every` after the one before.
    fn paced(n: usize, every: Duration) -> Body {
        let chunks = stream::iter(0..n).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"ab"))
        });
        Body::from_stream(chunks)
    }

    fn read_all(reader: &mut BodyReader) -> Result<Vec<u8>, ApiError> {
        let mut all = Vec::new();
        reader
            .read_to_end(&mut all)
            .map_err(|e| ApiError::field("body", e.to_string()))?;
        Ok(all)
    }

    fn status(e: ApiError) -> (StatusCode, String) {
        match e {
            ApiError::Fail(status, fields) => (status, fields["body"].clone()),
            other => panic!("expected a fail, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_body_may_take_longer_than_its_pace_in_all() {
        // 8 chunks 50 ms apart: 400 ms in all, never 200 ms of silence.
        let every = Duration::from_millis(50);
        let pace = Duration::from_millis(200);
        let digest = Some(sha2::Sha256::new());
        let (body, hex_digest) = parse(
            paced(8, every),
            limits(Pace::Steady(pace)),
            digest,
            read_all,
        )
        .await
        .expect("a steady body is taken");
        assert_eq!(body, b"ab".repeat(8));
        assert_eq!(hex_digest, Some(hex(sha2::Sha256::digest(b"ab".repeat(8)))));
        // The same body against the whole-body time is refused.
        let refused = parse(paced(8, every), limits(Pace::Whole(pace)), None, read_all).await;
        let (code, message) = status(refused.expect_err("too slow in all"));
        assert_eq!(code, StatusCode::REQUEST_TIMEOUT);
        assert!(message.contains("did not arrive within"), "{message}");
        // A silence longer than the pace is refused, and the parser is told
        // the body was cut off rather than given its end.
        let stalls = parse(
            paced(2, pace * 2),
            limits(Pace::Steady(pace)),
            None,
            read_all,
        )
        .await;
        let (code, message) = status(stalls.expect_err("stalled"));
        assert_eq!(code, StatusCode::REQUEST_TIMEOUT);
        assert!(
            message.contains("no part of the test body arrived"),
            "{message}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_its_limit_names_the_setting_and_the_parser_sees_a_cut() {
        let small = Limits {
            bytes: 5,
            ..limits(Pace::Steady(Duration::from_secs(5)))
        };
        let told = Arc::new(AtomicBool::new(false));
        let seen = told.clone();
        let refused = parse(paced(4, Duration::ZERO), small, None, move |reader| {
            let read = read_all(reader);
            seen.store(read.is_err(), Ordering::Relaxed);
            read
        })
        .await;
        let (code, message) = status(refused.expect_err("too large"));
        assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(message.contains("limit of 5 bytes (--test)"), "{message}");
        assert!(
            told.load(Ordering::Relaxed),
            "the parser took a cut body for a whole one"
        );
    }
}
