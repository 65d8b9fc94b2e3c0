//! The JSON body extractor: checks the content type, enforces the size limit
//! and parses the body, turning every problem into a JSend `fail` instead of
//! axum's plain-text rejections.

use crate::jsend::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use protocol::ModelName;
use serde_json::Value;

/// A request body that is a syntactically valid JSON document.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
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
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::field("body", json_error_message(&e)))
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

fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains("number out of range") {
        format!(
            "malformed JSON: {text}; numbers must be finite (NaN and infinity are not accepted)"
        )
    } else {
        format!("malformed JSON: {text}")
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
        ModelName::parse(&name)
            .map(ModelPath)
            .map_err(|e| ApiError::field("name", e.to_string()))
    }
}
