//! The JSON body extractor: checks the content type, enforces the size limit
//! and parses the body into its request type (large bodies on the blocking
//! pool), turning every problem into a JSend `fail` instead of axum's
//! plain-text rejections.

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
        check_content_type(req.headers().get(header::CONTENT_TYPE))?;
        let limit = state.config.body_limit;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body",
                    format!("the request body is larger than the limit of {limit} bytes"),
                )
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
        if bytes.len() <= INLINE_PARSE_BYTES {
            return T::from_json(&bytes).map(JsonBody);
        }
        let _slot = parse_slots().acquire().await.map_err(|_| {
            ApiError::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )
        })?;
        tokio::task::spawn_blocking(move || T::from_json(&bytes))
            .await
            .map_err(|_| {
                tracing::error!("parsing a request body panicked");
                ApiError::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while reading the request body",
                )
            })?
            .map(JsonBody)
    }
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
