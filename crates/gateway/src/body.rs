//! The JSON body extractors: check the content type and encoding, enforce
//! the size limit, the body budget and the body timeout, and parse the body
//! into its request type, turning every problem into a JSend `fail` instead
//! of axum's plain-text rejections.
//!
//! A small body (a `Content-Length` up to [`INLINE_PARSE_BYTES`]) is read
//! whole and parsed on the async runtime. Any other is parsed on the
//! blocking pool while it arrives ([`crate::streamed`]), so a fit's text is
//! never held whole.

use crate::admission::Slot;
use crate::jsend::ApiError;
use crate::streamed::{self, hex, Limits, Pace};
use crate::validate::FromJson;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use protocol::ModelName;
use sha2::Digest;
use std::io::BufReader;

/// Bodies declared up to this size are read whole and parsed on the async
/// runtime; larger ones (and those of unknown size) on the blocking pool
/// while they arrive, so a large body never holds up other requests.
pub const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// The parser's read buffer (the JSON reader takes its bytes one by one).
const READ_BUFFER: usize = 64 * 1024;

/// A request body parsed into the request type `T`.
pub struct JsonBody<T>(pub T);

impl<T: FromJson> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (body, _) = read_json::<T>(req, state, false).await?;
        Ok(JsonBody(body))
    }
}

/// A request body parsed into `T`, with the SHA-256 digest (hex) of its
/// bytes when the request carries an `Idempotency-Key`: the key is stored
/// with the digest, so that the key reused with another body is refused.
pub struct KeyedBody<T> {
    pub body: T,
    pub digest: Option<String>,
}

impl<T: FromJson> FromRequest<AppState> for KeyedBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let keyed = req.headers().contains_key(crate::handlers::IDEMPOTENCY_KEY);
        let (body, digest) = read_json::<T>(req, state, keyed).await?;
        Ok(KeyedBody { body, digest })
    }
}

fn empty_body() -> ApiError {
    ApiError::field("body", "the body is empty; expected a JSON object")
}

/// Checks the headers, takes room in the body budget (held until the body
/// is parsed) and parses the body, with its digest when `keyed`.
async fn read_json<T: FromJson>(
    req: Request,
    state: &AppState,
    keyed: bool,
) -> Result<(T, Option<String>), ApiError> {
    check_content_type(req.headers().get(header::CONTENT_TYPE))?;
    check_content_encoding(req.headers().get(header::CONTENT_ENCODING))?;
    let limits = Limits {
        bytes: state.config.body_limit as u64,
        what: "request body",
        setting: "--max-body-bytes",
        pace: Pace::Whole(state.config.connections.body_timeout),
    };
    // Refused before a byte of it is read when it says it is too large.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n as u64 > limits.bytes) {
        return Err(limits.too_large());
    }
    let _room: Slot = state
        .admission
        .body(declared.unwrap_or(state.config.body_limit))?;
    if declared.is_some_and(|n| n <= INLINE_PARSE_BYTES) {
        let bytes = read_whole(req, state, limits).await?;
        let digest = keyed.then(|| hex(sha2::Sha256::digest(&bytes)));
        return T::from_json(&bytes).map(|body| (body, digest));
    }
    parse_streamed::<T>(req.into_body(), limits, keyed).await
}

/// Reads a small body whole within the body timeout.
async fn read_whole(req: Request, state: &AppState, limits: Limits) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(limits.pace.time(), Bytes::from_request(req, state)).await;
    let Ok(read) = read else {
        return Err(limits.timed_out());
    };
    let bytes = read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            limits.too_large()
        } else {
            ApiError::field(
                "body",
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            )
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(empty_body());
    }
    Ok(bytes)
}

