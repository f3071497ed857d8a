//! Serving files from a root folder: strict path checks (nothing outside the
//! root, ever), HTTP Range (206, 416), HEAD, strong ETags, If-None-Match and
//! If-Range, MIME types and cache headers.

use std::{
    io::SeekFrom,
    path::{Path, PathBuf},
};

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// How clients may cache a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caching {
    /// Content-addressed: the name changes when the bytes do.
    Immutable,
    /// Revalidate every time (the ETag makes that cheap).
    Revalidate,
}

/// Files smaller than this get an ETag from their content's sha256.
const HASH_LIMIT: u64 = 64 << 20;
/// A Range header longer than this, or with more ranges, is refused before it
/// is parsed (validating n ranges against each other takes n² steps).
const MAX_RANGE_HEADER: usize = 256;
const MAX_RANGES: usize = 8;

pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// Resolves `rel` (a URL path below the root, already percent-decoded) to a
/// regular file inside `root`; `None` for anything else: `..`, `.` segments,
/// hidden names, backslashes, NULs, absolute paths, and symlinks that lead out.
pub fn resolve(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for segment in rel.split('/') {
        if segment.is_empty() {
            continue;
        }
        if segment.starts_with('.') || segment.contains('\\') || segment.contains('\0') || segment.contains(':') {
            return None;
        }
        // An import's unfinished copies are never served.
        if segment.ends_with(".partial") || segment.ends_with(".tmp") {
            return None;
        }
        path.push(segment);
    }
    let canonical_root = root.canonicalize().ok()?;
    let mut canonical = path.canonicalize().ok()?;
    // A folder is its index page (`/examples/`).
    if canonical.is_dir() {
        canonical = canonical.join("index.html");
    }
    (canonical.starts_with(&canonical_root) && canonical.is_file()).then_some(canonical)
}

fn mime_for(path: &Path) -> HeaderValue {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mime = match ext {
        "gguf" | "safetensors" | "bin" => "application/octet-stream".to_string(),
        "wasm" => "application/wasm".to_string(),
        "webmanifest" => "application/manifest+json".to_string(),
        "js" | "mjs" => "text/javascript; charset=utf-8".to_string(),
        "json" => "application/json".to_string(),
        _ => {
            let m = mime_guess::from_path(path).first_or_octet_stream();
            if m.type_() == "text" { format!("{m}; charset=utf-8") } else { m.to_string() }
        }
    };
    HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// Content hashes already computed, by path, for the file's size and
/// modification time: each file is hashed once, not on every request.
static ETAGS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<PathBuf, (u64, std::time::SystemTime, String)>>> =
    std::sync::LazyLock::new(Default::default);

/// How many times `path` was hashed for its ETag (tests: once per version).
#[cfg(test)]
pub fn times_hashed(path: &Path) -> u32 {
    HASHES.lock().map(|m| m.get(&path.canonicalize().unwrap_or_default()).copied().unwrap_or(0)).unwrap_or(0)
}

#[cfg(test)]
static HASHES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<PathBuf, u32>>> = std::sync::LazyLock::new(Default::default);

/// A strong ETag: the sha256 in a content-addressed name, else the content's hash.
async fn etag_for(path: &Path, meta: &std::fs::Metadata, caching: Caching) -> Option<String> {
    if caching == Caching::Immutable {
        let stem = path.file_stem()?.to_str()?;
        if stem.len() == 64 && stem.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some(format!("\"{stem}\""));
        }
    }
    let (len, modified) = (meta.len(), meta.modified().ok()?);
    if len > HASH_LIMIT {
        return None;
    }
    if let Some((l, m, tag)) = ETAGS.lock().ok()?.get(path) {
        if *l == len && *m == modified {
            return Some(tag.clone());
        }
    }
    let bytes = tokio::fs::read(path).await.ok()?;
    #[cfg(test)]
    if let Ok(mut m) = HASHES.lock() {
        *m.entry(path.to_path_buf()).or_default() += 1;
    }
    let tag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
    ETAGS.lock().ok()?.insert(path.to_path_buf(), (len, modified, tag.clone()));
    Some(tag)
}

fn etag_matches(header_value: Option<&HeaderValue>, etag: &str) -> bool {
    header_value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// Bytes per second each response body may send (0: no limit). A testing aid
/// (`server serve --throttle`): it makes downloads slow enough to interrupt.
static THROTTLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn set_throttle(bytes_per_s: u64) {
    THROTTLE.store(bytes_per_s, std::sync::atomic::Ordering::Relaxed);
}

/// Serves a resolved file for GET or HEAD.
pub async fn serve(path: &Path, method: &Method, headers: &HeaderMap, caching: Caching) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "").into_response();
    }
    let Ok(mut file) = tokio::fs::File::open(path).await else { return not_found() };
    let Ok(meta) = file.metadata().await else { return not_found() };
    let len = meta.len();
    let etag = etag_for(path, &meta, caching).await;
    let mut base = HeaderMap::new();
    base.insert(header::CONTENT_TYPE, mime_for(path));
    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    base.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match caching {
            Caching::Immutable => "public, max-age=31536000, immutable",
            Caching::Revalidate => "no-cache",
        }),
    );
    if let Some(tag) = &etag {
        base.insert(header::ETAG, HeaderValue::from_str(tag).expect("hex etag"));
        if etag_matches(headers.get(header::IF_NONE_MATCH), tag) {
            return (StatusCode::NOT_MODIFIED, base).into_response();
        }
    }
    // A Range applies unless If-Range names another version.
    let range_ok = match headers.get(header::IF_RANGE) {
        None => true,
        Some(v) => etag.as_deref().is_some_and(|tag| v.to_str().ok() == Some(tag)),
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).filter(|_| range_ok);
    if let Some(spec) = range {
        if spec.len() > MAX_RANGE_HEADER || spec.matches(',').count() >= MAX_RANGES {
            base.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, base, "too many ranges").into_response();
        }
    }
    let (status, start, count) = match range {
        None => (StatusCode::OK, 0, len),
        Some(spec) => match http_range_header::parse_range_header(spec).and_then(|r| r.validate(len)) {
            Ok(ranges) if ranges.len() == 1 => {
                let r = &ranges[0];
                let (s, e) = (*r.start(), *r.end());
                base.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes {s}-{e}/{len}")).expect("ascii"));
                (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
            }
            // Several ranges: send the whole file (allowed; clients here ask for one).
            Ok(_) => (StatusCode::OK, 0, len),
            Err(_) => {
                base.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
                return (StatusCode::RANGE_NOT_SATISFIABLE, base, "").into_response();
            }
        },
    };
    base.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if method == Method::HEAD {
        return (status, base).into_response();
    }
    if start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "seek failed").into_response();
    }
    let rate = THROTTLE.load(std::sync::atomic::Ordering::Relaxed);
    let body = if rate == 0 {
        Body::from_stream(ReaderStream::new(file.take(count)))
    } else {
        // 16 KiB pieces, each after its share of time.
        let pause = std::time::Duration::from_secs_f64(16384.0 / rate as f64);
        Body::from_stream(futures::StreamExt::then(ReaderStream::with_capacity(file.take(count), 16384), move |piece| async move {
            tokio::time::sleep(pause).await;
            piece
        }))
    };
    (status, base, body).into_response()
}
