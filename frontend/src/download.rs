//! Downloading a model into the cache: chunks by HTTP Range, a few at a time,
//! each verified by its sha256 before it is stored. Verified chunks are never
//! fetched again, so an interrupted download (network drop, server restart,
//! closed tab) resumes where it stopped; a chunk that fails verification is
//! fetched again and never stored. A transport failure (no answer, a 5xx, a
//! body cut short) is retried with exponential backoff a bounded number of
//! times; then the download stops with a message, and Retry resumes it.

use std::{cell::Cell, collections::HashSet, rc::Rc};

use app::{manifest::Manifest, protocol::Event, state::format_bytes};
use futures::{stream, StreamExt};

use crate::{
    js,
    store::{ModelRecord, Store},
};

/// Chunks in flight at once.
const PARALLEL: usize = 4;
/// Times a chunk may fail verification before the download gives up.
const VERIFY_ATTEMPTS: u32 = 3;
/// Times a chunk is tried when the transport fails before the download stops:
/// with the backoff below that is about 16 s of trying, enough for a server
/// restart or a moment without network, short enough to tell the user.
const TRANSPORT_ATTEMPTS: u32 = 7;
const FIRST_BACKOFF_MS: u32 = 250;
const MAX_BACKOFF_MS: u32 = 8000;

/// One request for a chunk.
enum Attempt {
    /// The chunk's bytes, to be verified.
    Bytes(js_sys::ArrayBuffer),
    /// Worth trying again after a pause.
    Transient(String),
    /// Trying again cannot help.
    Fatal(String),
}

pub type Emit = Rc<dyn Fn(Event)>;

pub struct Download<'a> {
    pub store: &'a Store,
    pub emit: Emit,
    pub cancel: Rc<Cell<bool>>,
    /// The GPU's (maxStorageBufferBindingSize, maxBufferSize), to refuse a model that cannot run.
    pub gpu_limits: Option<(u64, u64)>,
}

pub struct FetchedManifest {
    pub manifest: Manifest,
    pub json: String,
    pub sha256: String,
}

pub async fn fetch_manifest(base: &str, id: &str) -> Result<FetchedManifest, String> {
    let url = format!("{base}/models/{id}/manifest.json");
    let response = js::fetch(&url, &[]).await.map_err(|e| format!("cannot reach the server ({})", js::message(&e)))?;
    match response.status() {
        200 => {}
        404 => return Err(format!("the server has no model \"{id}\"")),
        s => return Err(format!("the server answered {s} for {url}")),
    }
    let json = js::response_text(&response).await.map_err(|e| js::message(&e))?;
    let manifest: Manifest = serde_json::from_str(&json).map_err(|e| format!("the manifest of {id} is not valid: {e}"))?;
    manifest.validate(id).map_err(|e| format!("the server's manifest of {id} is refused: {e}"))?;
    let buf = js_sys::Uint8Array::from(json.as_bytes()).buffer();
    let sha256 = js::sha256_hex(&buf).await.map_err(|e| js::message(&e))?;
    Ok(FetchedManifest { manifest, json, sha256 })
}

struct Progress {
    emit: Emit,
    id: String,
    total: u64,
    done: Cell<u64>,
    fetched: Cell<u64>,
    started_ms: f64,
    last_emit_ms: Cell<f64>,
    note: std::cell::RefCell<Option<String>>,
}

impl Progress {
    fn send(&self, force: bool) {
        let now = js::now_ms();
        if !force && now - self.last_emit_ms.get() < 150.0 {
            return;
        }
        self.last_emit_ms.set(now);
        let secs = ((now - self.started_ms) / 1000.0).max(1e-3);
        let speed = self.fetched.get() as f64 / secs;
        let remaining = self.total.saturating_sub(self.done.get()) as f64;
        self.emit.as_ref()(Event::DownloadProgress {
            id: self.id.clone(),
            done_bytes: self.done.get(),
            total_bytes: self.total,
            bytes_per_s: speed,
            eta_s: if speed > 0.0 { remaining / speed } else { 0.0 },
            note: self.note.borrow().clone(),
        });
    }