/// Parses a JSON body into `T` on the blocking pool while it arrives
/// ([`streamed::parse`]), with its digest when `keyed`.
async fn parse_streamed<T: FromJson>(
    body: Body,
    limits: Limits,
    keyed: bool,
) -> Result<(T, Option<String>), ApiError> {
    streamed::parse(body, limits, keyed.then(sha2::Sha256::new), |reader| {
        // The JSON reader takes its bytes one at a time, which std's
        // `BufReader` serves from its buffer. A parsed body was read to its
        // end (only whitespace may follow the value), so all of it was
        // digested.
        match T::from_reader(BufReader::with_capacity(READ_BUFFER, &mut *reader)) {
            Ok(body) => Ok(body),
            Err(_) if !reader.saw_text() => Err(empty_body()),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Bodies are read as sent: an encoded (e.g. gzip) body is refused with a
/// 415 rather than parsed as JSON and answered "malformed".
pub(crate) fn check_content_encoding(
    value: Option<&axum::http::HeaderValue>,
) -> Result<(), ApiError> {
    let Some(value) = value else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    if text.is_empty() || text == "identity" {
        return Ok(());
    }
    Err(ApiError::fail(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content-encoding",
        format!(
            "'{}' is not accepted; send the body uncompressed (no Content-Encoding)",
            value.to_str().unwrap_or("(not text)")
        ),
    ))
}

pub(crate) fn check_content_type(value: Option<&axum::http::HeaderValue>) -> Result<(), ApiError> {
    let Some(value) = value else {
        return Err(ApiError::field(
            "content-type",
            "missing; send the body as JSON with 'Content-Type: application/json'",
        ));
    };
    let text = value.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::field(
            "content-type",
            format!(
                "expected application/json, got '{}'",
                value.to_str().unwrap_or("(not text)")
            ),
        ))
    }
}

/// The `{name}` of a `/v1/models/{name}` path, checked.
pub struct ModelPath(pub ModelName);

impl<S: Send + Sync> FromRequestParts<S> for ModelPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::field(
                    "name",
                    format!("bad model name in the path: {}", e.body_text()),
                )
            })?;
        in_tenant(parts, &name).map(ModelPath)
    }
}

/// The `{name}` and `{version}` of a `/v1/models/{name}/versions/{version}`
/// path: the model checked as [`ModelPath`], the version as written (the
/// handler says what a version must be).
pub struct VersionPath(pub ModelName, pub String);

impl<S: Send + Sync> FromRequestParts<S> for VersionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((name, version)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::field("name", format!("bad model path: {}", e.body_text())))?;
        in_tenant(parts, &name).map(|model| VersionPath(model, version))
    }
}

