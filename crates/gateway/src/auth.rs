//! Who is calling: API keys (`Authorization: Bearer <key>`), the tenant each
//! belongs to, and the tenant's quotas.
//!
//! The middleware [`authenticate`] runs before every handler and puts the
//! caller's [`Tenant`] into the request; [`crate::body::ModelPath`] and
//! [`Caller`] build model names inside that tenant, so a handler cannot reach
//! another tenant's models (they are simply not found: 404, never 403).
//!
//! Without any live key and without an admin key, the API is open and every
//! caller is the default tenant (the README's two-command start on loopback).
//! The admin key (from the environment) is the default tenant, without quotas.

use crate::jsend::ApiError;
use crate::turns::{Turn, Turns};
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::Tenant;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::KeyStore;

/// How long "is any key live?" is trusted before it is asked again.
const LIVE_KEYS_TTL: Duration = Duration::from_secs(1);

/// Limits per tenant (the default tenant has none). `None`: no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quotas {
    /// Requests per second, with bursts of up to one second's worth.
    pub requests_per_sec: Option<f64>,
    /// Series stored over the tenant's versions that did not fail.
    pub max_series: Option<u64>,
    /// Bytes of fitted state stored.
    pub max_bytes: Option<u64>,
}

/// Authentication and quotas of the API; [`Auth::open`] lets every caller in
/// as the default tenant.
pub struct Auth {
    keys: Option<Arc<dyn KeyStore>>,
    /// SHA-256 of the admin key.
    admin: Option<[u8; 32]>,
    quotas: Quotas,
    live: Mutex<Option<(Instant, bool)>>,
    buckets: Mutex<HashMap<Tenant, Bucket>>,
    /// Per tenant, the turn to register a version (see [`Auth::storage_turn`]).
    turns: Turns<Tenant>,
}

/// A tenant's turn to register a version within its storage quota; the
/// next registration of the tenant waits until this one is dropped.
pub(crate) struct StorageTurn {
    _held: Option<Turn<Tenant>>,
}

/// A token bucket: `tokens` left at `at`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Default for Auth {
    fn default() -> Self {
        Self::open()
    }
}

impl Auth {
    /// No keys: every caller is the default tenant.
    pub fn open() -> Self {
        Self {
            keys: None,
            admin: None,
            quotas: Quotas::default(),
            live: Mutex::new(None),
            buckets: Mutex::new(HashMap::new()),
            turns: Turns::default(),
        }
    }

    /// Keys from `keys`, an optional admin key, and per-tenant `quotas`.
    /// Requests need a key once one is live (or an admin key is set).
    pub fn new(keys: Arc<dyn KeyStore>, admin_key: Option<&str>, quotas: Quotas) -> Self {
        Self {
            keys: Some(keys),
            admin: admin_key.map(sha256),
            quotas,
            ..Self::open()
        }
    }

    /// Whether requests need a key now: once one was live, for good.
    pub async fn required(&self) -> Result<bool, store::StoreError> {
        if self.admin.is_some() {
            return Ok(true);
        }
        let Some(keys) = &self.keys else {
            return Ok(false);
        };
        if let Some((at, live)) = *lock(&self.live) {
            if at.elapsed() < LIVE_KEYS_TTL {
                return Ok(live);
            }
        }
        // Once keys are required they stay required: revoking the last key
        // must not open a server to anonymous callers (until it restarts,
        // when `serve` checks its address again).
        let was_required = lock(&self.live).is_some_and(|(_, live)| live);
        let live = was_required || keys.has_live_keys().await?;
        *lock(&self.live) = Some((Instant::now(), live));
        Ok(live)
    }

    /// The tenant of a presented key; `None` if it is no live key.
    async fn tenant_of(&self, presented: &str) -> Result<Option<Tenant>, store::StoreError> {
        if let Some(admin) = &self.admin {
            if bool::from(subtle_eq(&sha256(presented), admin)) {
                return Ok(Some(Tenant::default_tenant()));
            }
        }
        match &self.keys {
            Some(keys) => keys.authenticate(presented).await,
            None => Ok(None),
        }
    }

