//! The page's static files (`static/`), compiled into the binary and served under
//! content-hashed URLs: `/static/{hash}/{file}`.
//!
//! Input: a request for one asset, with its `If-None-Match`. Output: the file with its
//! Content-Type, a strong ETag and a year-long `immutable` cache, a bodiless 304 when the
//! client's copy is current, or the JSON 404 for a file we do not have or a stale hash.
//! Because the hash is part of the URL, a new build changes every URL whose bytes changed,
//! so browsers may keep an old URL forever and never see stale script or style.
//!
//! `debug-embed` is on, so debug builds (and the tests) embed the same bytes a release
//! ships instead of reading `static/` from the working directory at run time.

use std::sync::LazyLock;

use rust_embed::RustEmbed;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::errors::ApiError;
use crate::http::error_response;
use crate::http::routes::{Endpoint, params};

/// Hex digits of the SHA-256 kept in an asset's URL and ETag: 64 bits tell any two
/// builds of one file apart, and keep URLs short.
const HASH_CHARS: usize = 16;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// The URLs the templates link to, computed once from the embedded bytes.
#[derive(Debug, Clone)]
pub struct AssetUrls {
    pub css: String,
    pub js: String,
    pub icon: String,
    /// The microphone's live transcription, and the AudioWorklet module it loads.
    pub live_js: String,
    pub live_worklet: String,
    /// The admin page's refresh.
    pub admin_js: String,
}

pub static URLS: LazyLock<AssetUrls> = LazyLock::new(|| AssetUrls {
    css: url("app.css"),
    js: url("app.js"),
    icon: url("favicon.svg"),
    live_js: url("live.js"),
    live_worklet: url("live-worklet.js"),
    admin_js: url("admin.js"),
});

/// `/static/{hash}/{file}` for an embedded file. A name that is not embedded gets a URL
/// that answers 404, and the unit tests check that every linked name is embedded.
pub fn url(file: &str) -> String {
    let hash =
        Static::get(file).map_or_else(|| "missing".to_owned(), |asset| hash_prefix(&asset.metadata.sha256_hash()));
    format!("/static/{hash}/{file}")
}

fn hash_prefix(sha256: &[u8; 32]) -> String {
    let mut hex = String::with_capacity(HASH_CHARS);
    for byte in &sha256[..HASH_CHARS / 2] {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// `GET /static/{hash}/{file}`.
pub fn route() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    params(Endpoint::Asset).and(warp::header::optional::<String>("if-none-match")).map(
        |params: Vec<String>, if_none_match: Option<String>| serve(&params[0], &params[1], if_none_match.as_deref()),
    )
}

fn serve(hash: &str, file: &str, if_none_match: Option<&str>) -> Response {
    let Some(asset) = Static::get(file) else { return error_response(&ApiError::NoRoute) };
    let current = hash_prefix(&asset.metadata.sha256_hash());
    // An old hash is a URL from another build: serving today's bytes under it would let
    // them be cached forever as that build's.
    if hash != current {
        return error_response(&ApiError::NoRoute);
    }
    let etag = format!("\"{current}\"");
    let mut response = if if_none_match.is_some_and(|header| etag_matches(header, &etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = asset.data.into_owned().into_response();
        if let Ok(value) = HeaderValue::from_str(&content_type(file)) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    response
}

/// The MIME type by extension; text types say they are UTF-8, since our files are.
fn content_type(file: &str) -> String {
    let mime = mime_guess::from_path(file).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT || mime.subtype() == mime_guess::mime::JAVASCRIPT;
    if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// `If-None-Match` is `*` or a list of entity tags, each maybe weak (`W/"…"`); weak
/// comparison is the right one for a conditional GET (RFC 9110, 13.1.2).
pub(crate) fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linked_asset_is_embedded() {
        for url in [&URLS.css, &URLS.js, &URLS.icon, &URLS.live_js, &URLS.live_worklet] {
            assert!(!url.contains("/missing/"), "{url} is not in static/");
            let hash = url.split('/').nth(2).unwrap();
            assert_eq!(hash.len(), HASH_CHARS);
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{hash}");
        }
    }

    #[test]
    fn hash_prefix_is_the_leading_hex_of_the_digest() {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&[0x00, 0x01, 0xab, 0xcd, 0xef, 0x10, 0x7f, 0xff]);
        digest[8] = 0xee;
        assert_eq!(hash_prefix(&digest), "0001abcdef107fff");
    }

    #[test]
    fn etags_match_strong_weak_lists_and_star() {
        let etag = "\"0123456789abcdef\"";
        assert!(etag_matches("\"0123456789abcdef\"", etag));
        assert!(etag_matches("W/\"0123456789abcdef\"", etag));
        assert!(etag_matches("\"old\", \"0123456789abcdef\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"old\"", etag));
        assert!(!etag_matches("0123456789abcdef", etag));
    }

    #[test]
    fn content_types_name_utf8_for_text() {
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert!(content_type("app.js").ends_with("javascript; charset=utf-8"), "{}", content_type("app.js"));
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
    }

    #[test]
    fn stale_hashes_and_unknown_files_are_not_found() {
        assert_eq!(serve("0000000000000000", "app.css", None).status(), 404);
        assert_eq!(serve("whatever", "nope.js", None).status(), 404);
        let hash = URLS.css.split('/').nth(2).unwrap().to_owned();
        let fresh = serve(&hash, "app.css", None);
        assert_eq!(fresh.status(), 200);
        assert_eq!(fresh.headers()[header::CACHE_CONTROL], IMMUTABLE);
        let etag = fresh.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(serve(&hash, "app.css", Some(&etag)).status(), 304);
    }
}
