//! The dashboard under `/ui`: static pages and scripts compiled into the
//! binary, so it works offline and with nothing installed beside Patchbay.
//!
//! The pages hold no data. Their scripts (plain ES modules, no build step)
//! read everything from the management API with the operator's bearer
//! token, exactly as any other API client would, so the dashboard can show
//! nothing the token's scope does not allow, and serving the pages needs no
//! token at all. Third-party code (uPlot, for the charts) is vendored from
//! npm into `assets/vendor/` by `ui/vendor.sh`; see `docs/dashboard.md`.
//!
//! Routes: `/ui` (overview), `/ui/runs`, `/ui/runs/{id}`,
//! `/ui/dead-letters`, `/ui/connectors`, and `/ui/assets/...` for scripts,
//! styles and vendored files. Every answer carries a strict
//! Content-Security-Policy: scripts, styles and API calls only from this
//! origin, no inline script, no framing.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::AppState;

/// Everything under `crates/server/assets/`, embedded at compile time.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| page("overview")))
        .route("/ui/", get(|| async { Redirect::permanent("/ui") }))
        .route("/ui/runs", get(|| page("runs")))
        .route("/ui/runs/{id}", get(|| page("run")))
        .route("/ui/dead-letters", get(|| page("dead-letters")))
        .route("/ui/connectors", get(|| page("connectors")))
        .route("/ui/assets/{*path}", get(asset))
        .route("/ui/{*rest}", get(not_found))
}

/// A page: one HTML file of `assets/pages/`.
async fn page(name: &str) -> Response {
    serve(&format!("pages/{name}.html"), &HeaderMap::new())
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

async fn not_found() -> Response {
    let mut response = serve("pages/not-found.html", &HeaderMap::new());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// Answers with the embedded file at `path`, or 304 when the caller's copy
/// (`If-None-Match`) is current. Files are revalidated on every use rather
/// than cached for a time: they change with every release, and a
/// revalidation on loopback or a LAN costs next to nothing.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(path))],
            file.data.into_owned(),
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The token travels in the URL fragment at most, which browsers never
    // send; this keeps even the page paths (run ids) out of other sites' logs.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The media type of an embedded file, by extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, b| {
        // Writing to a String cannot fail.
        let _ = write!(text, "{b:02x}");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_script_is_embedded() {
        for page in [
            "overview",
            "runs",
            "run",
            "dead-letters",
            "connectors",
            "not-found",
        ] {
            let path = format!("pages/{page}.html");
            let file = Assets::get(&path).unwrap_or_else(|| panic!("{path} is not embedded"));
            let text = String::from_utf8(file.data.into_owned()).unwrap();
            // Every script and style a page names must be embedded too.
            for reference in text.split("\"/ui/assets/").skip(1) {
                let asset = reference.split('"').next().unwrap();
                assert!(Assets::get(asset).is_some(), "{path} names missing {asset}");
            }
            assert!(!text.contains("<script>"), "{path} has an inline script");
        }
        assert!(Assets::get("vendor/uPlot.iife.min.js").is_some());
        // Every module a script imports is embedded too.
        for path in Assets::iter().filter(|p| p.starts_with("js/")) {
            let text = String::from_utf8(Assets::get(&path).unwrap().data.into_owned()).unwrap();
            for import in text.split("from \"./").skip(1) {
                let module = format!("js/{}", import.split('"').next().unwrap());
                assert!(
                    Assets::get(&module).is_some(),
                    "{path} imports missing {module}"
                );
            }
        }
    }

    #[test]
    fn revalidation_answers_not_modified() {
        let first = serve("style.css", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve("style.css", &request).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve("nothing.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
