//! The model and site routes over HTTP semantics: Range, 416, HEAD, ETags,
//! and every way of reaching outside the served folders.

use std::path::Path;

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn setup() -> (tempfile::TempDir, Router, String, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let models = tmp.path().join("models");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/eddy.js"), "export default 1;").unwrap();
    std::fs::write(site.join("secret-outside-models.txt"), "site file").unwrap();
    std::fs::write(tmp.path().join("outside.txt"), "must never be served").unwrap();
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/tiny-lfm2/tiny-lfm2-f32.gguf");
    let manifest = crate::import::import(gguf.to_str().unwrap(), &models, Some("tiny"), None, 65536).unwrap();
    let shard = format!("/models/tiny/{}", manifest.files[0].shard);
    let bytes = std::fs::read(&gguf).unwrap();
    // A symlink inside the models folder that points out of it.
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("outside.txt"), models.join("tiny/shards/link.gguf")).unwrap();
    let app = crate::site::router(site, models, "127.0.0.1:0".parse().unwrap());
    (tmp, app, shard, bytes)
}

async fn get(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn range_requests_on_shards() {
    let (_tmp, app, shard, bytes) = setup();
    let len = bytes.len();
    let (s, h, b) = get(&app, "GET", &shard, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, bytes);
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h[header::CONTENT_TYPE], "application/octet-stream");
    let (s, h, b) = get(&app, "GET", &shard, &[("range", "bytes=100-199")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(b, &bytes[100..200]);
    assert_eq!(h[header::CONTENT_RANGE], format!("bytes 100-199/{len}").as_str());
    assert_eq!(h[header::CONTENT_LENGTH], "100");
    let (s, _, b) = get(&app, "GET", &shard, &[("range", &format!("bytes={}-", len - 10))]).await;
    assert_eq!((s, b.as_slice()), (StatusCode::PARTIAL_CONTENT, &bytes[len - 10..]));
    let (s, _, b) = get(&app, "GET", &shard, &[("range", "bytes=-5")]).await;
    assert_eq!((s, b.as_slice()), (StatusCode::PARTIAL_CONTENT, &bytes[len - 5..]));
    // Unsatisfiable.
    let (s, h, _) = get(&app, "GET", &shard, &[("range", &format!("bytes={len}-"))]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h[header::CONTENT_RANGE], format!("bytes */{len}").as_str());
    let (s, _, _) = get(&app, "GET", &shard, &[("range", "bytes=500-100")]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn head_etag_and_conditional_requests() {
    let (_tmp, app, shard, bytes) = setup();
    let (s, h, b) = get(&app, "HEAD", &shard, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.is_empty());
    assert_eq!(h[header::CONTENT_LENGTH], bytes.len().to_string().as_str());
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    // Strong (no W/) and the content's sha256.
    assert!(!etag.starts_with("W/") && etag.len() == 66, "{etag}");
    let (s, _, b) = get(&app, "GET", &shard, &[("if-none-match", &etag)]).await;
    assert_eq!((s, b.len()), (StatusCode::NOT_MODIFIED, 0));
    // If-Range with the current ETag honours the range; with another, sends everything.
    let (s, _, _) = get(&app, "GET", &shard, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    let (s, _, b) = get(&app, "GET", &shard, &[("range", "bytes=0-9"), ("if-range", "\"old\"")]).await;
    assert_eq!((s, b.len()), (StatusCode::OK, bytes.len()));
    // The manifest revalidates and has its own strong ETag.
    let (s, h, b) = get(&app, "GET", "/models/tiny/manifest.json", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    let m: app::manifest::Manifest = serde_json::from_slice(&b).unwrap();
    assert_eq!(m.id, "tiny");
    let (s, _, b) = get(&app, "GET", "/models/index.json", &[]).await;
    assert_eq!(s, StatusCode::OK);
    let c: app::manifest::Catalog = serde_json::from_slice(&b).unwrap();
    assert_eq!(c.models[0].id, "tiny");
    let (s, _, _) = get(&app, "POST", &shard, &[]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn nothing_outside_the_served_folders() {
    let (_tmp, app, shard, _) = setup();
    let shard_name = shard.rsplit('/').next().unwrap();
    for uri in [
        "/models/tiny/../index.json",
        "/models/tiny/shards/../manifest.json",
        "/models/tiny/shards/..%2F..%2Foutside.txt",
        "/models/tiny/shards/%2e%2e/%2e%2e/outside.txt",
        "/models/..%2Foutside.txt/x",
        "/models/%2e%2e/outside.txt",
        "/models/tiny/shards/%2Fetc%2Fpasswd",
        "/models/tiny/shards/link.gguf",
        "/models/tiny/../../outside.txt",
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/pkg/%2e%2e/%2e%2e/outside.txt",
        "/pkg/..%5C..%5Coutside.txt",
        "/models/tiny/other.json",
        "/models/tiny/shards",
        "/models/.hidden/manifest.json",
        "/etc/passwd",
    ] {
        let (s, _, b) = get(&app, "GET", uri, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri} -> {s}: {:?}", String::from_utf8_lossy(&b[..b.len().min(60)]));
    }
    // The legitimate ones still work.
    assert_eq!(get(&app, "GET", &format!("/models/tiny/shards/{shard_name}"), &[]).await.0, StatusCode::OK);
    assert_eq!(get(&app, "GET", "/pkg/eddy.js", &[]).await.0, StatusCode::OK);
    let (_, h, _) = get(&app, "GET", "/pkg/eddy.js", &[]).await;
    assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
}

#[test]
fn import_rejects_bad_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let e = crate::import::import("/no/such/model.gguf", tmp.path(), None, None, 65536).unwrap_err().to_string();
    assert!(e.contains("no such file"), "{e}");
    let junk = tmp.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a model").unwrap();
    let e = crate::import::import(junk.to_str().unwrap(), tmp.path(), None, None, 65536).unwrap_err().to_string();
    assert!(e.contains("not a GGUF file"), "{e}");
    assert!(!tmp.path().join("junk").exists(), "nothing is published for a bad model");
}

#[test]
fn manifest_chunks_cover_the_file_with_their_hashes() {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/tiny-lfm2/tiny-lfm2-q8_0.gguf");
    let m = crate::import::import(gguf.to_str().unwrap(), tmp.path(), None, Some("Tiny LFM2"), 100_000).unwrap();
    let bytes = std::fs::read(&gguf).unwrap();
    assert_eq!(m.id, "tiny-lfm2-q8_0");
    assert_eq!(m.name, "Tiny LFM2");
    let f = &m.files[0];
    assert_eq!(f.size as usize, bytes.len());
    assert_eq!(f.sha256, hex::encode(Sha256::digest(&bytes)));
    let mut at = 0;
    for c in &f.chunks {
        assert_eq!(c.offset, at);
        assert_eq!(c.sha256, hex::encode(Sha256::digest(&bytes[c.offset as usize..(c.offset + c.length) as usize])));
        at += c.length;
    }
    assert_eq!(at as usize, bytes.len());
    assert_eq!(std::fs::read(tmp.path().join(&m.id).join(&f.shard)).unwrap(), bytes);
    assert!(m.requirements.weight_bytes > 0 && m.requirements.min_binding_bytes > 0);
    assert_eq!(m.tokenizer, "gguf");
    assert!(m.chat_template.is_some());
}
