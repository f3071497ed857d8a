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
    std::fs::create_dir_all(site.join("examples")).unwrap();
    std::fs::write(site.join("examples/index.html"), "<!doctype html><title>example</title>").unwrap();
    std::fs::write(site.join("secret-outside-models.txt"), "site file").unwrap();
    std::fs::write(tmp.path().join("outside.txt"), "must never be served").unwrap();
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-lfm2/tiny-lfm2-f32.gguf");
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
    // A folder is its index page where it has one, and nothing where it has none.
    for uri in ["/examples/", "/examples"] {
        let (s, h, b) = get(&app, "GET", uri, &[]).await;
        assert_eq!((s, String::from_utf8_lossy(&b).contains("<title>example</title>")), (StatusCode::OK, true), "{uri}");
        assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{uri}");
    }
    assert_eq!(get(&app, "GET", "/pkg/", &[]).await.0, StatusCode::NOT_FOUND);
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

/// LFM2.5 shares LFM2's architectures but not its recommended sampling: the
/// import tells them apart by name (the file's and the id), from GGUF and from
/// a Hugging Face folder, and keeps the file's high special ids working.
#[test]
fn lfm25_imports_with_its_own_sampling() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-lfm2.5-moe");
    for source in [dir.join("tiny-lfm2.5-moe-bf16.gguf"), dir.clone()] {
        let tmp = tempfile::tempdir().unwrap();
        let m = crate::import::import(source.to_str().unwrap(), tmp.path(), None, None, 1 << 20).unwrap();
        assert_eq!(m.architecture, "lfm2moe", "{}", source.display());
        assert_eq!((m.sampling.temperature, m.sampling.top_k, m.sampling.top_p, m.sampling.min_p, m.sampling.repetition_penalty), (0.1, 50, 0.1, 0.0, 1.05), "{}", source.display());
        m.validate(&m.id).unwrap();
    }
    // LFM2 keeps its own.
    let tmp = tempfile::tempdir().unwrap();
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-lfm2/tiny-lfm2-q8_0.gguf");
    let m = crate::import::import(gguf.to_str().unwrap(), tmp.path(), None, None, 1 << 20).unwrap();
    assert_eq!((m.sampling.temperature, m.sampling.min_p), (0.3, 0.15));
}

/// Gemma 3 imports from both sources with its family's sampling.
#[test]
fn gemma3_imports_with_its_template_and_sampling() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-gemma3");
    for source in [dir.join("tiny-gemma3-f32.gguf"), dir.clone()] {
        let tmp = tempfile::tempdir().unwrap();
        let m = crate::import::import(source.to_str().unwrap(), tmp.path(), None, None, 1 << 20).unwrap();
        assert_eq!(m.architecture, "gemma3", "{}", source.display());
        assert_eq!((m.sampling.temperature, m.sampling.top_k, m.sampling.top_p), (1.0, 64, 0.95), "{}", source.display());
        m.validate(&m.id).unwrap();
    }
}

#[test]
fn manifest_chunks_cover_the_file_with_their_hashes() {
    use sha2::{Digest, Sha256};
    let tmp = tempfile::tempdir().unwrap();
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-lfm2/tiny-lfm2-q8_0.gguf");
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
    // What the browser checks before downloading by it.
    m.validate(&m.id).unwrap();
}

