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
//! Each page is the shared `assets/layout.html` (head, navigation, notice
//! and login slots) around the page's own `assets/pages/NAME.html`,
//! assembled once on first use; [`PAGES`] says which title and scripts
//! each one gets.
//!
//! Routes: `/ui` (overview), `/ui/runs`, `/ui/runs/{id}`,
//! `/ui/dead-letters`, `/ui/connectors`, and `/ui/assets/...` for scripts,
//! styles and vendored files. Every answer carries a strict
//! Content-Security-Policy: scripts, styles and API calls only from this
//! origin, no inline script, no framing.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use sha2::Digest as _;

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
        .route("/ui/flows", get(|| page("flows")))
        .route("/ui/flows/{name}", get(|| page("flow")))
        .route("/ui/runs", get(|| page("runs")))
        .route("/ui/runs/{id}", get(|| page("run")))
        .route("/ui/dead-letters", get(|| page("dead-letters")))
        .route("/ui/connectors", get(|| page("connectors")))
        .route("/ui/assets/{*path}", get(asset))
        .route("/ui/{*rest}", get(not_found))
}

/// A dashboard page: its name (the file `assets/pages/NAME.html`, and the
/// `data-page` its scripts read), title, and what it adds to the head.
struct Page {
    name: &'static str,
    title: &'static str,
    head: &'static str,
}

const PAGES: [Page; 8] = [
    Page {
        name: "overview",
        title: "Overview",
        head: "  <link rel=\"stylesheet\" href=\"/ui/assets/vendor/uPlot.min.css\">\n  \
               <script src=\"/ui/assets/vendor/uPlot.iife.min.js\" defer></script>\n  \
               <script type=\"module\" src=\"/ui/assets/js/overview.js\"></script>\n",
    },
    Page {
        name: "flows",
        title: "Flows",
        head: "  <script type=\"module\" src=\"/ui/assets/js/flow-list.js\"></script>\n",
    },
    Page {
        name: "flow",
        title: "Flow",
        head: "  <script type=\"module\" src=\"/ui/assets/js/flow.js\"></script>\n",
    },
    Page {
        name: "runs",
        title: "Runs",
        head: "  <script type=\"module\" src=\"/ui/assets/js/runs.js\"></script>\n",
    },
    Page {
        name: "run",
        title: "Run",
        head: "  <script type=\"module\" src=\"/ui/assets/js/run.js\"></script>\n",
    },
    Page {
        name: "dead-letters",
        title: "Dead letters",
        head: "  <script type=\"module\" src=\"/ui/assets/js/dead-letters.js\"></script>\n",
    },
    Page {
        name: "connectors",
        title: "Connectors",
        head: "  <script type=\"module\" src=\"/ui/assets/js/connectors.js\"></script>\n",
    },
    Page {
        name: "not-found",
        title: "Not found",
        head: "",
    },
];

/// Every page, assembled, by name.
fn rendered() -> &'static HashMap<&'static str, Vec<u8>> {
    static RENDERED: OnceLock<HashMap<&'static str, Vec<u8>>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let layout = embedded_text("layout.html");
        PAGES
            .iter()
            .map(|page| {
                let main = embedded_text(&format!("pages/{}.html", page.name));
                let html = layout
                    .replace("{{title}}", page.title)
                    .replace("{{head}}", page.head)
                    .replace("{{page}}", page.name)
                    .replace("{{main}}", &main);
                (page.name, html.into_bytes())
            })
            .collect()
    })
}

fn embedded_text(path: &str) -> String {
    // Both are compiled in, and a test renders every page: a miss is a
    // build mistake, shown as an empty page rather than a crash.
    Assets::get(path)
        .map(|file| String::from_utf8_lossy(&file.data).into_owned())
        .unwrap_or_default()
}

/// A page, assembled from the layout and its own content.
async fn page(name: &str) -> Response {
    let Some(html) = rendered().get(name) else {
        return not_found().await;
    };
    respond(
        html.clone(),
        &sha2::Sha256::digest(html),
        "text/html; charset=utf-8",
        &HeaderMap::new(),
    )
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

async fn not_found() -> Response {
    let html = rendered().get("not-found").cloned().unwrap_or_default();
    let mut response = respond(
        html.clone(),
        &sha2::Sha256::digest(&html),
        "text/html; charset=utf-8",
        &HeaderMap::new(),
    );
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
    respond(
        file.data.into_owned(),
        &file.metadata.sha256_hash(),
        content_type(path),
        request,
    )
}

/// Answers with `body`, or 304 when the caller's copy (`If-None-Match`)
/// has the same `sha256`, with the dashboard's security headers.
fn respond(
    body: Vec<u8>,
    sha256: &[u8],
    content_type: &'static str,
    request: &HeaderMap,
) -> Response {
    let etag = format!("\"{}\"", hex(&sha256[..16]));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
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
        for page in &PAGES {
            let path = format!("pages/{}.html", page.name);
            assert!(Assets::get(&path).is_some(), "{path} is not embedded");
            let text = String::from_utf8(rendered()[page.name].clone()).unwrap();
            assert!(
                !text.contains("{{"),
                "{path}: a layout slot is left unfilled"
            );
            assert!(text.contains(&format!("<title>{} · Patchbay</title>", page.title)));
            assert!(
                text.contains("<main id=\"main\">\n    <h1"),
                "{path}: no heading"
            );
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
