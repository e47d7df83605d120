//! The dashboard (`/ui/`): static files from `node/ui/`, embedded in the binary. The pages
//! read the same API as every other client (docs/dashboard.md); nothing here has state.
//!
//! Every answer carries a Content-Security-Policy that allows only this origin's scripts,
//! styles and API (no inline script, no third party), and is not to be framed.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use rust_embed::RustEmbed;

use super::Problem;

/// The files under `node/ui/`.
#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// What a page may load: this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /` and `GET /ui`: to the dashboard.
pub(super) async fn redirect() -> Redirect {
    Redirect::to("/ui/")
}

/// `GET /ui/`: the page.
pub(super) async fn index() -> Response {
    asset("index.html")
}

/// `GET /ui/{*path}`: one file.
pub(super) async fn file(Path(path): Path<String>) -> Response {
    asset(&path)
}

fn asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!("the dashboard has no file {path:?}"),
        )
        .into_response();
    };
    let mime = file.metadata.mimetype();
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut r = file.data.into_owned().into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // The files change with the binary: revalidate (cheap with the ETag) rather than cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_file_is_embedded_with_its_type() {
        for (name, mime) in [
            ("index.html", "text/html"),
            ("app.js", "text/javascript"),
            ("style.css", "text/css"),
            ("europe.svg", "image/svg+xml"),
            ("countries.json", "application/json"),
        ] {
            let r = asset(name);
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            let ct = r.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(ct.starts_with(mime), "{name}: {ct}");
            assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        }
    }

    #[test]
    fn a_missing_file_is_a_404_naming_it() {
        let r = asset("../api.json");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