/// The model `name` inside the caller's tenant: another tenant's model
/// cannot be named.
fn in_tenant(parts: &Parts, name: &str) -> Result<ModelName, ApiError> {
    let tenant = crate::auth::tenant_of(parts)?;
    ModelName::parse_in(&tenant, name).map_err(|e| ApiError::field("name", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{SeedFit, V1Fit};
    use futures_util::{stream, StreamExt};
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        bytes: 1 << 20,
        what: "request body",
        setting: "--max-body-bytes",
        pace: Pace::Whole(Duration::from_secs(20)),
    };

    /// A body sent in chunks of `size` bytes.
    fn chunked(text: &str, size: usize) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = text
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Body::from_stream(stream::iter(chunks))
    }

    /// A body whose first part arrives and then nothing more, ever.
    fn stalled(first: &str) -> Body {
        let first: Result<Bytes, std::io::Error> = Ok(Bytes::copy_from_slice(first.as_bytes()));
        Body::from_stream(stream::iter([first]).chain(stream::pending()))
    }

    fn status_and_fields(e: ApiError) -> (StatusCode, crate::jsend::FieldErrors) {
        match e {
            ApiError::Fail(status, fields) => (status, fields),
            other => panic!("expected a fail, got {other:?}"),
        }
    }

    /// Bodies of every fit form, each with its keys in both orders where the
    /// order changes how it is read.
    const FITS: [&str; 6] = [
        r#"{"sizes": [3, 4], "ids": ["a", "b"], "y": [1, 2, null, 4, 5, 6, 7], "method": "naive"}"#,
        r#"{"y": [1, 2, null, 4, 5, 6, 7], "ids": ["a", "b"], "sizes": [3, 4], "method": "naive"}"#,
        r#"{"unique_id": ["a", "b", "a", "b", "a", "b"], "ds": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03", "2024-01-04"], "y": [1, 10, 2, 20, 3, 40]}"#,
        r#"{"y": [1, 10, 2, 20, 3, 40], "ds": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03", "2024-01-04"], "unique_id": ["a", "b", "a", "b", "a", "b"]}"#,
        r#"{"series": [{"id": "a", "values": [1, 2, 3], "start": "2024-01-01", "freq": "D"}, {"values": [4, 5, 6, 7], "id": "b"}], "season_length": [2, 3]}"#,
        r#"  {"series": [{"id": "x", "ds": ["2024-01-01T00:00Z", "2024-01-01T01:00Z", "2024-01-01T03:00Z"], "values": [1.5, -2, 3e2]}]}  "#,
    ];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_in_tiny_chunks_parses_as_the_whole_body() {
        for text in FITS {
            let whole = V1Fit::from_json(text.as_bytes()).expect(text);
            for size in [1, 3, 7, 4096] {
                let (streamed, digest) = parse_streamed::<V1Fit>(chunked(text, size), LIMITS, true)
                    .await
                    .expect(text);
                assert_eq!(
                    format!("{:?}", streamed.0),
                    format!("{:?}", whole.0),
                    "{text}"
                );
                assert_eq!(digest, Some(hex(sha2::Sha256::digest(text.as_bytes()))));
            }
        }
        // Both orders of a form give the same fit.
        for pair in FITS[..4].chunks(2) {
            let a = V1Fit::from_json(pair[0].as_bytes()).expect("first order");
            let b = V1Fit::from_json(pair[1].as_bytes()).expect("second order");
            assert_eq!(format!("{:?}", a.0), format!("{:?}", b.0));
        }
        let seed = r#"{"ds": ["2024-01-01", "2024-01-02", "2024-01-04"], "data": [1, null, 3], "season_length": 2}"#;
        let (streamed, digest) = parse_streamed::<SeedFit>(chunked(seed, 2), LIMITS, false)
            .await
            .expect("seed fit");
        assert_eq!(
            format!("{:?}", streamed.0),
            format!("{:?}", SeedFit::from_json(seed.as_bytes()).expect("seed").0)
        );
        assert_eq!(digest, None);
        // Errors come out the same too.
        let bad = r#"{"series": [{"id": "a", "values": [1, "x", 3]}, 5], "method": "magic", "extra": 1, "method": "naive"}"#;
        let whole = status_and_fields(V1Fit::from_json(bad.as_bytes()).unwrap_err());
        let streamed = parse_streamed::<V1Fit>(chunked(bad, 1), LIMITS, false).await;
        let streamed = status_and_fields(streamed.expect_err("refused"));
        assert_eq!(streamed, whole);
        assert_eq!(whole.0, StatusCode::BAD_REQUEST);
        for field in ["series[0].values", "series[1]", "method", "extra"] {
            assert!(whole.1.contains_key(field), "{field}: {whole:?}");
        }
        let empty = parse_streamed::<V1Fit>(chunked("  \n ", 1), LIMITS, false).await;
        let (_, fields) = status_and_fields(empty.expect_err("refused"));
        assert!(fields["body"].contains("empty"), "{fields:?}");
        let cut = parse_streamed::<V1Fit>(chunked(&FITS[0][..30], 4), LIMITS, false).await;
        let (_, fields) = status_and_fields(cut.expect_err("refused"));
        assert!(fields["body"].contains("malformed JSON"), "{fields:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_that_stalls_mid_way_is_answered_408() {
        let limits = Limits {
            pace: Pace::Whole(Duration::from_millis(300)),
            ..LIMITS
        };
        let stalls = parse_streamed::<V1Fit>(stalled(r#"{"sizes": [3], "y": [1, 2"#), limits, true);
        let (status, fields) = status_and_fields(stalls.await.expect_err("refused"));
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{fields:?}");
        assert!(fields["body"].contains("did not arrive"), "{fields:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_limit_is_refused_mid_way() {
        // No Content-Length: the limit is found while the body arrives.
        let limits = Limits {
            bytes: 1000,
            ..LIMITS
        };
        let y = vec!["1"; 2000].join(",");
        let text = format!(r#"{{"sizes": [2000], "y": [{y}]}}"#);
        let refused = parse_streamed::<V1Fit>(chunked(&text, 100), limits, false);
        let (status, fields) = status_and_fields(refused.await.expect_err("refused"));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{fields:?}");
        // Under the limit the same body is taken.
        let taken = parse_streamed::<V1Fit>(chunked(&text, 100), LIMITS, false).await;
        assert!(taken.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_series_over_its_limit_is_refused_before_the_rest_arrives() {
        // The rest of these bodies never comes: the answer cannot wait for it
        // (it would be a 408 after the timeout). The JSON reader looks at the
        // byte after the element too many before it stops, so one is sent.
        let limits = Limits {
            pace: Pace::Whole(Duration::from_secs(30)),
            ..LIMITS
        };
        let refused = parse_streamed::<V1Fit>(
            stalled(r#"{"sizes": [3], "y": [1, 2, 3, 4, 5"#),
            limits,
            false,
        );
        let (status, fields) = status_and_fields(refused.await.expect_err("refused"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            fields["y"].contains("more than 3 values but 'sizes' add up to 3"),
            "{fields:?}"
        );
        let mut text = String::from(r#"{"series": [{"id": "a", "values": ["#);
        text.push_str(&"1,".repeat(engine::MAX_SERIES_LEN + 1));
        text.push('1');
        let refused = parse_streamed::<V1Fit>(
            stalled(&text),
            Limits {
                bytes: 1 << 22,
                ..limits
            },
            false,
        );
        let (status, fields) = status_and_fields(refused.await.expect_err("refused"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            fields["series[0].values"].contains("more than 100000"),
            "{fields:?}"
        );
    }
}