#[tokio::test]
async fn security_headers_ranges_and_partial_files() {
    let (tmp, app, shard, bytes) = setup();
    let (_, h, _) = get(&app, "GET", &shard, &[]).await;
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    // Many ranges (400 KB of them) are refused at once, before any validation.
    let many = format!("bytes={}", (0..40_000).map(|i| format!("{}-{}", i * 2, i * 2)).collect::<Vec<_>>().join(","));
    assert!(many.len() > 400_000);
    let t0 = std::time::Instant::now();
    let (s, _, _) = get(&app, "GET", &shard, &[("range", &many)]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert!(t0.elapsed().as_millis() < 200, "refusing took {:?}", t0.elapsed());
    let (s, _, b) = get(&app, "GET", &shard, &[("range", "bytes=0-1,4-5")]).await;
    assert_eq!((s, b.len()), (StatusCode::OK, bytes.len()), "two ranges: the whole file");
    // An import's unfinished copy is never served.
    let shards = tmp.path().join("models/tiny/shards");
    std::fs::write(shards.join("0000.partial"), b"half").unwrap();
    std::fs::write(tmp.path().join("models/index.tmp"), b"{}").unwrap();
    assert_eq!(get(&app, "GET", "/models/tiny/shards/0000.partial", &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "GET", "/models/index.tmp", &[]).await.0, StatusCode::NOT_FOUND);
    // A file's ETag is computed once per version, not per request.
    let manifest = tmp.path().join("models/tiny/manifest.json");
    for _ in 0..3 {
        assert_eq!(get(&app, "GET", "/models/tiny/manifest.json", &[]).await.0, StatusCode::OK);
    }
    assert_eq!(crate::files::times_hashed(&manifest), 1);
}

#[test]
fn imports_copy_and_update_the_catalog_one_at_a_time() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-lfm2/tiny-lfm2-f32.gguf");
    let own = tmp.path().join("mine.gguf");
    std::fs::copy(&src, &own).unwrap();
    let models = tmp.path().join("models");
    // Eight imports at once under different ids: every one ends in the catalog.
    let ids: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    std::thread::scope(|s| {
        for id in &ids {
            let (own, models) = (own.clone(), models.clone());
            s.spawn(move || crate::import::import(own.to_str().unwrap(), &models, Some(id), None, 65536).unwrap());
        }
    });
    let catalog: app::manifest::Catalog = serde_json::from_slice(&std::fs::read(models.join("index.json")).unwrap()).unwrap();
    let mut got: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
    got.sort();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    // The shard is a copy: the user's file keeps one link, and overwriting it changes no shard.
    assert_eq!(std::fs::metadata(&own).unwrap().nlink(), 1);
    let m: app::manifest::Manifest = serde_json::from_slice(&std::fs::read(models.join("m0/manifest.json")).unwrap()).unwrap();
    let shard = models.join("m0").join(&m.files[0].shard);
    std::fs::write(&own, b"overwritten").unwrap();
    assert_eq!(std::fs::read(&shard).unwrap(), std::fs::read(&src).unwrap());
}

/// A minimal HTTP/1.1 GET over a fresh connection: (status, body).
async fn raw_get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n").as_bytes()).await.unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("headers") + 4;
    let status = std::str::from_utf8(&all[9..12]).unwrap().parse().unwrap();
    (status, all[end..].to_vec())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// The real server on loopback: 200 downloads at once, all byte-exact; 500
/// connections that send nothing are closed by the header timeout while other
/// requests are served; a huge multi-range header is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_holds_up_under_load_and_abuse() {
    use tokio::io::AsyncReadExt;
    let (_tmp, app, shard, bytes) = setup();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = crate::site::Limits { max_connections: 1000, header_timeout: std::time::Duration::from_secs(2) };
    tokio::spawn(crate::site::serve_with_limits(listener, app, limits));
    let t0 = std::time::Instant::now();
    // 500 idle connections.
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // 200 downloads at once, while the idle ones are held.
    let downloads: Vec<_> = (0..200).map(|_| tokio::spawn({ let shard = shard.clone(); async move { raw_get(addr, &shard, "").await } })).collect();
    let mut sent = 0usize;
    for d in downloads {
        let (status, body) = d.await.unwrap();
        assert_eq!(status, 200);
        assert!(body == bytes, "a download differs from the shard");
        sent += body.len();
    }
    let downloads_s = t0.elapsed().as_secs_f64();
    // A huge multi-range header: refused fast.
    let many = format!("Range: bytes={}\r\n", (0..40_000).map(|i| format!("{}-{}", i * 2, i * 2)).collect::<Vec<_>>().join(","));
    let t1 = std::time::Instant::now();
    let (status, _) = raw_get(addr, &shard, &many).await;
    let refused_ms = t1.elapsed().as_millis();
    assert!(status == 416 || status == 431, "status {status}");
    // The idle connections are closed by the server (EOF) within the timeout and a margin.
    let t2 = std::time::Instant::now();
    for mut c in idle {
        let mut b = [0u8; 64];
        let r = tokio::time::timeout(std::time::Duration::from_secs(8), c.read(&mut b)).await.expect("an idle connection stayed open");
        assert!(matches!(r, Ok(_) | Err(_)));
    }
    let closed_s = t2.elapsed().as_secs_f64();
    // And the server still serves.
    assert_eq!(raw_get(addr, &shard, "").await.1, bytes);
    eprintln!(
        "load: 200 downloads, {sent} bytes, byte-exact, in {downloads_s:.2} s beside 500 idle connections; \
         400 KB multi-range header refused in {refused_ms} ms; idle connections closed {closed_s:.2} s later (timeout 2 s); \
         peak memory of the test process {} MiB",
        peak_rss_kib() / 1024
    );
}
