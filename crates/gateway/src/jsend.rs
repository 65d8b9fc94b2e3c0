//! JSend answers: `success` with data, `fail` (the client's fault) with a
//! message per offending field, `error` (our fault) with a message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The JSend envelope; fields in this order so answers read naturally.
#[derive(Serialize)]
struct Envelope<T> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// A `200 {"status":"success","data":...}` answer.
pub fn success<T: Serialize>(data: T) -> Response {
    let body = Envelope {
        status: "success",
        message: None,
        code: None,
        data: Some(data),
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// Messages per offending field, e.g. `{"data": "must not be empty"}`.
pub type FieldErrors = BTreeMap<String, String>;

/// Everything a handler can answer instead of success.
#[derive(Debug)]
pub enum ApiError {
    /// JSend `fail`: the request was wrong. Usually 400.
    Fail(StatusCode, FieldErrors),
    /// JSend `error`: we failed. 500, 503 or 504.
    Error {
        status: StatusCode,
        message: String,
        data: Option<Value>,
    },
    /// A 429 or 503 answer with its own `Retry-After` (seconds), where the
    /// server's default (a couple of seconds) would be wrong.
    RetryAfter(Box<ApiError>, u64),
}

impl ApiError {
    /// A 400 `fail` about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::fail(StatusCode::BAD_REQUEST, field, message)
    }

    pub fn fail(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_string(), message.into());
        Self::Fail(status, errors)
    }

    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Error {
            status,
            message: message.into(),
            data: None,
        }
    }

    /// The same `fail` about `to` where it was about `from`: for endpoints
    /// whose field has another name than the one the shared code checks.
    pub fn renamed(self, from: &str, to: &str) -> Self {
        match self {
            Self::Fail(status, mut errors) => {
                if let Some(message) = errors.remove(from) {
                    errors.insert(to.to_string(), message);
                }
                Self::Fail(status, errors)
            }
            Self::RetryAfter(inner, secs) => {
                Self::RetryAfter(Box::new(inner.renamed(from, to)), secs)
            }
            error => error,
        }
    }

    /// The same answer, telling the client to wait `secs` seconds.
    pub fn retry_after(self, secs: u64) -> Self {
        match self {
            Self::RetryAfter(inner, _) => Self::RetryAfter(inner, secs),
            other => Self::RetryAfter(Box::new(other), secs),
        }
    }

    pub fn with_data(self, value: Value) -> Self {
        match self {
            Self::Error {
                status, message, ..
            } => Self::Error {
                status,
                message,
                data: Some(value),
            },
            fail => fail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Fail(status, errors) => {
                let body = Envelope {
                    status: "fail",
                    message: None,
                    code: None,
                    data: Some(errors),
                };
                (status, Json(body)).into_response()
            }
            ApiError::Error {
                status,
                message,
                data,
            } => {
                let body = Envelope {
                    status: "error",
                    message: Some(message),
                    code: Some(status.as_u16()),
                    data,
                };
                (status, Json(body)).into_response()
            }
            ApiError::RetryAfter(inner, secs) => {
                let mut answer = inner.into_response();
                answer
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
                answer
            }
        }
    }
}
