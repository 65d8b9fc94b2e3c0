//! The web console: the page built from `console/` (see its `build.mjs`),
//! embedded into the binary so it is served offline from one file, at
//! `/ui/`; `/` redirects to it. The page only calls the public API.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &[u8] = include_bytes!("../../../console/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../console/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../console/dist/app.css");

/// Everything the page loads comes from this server: no CDN, no inline
/// script.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The console's routes, merged into the API router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route(
            "/ui/",
            get(|h: HeaderMap| async move { asset(&h, INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/ui/app.js",
            get(|h: HeaderMap| async move { asset(&h, APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/app.css",
            get(|h: HeaderMap| async move { asset(&h, APP_CSS, "text/css; charset=utf-8") }),
        )
}

/// A strong validator of the embedded bytes (FNV-1a), so that browsers
/// revalidate cheaply and pick up a new build at once.
fn etag(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

fn asset(request: &HeaderMap, bytes: &'static [u8], content_type: &'static str) -> Response {
    let tag = etag(bytes);
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let tag_value = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            common,
            [(header::ETAG, tag_value)],
        )
            .into_response();
    }
    (
        common,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::ETAG, tag_value),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_the_embedded_assets() {
        let page = std::str::from_utf8(INDEX_HTML).expect("utf-8 page");
        assert!(page.contains("src=\"/ui/app.js\""), "{page}");
        assert!(page.contains("href=\"/ui/app.css\""), "{page}");
        assert!(!page.contains("http://") && !page.contains("https://"));
        // uPlot is bundled into the script, not fetched.
        let script = std::str::from_utf8(APP_JS).expect("utf-8 script");
        assert!(script.contains("u-legend"), "uPlot is bundled");
    }

    #[test]
    fn etags_differ_with_the_content() {
        assert_ne!(etag(APP_JS), etag(APP_CSS));
        assert_eq!(etag(b"a"), etag(b"a"));
    }
}
