//! The web UI, served by the node itself: `GET /` is the single page and
//! `GET /assets/{file}` the files it loads, all compiled into the binary from the
//! committed `web/dist/` (so a node needs no Node.js, no CDN and no files beside it).
//! Every answer carries a strict Content-Security-Policy: scripts and styles only from
//! this origin, nothing inline (uPlot sizes its canvas through CSSOM, which CSP allows).

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;

/// The policy sent with the page and every asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Files are not renamed per build, so the browser revalidates each time (cheap: ETag).
const CACHE_CONTROL: &str = "no-cache";

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! dist {
    ($name:literal, $ty:expr) => {
        (
            $name,
            $ty,
            include_bytes!(concat!("../../../web/dist/", $name)) as &[u8],
        )
    };
}

/// Every file of `web/dist/`: (name, content type, bytes).
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    dist!("index.html", HTML),
    dist!("app.js", JS),
    dist!("api.js", JS),
    dist!("ui.js", JS),
    dist!("records.js", JS),
    dist!("login.js", JS),
    dist!("mfa.js", JS),
    dist!("approvals.js", JS),
    dist!("alerts.js", JS),
    dist!("doctor.js", JS),
    dist!("patient.js", JS),
    dist!("pharmacy.js", JS),
    dist!("department.js", JS),
    dist!("explorer.js", JS),
    dist!("metrics.js", JS),
    dist!("app.css", CSS),
    dist!("uPlot.iife.min.js", JS),
    dist!("uPlot.min.css", CSS),
    dist!("favicon.svg", SVG),
];

/// The UI's routes, for any router state: the node merges them beside the API.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == "index.html" {
        return ApiError::not_found("no such asset").into_response();
    }
    serve(&file, &headers)
}

/// A weak validator per file: FNV-1a of its bytes, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, bytes)| {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in *bytes {
                    h ^= u64::from(*b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
                format!("\"{h:016x}-{}\"", bytes.len())
            })
            .collect()
    })
}

fn serve(name: &str, req: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(n, _, _)| *n == name) else {
        return ApiError::not_found("no such asset").into_response();
    };
    let (_, content_type, bytes) = ASSETS[i];
    let etag = &etags()[i];
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, bytes).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    #[tokio::test]
    async fn index_and_assets_are_served_with_type_cache_and_csp() {
        let res = get("/", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], HTML);
        assert_eq!(res.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("csp");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("/assets/app.js") && !html.contains("<script>"));

        for (name, ty) in [
            ("app.js", JS),
            ("app.css", CSS),
            ("uPlot.iife.min.js", JS),
            ("favicon.svg", SVG),
        ] {
            let res = get(&format!("/assets/{name}"), None).await;
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            assert_eq!(res.headers()[header::CONTENT_TYPE], ty, "{name}");
            assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_404_and_etags_revalidate() {
        for path in [
            "/assets/nope.js",
            "/assets/..%2FCargo.toml",
            "/assets/index.html",
        ] {
            assert_eq!(
                get(path, None).await.status(),
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let first = get("/assets/app.js", None).await;
        let etag = first.headers()[header::ETAG]
            .to_str()
            .expect("etag")
            .to_string();
        let again = get("/assets/app.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    /// Every file the build writes is served, and nothing that is served is missing.
    #[test]
    fn every_dist_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("web/dist")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|(n, _, _)| (*n).to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update ASSETS in crates/api/src/web.rs");
    }
}