    /// Takes a request from `tenant`'s bucket, or says how long to wait.
    fn admit(&self, tenant: &Tenant) -> Result<(), Duration> {
        let Some(rate) = self.quotas.requests_per_sec.filter(|r| *r > 0.0) else {
            return Ok(());
        };
        let burst = rate.max(1.0);
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// The turn of `tenant` to register a new version, once it is under its
    /// storage quota (a 429 `fail` otherwise). Hold it until the version is
    /// registered: a pending version counts its series, so concurrent fits
    /// each see the ones before them, and only the one that crosses the
    /// quota gets past it (its bytes count once it is fitted).
    pub(crate) async fn storage_turn(&self, tenant: &Tenant) -> Result<StorageTurn, ApiError> {
        if tenant.is_default()
            || (self.quotas.max_series.is_none() && self.quotas.max_bytes.is_none())
        {
            return Ok(StorageTurn { _held: None });
        }
        let turn = self.turns.take(tenant).await;
        self.check_storage(tenant).await?;
        Ok(StorageTurn { _held: Some(turn) })
    }

    /// Refuses a fit once `tenant` stores as many series or bytes as allowed.
    async fn check_storage(&self, tenant: &Tenant) -> Result<(), ApiError> {
        let (Some(keys), false) = (
            &self.keys,
            self.quotas.max_series.is_none() && self.quotas.max_bytes.is_none(),
        ) else {
            return Ok(());
        };
        let usage = keys.usage(tenant).await.map_err(unavailable)?;
        let quota = |message| quota(message).retry_after(STORAGE_RETRY_AFTER);
        if let Some(max) = self.quotas.max_series.filter(|max| usage.series >= *max) {
            return Err(quota(format!(
                "tenant '{tenant}' stores {} series, its quota is {max}; delete models or ask for more",
                usage.series
            )));
        }
        if let Some(max) = self.quotas.max_bytes.filter(|max| usage.bytes >= *max) {
            return Err(quota(format!(
                "tenant '{tenant}' stores {} bytes of fitted models, its quota is {max}; delete models or ask for more",
                usage.bytes
            )));
        }
        Ok(())
    }
}

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn subtle_eq(a: &[u8; 32], b: &[u8; 32]) -> subtle::Choice {
    use subtle::ConstantTimeEq;
    a.ct_eq(b)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(e: store::StoreError) -> ApiError {
    ApiError::error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("cannot check the API key: {e}"),
    )
}

fn quota(message: String) -> ApiError {
    ApiError::fail(StatusCode::TOO_MANY_REQUESTS, "quota", message)
}

/// Seconds a client told 429 for a storage quota waits: nothing frees space
/// by itself, so it is a hint not to hammer.
const STORAGE_RETRY_AFTER: u64 = 60;

fn too_many(error: ApiError, retry_after: Duration) -> Response {
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    error.retry_after(secs).into_response()
}

fn unauthorized(message: &str, path: &str) -> Response {
    let mut answer = if path == "/validate_api_key" {
        // Nixtla's client reads `detail` of this answer whatever its status.
        let body = serde_json::json!({
            "status": "fail",
            "data": {"authorization": message},
            "detail": message,
        });
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    } else {
        ApiError::fail(StatusCode::UNAUTHORIZED, "authorization", message).into_response()
    };
    answer
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    answer
}

/// Whether a request stores series (a new version): a fit, new
/// observations, a rollback, or a TimeGPT-compatible forecast (a fit of the
/// `nixtla` model; its cross-validation stores nothing).
fn stores_series(req: &Request) -> bool {
    let path = req.uri().path();
    let model_action = |action: &str| {
        path.strip_prefix("/v1/models/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(name, tail)| !name.is_empty() && tail == action)
    };
    match *req.method() {
        Method::PUT => path.starts_with("/v1/models/") && path.matches('/').count() == 3,
        Method::POST => {
            path == "/fit_model"
                || model_action("observations")
                || model_action("rollback")
                || path == "/v2/forecast"
                || path == "/v2/forecast/async"
        }
        _ => false,
    }
}

/// Finds the caller's tenant (401 without a valid key when keys are
/// required), applies its quotas, and hands the request on with the
/// [`Tenant`] in its extensions.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_public(path) {
        return next.run(req).await;
    }
    let auth = &state.auth;
    let presented = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(bearer) {
            Some(key) => Some(key.to_string()),
            None => return unauthorized("expected 'Authorization: Bearer <API key>'", path),
        },
    };
    // An open server (no keys at all) ignores a presented key, so clients
    // that always send one (Nixtla's) work by changing their URL only.
    let presented = match presented {
        Some(key) => match auth.required().await {
            Ok(true) => Some(key),
            Ok(false) => None,
            Err(e) => return unavailable(e).into_response(),
        },
        None => None,
    };
    let tenant = match presented {
        Some(key) => match auth.tenant_of(&key).await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => return unauthorized("unknown or revoked API key", path),
            Err(e) => return unavailable(e).into_response(),
        },
        None => match auth.required().await {
            Ok(false) => Tenant::default_tenant(),
            Ok(true) => {
                return unauthorized(
                    "this server needs an API key: 'Authorization: Bearer <key>'",
                    path,
                )
            }
            Err(e) => return unavailable(e).into_response(),
        },
    };
    if !tenant.is_default() {
        if let Err(wait) = auth.admit(&tenant) {
            let error = quota(format!("tenant '{tenant}' is over its request rate"));
            return too_many(error, wait);
        }
        if stores_series(&req) {
            if let Err(e) = auth.check_storage(&tenant).await {
                return e.into_response();
            }
        }
    }
    req.extensions_mut().insert(tenant);
    next.run(req).await
}

/// Paths that answer for anyone because they say nothing about a tenant:
/// the probes, the metrics, the API's description and the console's static
/// page (a browser cannot send a Bearer header when it loads a page; the
/// page sends the key on every API call).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/" | "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/docs" | "/ui"
    ) || path.starts_with("/ui/")
        || path.starts_with("/docs/")
}

/// The key in an `Authorization: Bearer <key>` value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// The caller's tenant, put there by [`authenticate`].
pub struct Caller(pub Tenant);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        tenant_of(parts).map(Caller)
    }
}

/// The tenant [`authenticate`] found. Its absence is our bug, never a
/// reason to fall back to another tenant.
pub(crate) fn tenant_of(parts: &Parts) -> Result<Tenant, ApiError> {
    parts.extensions.get::<Tenant>().cloned().ok_or_else(|| {
        ApiError::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request reached a handler without its tenant",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn the_bucket_refills_at_the_rate() {
        let auth = Auth {
            quotas: Quotas {
                requests_per_sec: Some(2.0),
                ..Quotas::default()
            },
            ..Auth::open()
        };
        let t = Tenant::parse("t").unwrap();
        assert!(auth.admit(&t).is_ok());
        assert!(auth.admit(&t).is_ok());
        let wait = auth.admit(&t).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        // Another tenant has its own bucket.
        assert!(auth.admit(&Tenant::parse("u").unwrap()).is_ok());
    }
}
