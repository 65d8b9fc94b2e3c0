//! The JSON body extractors: check the content type and encoding, enforce
//! the size limit, the body budget and the body timeout, and parse the body
//! into its request type (large bodies on the blocking pool), turning every
//! problem into a JSend `fail` instead of axum's plain-text rejections.

use crate::admission::Slot;
use crate::jsend::ApiError;
use crate::validate::FromJson;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use protocol::ModelName;
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// Bodies up to this size are parsed on the async runtime; larger ones on
/// the blocking pool, so a large body never holds up other requests.
pub const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// At most this many large bodies are parsed at once (one per core), so a
/// burst of them does not crowd out every other CPU user.
fn parse_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// A request body parsed into the request type `T`.
pub struct JsonBody<T>(pub T);

impl<T: FromJson> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (bytes, _room) = read_body(req, state).await?;
        parse(bytes, T::from_json).await.map(JsonBody)
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
        let (bytes, _room) = read_body(req, state).await?;
        parse(bytes, move |bytes| {
            let digest = keyed.then(|| {
                use sha2::Digest;
                let hash = sha2::Sha256::digest(bytes);
                hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
            });
            T::from_json(bytes).map(|body| KeyedBody { body, digest })
        })
        .await
    }
}

/// Checks the headers, takes room in the body budget and reads the whole
/// body within the body timeout. The room is held while the body is parsed.
async fn read_body(req: Request, state: &AppState) -> Result<(Bytes, Slot), ApiError> {
    check_content_type(req.headers().get(header::CONTENT_TYPE))?;
    check_content_encoding(req.headers().get(header::CONTENT_ENCODING))?;
    let limit = state.config.body_limit;
    let too_large = || {
        ApiError::fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    // Refused before a byte of it is read when it says it is too large.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let room = state.admission.body(declared.unwrap_or(limit))?;
    let timeout = state.config.connections.body_timeout;
    let read = tokio::time::timeout(timeout, Bytes::from_request(req, state)).await;
    let Ok(read) = read else {
        return Err(ApiError::fail(
            StatusCode::REQUEST_TIMEOUT,
            "body",
            format!(
                "the request body did not arrive within {}",
                humantime::format_duration(timeout)
            ),
        ));
    };
    let bytes = read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
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
        return Err(ApiError::field(
            "body",
            "the body is empty; expected a JSON object",
        ));
    }
    Ok((bytes, room))
}

/// Runs `parse` on the body: inline for a small body, on the blocking pool
/// (one large body per core at a time) for a large one.
async fn parse<R: Send + 'static>(
    bytes: Bytes,
    parse: impl FnOnce(&[u8]) -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    if bytes.len() <= INLINE_PARSE_BYTES {
        return parse(&bytes);
    }
    let _slot = parse_slots().acquire().await.map_err(|_| {
        ApiError::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
    })?;
    tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|_| {
            tracing::error!("parsing a request body panicked");
            ApiError::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while reading the request body",
            )
        })?
}

/// Bodies are read as sent: an encoded (e.g. gzip) body is refused with a
/// 415 rather than parsed as JSON and answered "malformed".
fn check_content_encoding(value: Option<&axum::http::HeaderValue>) -> Result<(), ApiError> {
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

fn check_content_type(value: Option<&axum::http::HeaderValue>) -> Result<(), ApiError> {
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
        // Inside the caller's tenant: another tenant's model cannot be named.
        let tenant = crate::auth::tenant_of(parts)?;
        ModelName::parse_in(&tenant, &name)
            .map(ModelPath)
            .map_err(|e| ApiError::field("name", e.to_string()))
    }
}