    fn note(&self, note: Option<String>) {
        *self.note.borrow_mut() = note;
        self.send(true);
    }
}

/// Refuses a model whose largest piece does not fit the GPU's (maxStorageBufferBindingSize,
/// maxBufferSize), before anything is stored.
pub fn fits_gpu(manifest: &Manifest, gpu_limits: Option<(u64, u64)>) -> Result<(), String> {
    let Some((binding, buffer)) = gpu_limits else { return Ok(()) };
    let limit = binding.min(buffer);
    if manifest.requirements.min_binding_bytes > limit {
        return Err(format!(
            "{} cannot run on this GPU: it needs buffers of {} in one binding, and this GPU allows {}",
            manifest.name,
            format_bytes(manifest.requirements.min_binding_bytes),
            format_bytes(limit)
        ));
    }
    Ok(())
}

impl Download<'_> {
    /// Downloads (or resumes, or verifies complete) model `id` from `base`.
    pub async fn run(&self, base: &str, id: &str) -> Result<(), String> {
        let fetched = fetch_manifest(base, id).await?;
        let manifest = &fetched.manifest;
        fits_gpu(manifest, self.gpu_limits)?;
        let previous = self.store.model(id).await.map_err(|e| e.to_string())?;
        let changed = previous.as_ref().is_some_and(|p| p.manifest_sha256 != fetched.sha256);
        let record = ModelRecord {
            id: id.to_string(),
            manifest_json: fetched.json.clone(),
            manifest_sha256: fetched.sha256.clone(),
            complete: false,
            updated_ms: js::now_ms(),
        };
        let wanted: HashSet<String> = manifest.files.iter().flat_map(|f| f.chunks.iter().map(|c| c.sha256.clone())).collect();
        self.store.put_model(&record).await.map_err(|e| e.to_string())?;
        self.store.prune_chunks(id, &wanted).await.map_err(|e| e.to_string())?;
        let have = self.store.chunk_hashes(id).await.map_err(|e| e.to_string())?;
        let mut missing = Vec::new();
        let mut done = 0u64;
        for file in &manifest.files {
            for chunk in &file.chunks {
                if have.contains(&chunk.sha256) {
                    done += chunk.length;
                } else {
                    missing.push((file, chunk));
                }
            }
        }
        let need: u64 = missing.iter().map(|(_, c)| c.length).sum();
        if let Some((usage, quota)) = js::storage_estimate().await {
            let free = (quota - usage).max(0.0);
            if need as f64 > free {
                return Err(format!(
                    "{} needs {} more storage, and this browser allows this site {} more; free some space (or delete other models) and try again",
                    manifest.name,
                    format_bytes(need),
                    format_bytes(free as u64)
                ));
            }
        }
        let progress = Progress {
            emit: self.emit.clone(),
            id: id.to_string(),
            total: manifest.total_bytes,
            done: Cell::new(done),
            fetched: Cell::new(0),
            started_ms: js::now_ms(),
            last_emit_ms: Cell::new(0.0),
            note: std::cell::RefCell::new(changed.then(|| {
                format!("the model changed on the server: keeping {} verified chunks that still match", have.len())
            })),
        };
        progress.send(true);
        let results = stream::iter(missing.iter().map(|(file, chunk)| {
            let url = format!("{base}/models/{id}/{}", file.shard);
            let progress = &progress;
            async move {
                let data = self.fetch_chunk(&url, &file.name, chunk, progress).await?;
                self.store.put_chunk(id, &chunk.sha256, &data).await.map_err(|e| e.to_string())?;
                progress.done.set(progress.done.get() + chunk.length);
                progress.fetched.set(progress.fetched.get() + chunk.length);
                progress.send(false);
                Ok::<(), String>(())
            }
        }))
        .buffer_unordered(PARALLEL);
        futures::pin_mut!(results);
        // On the first failure the others stop at their next step, but each in-flight
        // request is awaited to its end: dropping a pending browser promise's future
        // would leave the browser calling a freed callback.
        let mut first_error = None;
        while let Some(r) = results.next().await {
            if let Err(e) = r {
                self.cancel.set(true);
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        progress.note(None);
        self.store.put_model(&ModelRecord { complete: true, updated_ms: js::now_ms(), ..record }).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn fetch_chunk(&self, url: &str, file: &str, chunk: &app::manifest::Chunk, progress: &Progress) -> Result<js_sys::ArrayBuffer, String> {
        let mut bad = 0;
        let mut failures = 0;
        let mut backoff = FIRST_BACKOFF_MS;
        loop {
            if self.cancel.get() {
                return Err("cancelled".into());
            }
            let problem = match self.request_chunk(url, file, chunk).await {
                Attempt::Bytes(data) => {
                    let sha = js::sha256_hex(&data).await.map_err(|e| js::message(&e))?;
                    if sha == chunk.sha256 {
                        progress.note(None);
                        return Ok(data);
                    }
                    bad += 1;
                    if bad >= VERIFY_ATTEMPTS {
                        return Err(format!(
                            "the chunk at byte {} of {file} failed verification {bad} times (sha256 {sha}, expected {}): the server's copy is corrupt",
                            chunk.offset, chunk.sha256
                        ));
                    }
                    progress.note(Some(format!("a chunk of {file} failed verification; fetching it again")));
                    continue;
                }
                Attempt::Fatal(message) => return Err(message),
                Attempt::Transient(problem) => problem,
            };
            failures += 1;
            if failures >= TRANSPORT_ATTEMPTS {
                return Err(format!(
                    "{problem}, {failures} times for the chunk at byte {} of {file}: check the connection and press Retry (the verified chunks are kept)",
                    chunk.offset
                ));
            }
            progress.note(Some(format!("{problem}; retrying in {:.1} s", f64::from(backoff) / 1000.0)));
            self.pause(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF_MS);
        }
    }

    /// Sleeps `ms`, waking early when the download is cancelled.
    async fn pause(&self, ms: u32) {
        let mut left = ms;
        while left > 0 && !self.cancel.get() {
            let step = left.min(100);
            js::sleep_ms(step).await;
            left -= step;
        }
    }

    async fn request_chunk(&self, url: &str, file: &str, chunk: &app::manifest::Chunk) -> Attempt {
        let last = chunk.offset + chunk.length - 1;
        let response = match js::fetch(url, &[("Range", format!("bytes={}-{last}", chunk.offset))]).await {
            Ok(r) => r,
            Err(e) => return Attempt::Transient(format!("connection lost ({})", js::message(&e))),
        };
        match response.status() {
            206 => {}
            200 => {
                // The whole file is on its way: stop it rather than read gigabytes.
                js::cancel_body(&response);
                return Attempt::Fatal(format!(
                    "the server ignored the range request for {file} (it answered 200 with the whole file); Eddy downloads in verified chunks and needs a server that honours HTTP Range"
                ));
            }
            404 => return Attempt::Fatal(format!("the server no longer has {file} (404)")),
            416 => return Attempt::Fatal(format!("{file} changed on the server (416): reload to download the new version")),
            s @ (408 | 429 | 500..=599) => {
                js::cancel_body(&response);
                return Attempt::Transient(format!("the server answered {s}"));
            }
            s => {
                js::cancel_body(&response);
                return Attempt::Fatal(format!("the server answered {s} to a range request for {file}"));
            }
        }
        let expected = format!("bytes {}-{last}/", chunk.offset);
        let content_range = response.headers().get("content-range").ok().flatten().unwrap_or_default();
        if !content_range.starts_with(&expected) {
            js::cancel_body(&response);
            return Attempt::Fatal(format!("the server answered a range request for {file} with other bytes (Content-Range {content_range:?})"));
        }
        match js::response_bytes(&response).await {
            Ok(data) if data.byte_length() as u64 == chunk.length => Attempt::Bytes(data),
            Ok(data) => Attempt::Transient(format!("the server sent {} of a chunk's {} bytes", data.byte_length(), chunk.length)),
            Err(e) => Attempt::Transient(format!("the connection dropped mid-chunk ({})", js::message(&e))),
        }
    }
}
