//! From the cache to the GPU: chunks are read from IndexedDB a few ahead and
//! fed to the engine's streaming loader one at a time, so the wasm heap holds
//! one chunk (and the model's header), never the model.

use std::rc::Rc;

use futures::StreamExt;

use app::{
    manifest::{Manifest, ManifestFile},
    protocol::{Event, LoadTimes},
};
use engine::{
    formats::{gguf, safetensors},
    gpu::Gpu,
    model::{HfFolder, ModelSpec},
    runtime::{model::Model, session::Session},
    text::TextModel,
};

use crate::{download::Emit, js, store::Store};

pub struct Loaded {
    pub text: TextModel,
    pub manifest: Manifest,
    /// Made when the load began (see [`load`]); not yet run.
    pub session: Session,
    pub peak_wasm_bytes: u64,
    pub times: LoadTimes,
}

/// Makes the session for a model being loaded, given its manifest.
pub type MakeSession<'a> = &'a dyn Fn(&Manifest, &Rc<Model>) -> Result<Session, String>;

/// Chunks listed in the manifest but missing from the cache (evicted).
pub async fn missing_chunks(store: &Store, id: &str, manifest: &Manifest) -> Result<usize, String> {
    let have = store.chunk_hashes(id).await.map_err(|e| e.to_string())?;
    Ok(manifest.files.iter().flat_map(|f| &f.chunks).filter(|c| !have.contains(&c.sha256)).count())
}

/// Chunks read from IndexedDB ahead of the one being fed to the GPU.
const READ_AHEAD: usize = 3;

/// The most header bytes the loader reads into memory (a model's header with
/// a 262k-token vocabulary is ~10 MB).
const MAX_HEADER: u64 = 256 << 20;

struct Reader<'a> {
    store: &'a Store,
    id: &'a str,
    buf: Vec<u8>,
}

impl Reader<'_> {
    /// Copies chunk `i` of `file` into the reused buffer.
    async fn chunk(&mut self, file: &ManifestFile, i: usize) -> Result<&[u8], String> {
        let c = &file.chunks[i];
        let data = self
            .store
            .get_chunk(self.id, &c.sha256)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("a chunk of {} is missing from the cache; download the model again", file.name))?;
        let view = js_sys::Uint8Array::new(&data);
        self.buf.resize(view.length() as usize, 0);
        view.copy_to(&mut self.buf);
        Ok(&self.buf)
    }

    /// A whole (small) file.
    async fn whole(&mut self, file: &ManifestFile) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(file.size as usize);
        for i in 0..file.chunks.len() {
            out.extend_from_slice(self.chunk(file, i).await?);
        }
        Ok(out)
    }

    /// The first bytes of `file`, as many chunks as `parse` needs. `needed`:
    /// the bytes a truncated parse asks for. A header that asks for more than
    /// the file holds (or than MAX_HEADER) is refused at once, rather than
    /// read whole into memory.
    async fn header<T, E: std::fmt::Display>(&mut self, file: &ManifestFile, parse: impl Fn(&[u8]) -> Result<T, E>, needed: impl Fn(&E) -> Option<u64>) -> Result<T, String> {
        let mut prefix = Vec::new();
        for i in 0..file.chunks.len() {
            prefix.extend_from_slice(self.chunk(file, i).await?);
            match parse(&prefix) {
                Ok(v) => return Ok(v),
                Err(e) => match needed(&e) {
                    Some(n) if n > file.size || n > MAX_HEADER => {
                        return Err(format!("{}: its header asks for {n} bytes; the file has {}", file.name, file.size));
                    }
                    Some(_) if i + 1 < file.chunks.len() => continue,
                    _ => return Err(format!("{}: {e}", file.name)),
                },
            }
        }
        Err(format!("{} is empty", file.name))
    }
}

/// Reads model `id` from the cache onto `gpu`.
/// The session is made as soon as the GPU buffers exist, before the first
/// chunk is read: making it creates every pipeline, which the browser's GPU
/// process compiles while this worker reads and feeds the chunks.
pub async fn load(store: &Store, gpu: &Gpu, id: &str, emit: &Emit, make_session: MakeSession<'_>) -> Result<Loaded, String> {
    let t_begin = js::now_ms();
    let secs = |since: f64| (js::now_ms() - since) / 1000.0;
    let mut times = LoadTimes::default();
    let record = store.model(id).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{id} is not downloaded"))?;
    let manifest: Manifest = serde_json::from_str(&record.manifest_json).map_err(|e| e.to_string())?;
    let missing = missing_chunks(store, id, &manifest).await?;
    if missing > 0 {
        return Err(format!("{missing} chunks of {} are missing from the browser's storage (it evicted them); download the model again to fetch just those", manifest.name));
    }
    let mut reader = Reader { store, id, buf: Vec::new() };
    // Which manifest files the engine reads, in its file order.
    let (spec, data_files): (ModelSpec, Vec<&ManifestFile>) = match manifest.format.as_str() {
        "gguf" => {
            let file = manifest.files.first().ok_or("the manifest lists no file")?;
            let header = reader.header(file, gguf::parse, |e| match e {
                gguf::GgufError::Truncated { needed, .. } => Some(*needed),
                _ => None,
            })
            .await?;
            let spec = ModelSpec::from_gguf(&header, &file.name, file.size).map_err(|e| e.to_string())?;
            (spec, vec![file])
        }
        "safetensors" => {
            let mut text = std::collections::HashMap::new();
            let mut tensors = Vec::new();
            let mut headers = Vec::new();
            for file in &manifest.files {
                if file.name.ends_with(".safetensors") {
                    let h = reader
                        .header(file, safetensors::parse, |e| match e {
                            safetensors::SafetensorsError::Truncated { needed, .. } => Some(*needed),
                            _ => None,
                        })
                        .await?;
                    headers.push((file.name.clone(), h, file.size));
                    tensors.push(file);
                } else {
                    let bytes = reader.whole(file).await?;
                    text.insert(file.name.clone(), String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8", file.name))?);
                }
            }
            let need = |name: &str| text.get(name).cloned().ok_or_else(|| format!("the model has no {name}"));
            let folder = HfFolder {
                name: manifest.name.clone(),
                config_json: need("config.json")?,
                tokenizer_json: need("tokenizer.json")?,
                tokenizer_config_json: text.get("tokenizer_config.json").cloned(),
                chat_template_jinja: text.get("chat_template.jinja").cloned(),
                generation_config_json: text.get("generation_config.json").cloned(),
                safetensors: headers,
            };
            (ModelSpec::from_hf(&folder).map_err(|e| e.to_string())?, tensors)
        }
        other => return Err(format!("unknown model format \"{other}\"")),
    };
    let mut load = Model::begin_load(gpu, spec).map_err(|e| e.to_string())?;
    let session = make_session(&manifest, load.model())?;
    times.begin_s = secs(t_begin);
    let total: u64 = data_files.iter().map(|f| f.size).sum();
    let mut before = 0u64;
    let mut peak = js::wasm_memory_bytes();
    let mut buf = std::mem::take(&mut reader.buf);
    drop(reader);
    for (index, file) in data_files.iter().enumerate() {
        let needed = load.loader.needed_ranges(index);
        // Chunks that hold needed tensor bytes (headers are parsed already).
        let wanted: Vec<usize> = (0..file.chunks.len())
            .filter(|&i| {
                let c = &file.chunks[i];
                needed.iter().any(|&(s, e)| s < c.offset + c.length && e > c.offset)
            })
            .collect();
        // The next chunks are read from IndexedDB while this one is fed to the
        // GPU; they wait as browser buffers, outside the wasm heap.
        let mut reads = futures::stream::iter(wanted.into_iter().map(|i| {
            let sha = file.chunks[i].sha256.clone();
            async move { (i, store.get_chunk(id, &sha).await) }
        }))
        .buffered(READ_AHEAD);
        let mut failed = None;
        loop {
            let t = js::now_ms();
            let Some((i, got)) = reads.next().await else { break };
            times.read_wait_s += secs(t);
            if failed.is_some() {
                continue; // Let the reads in flight finish: a dropped request's callback would outlive it.
            }
            let c = &file.chunks[i];
            let data = match got {
                Ok(Some(data)) => data,
                Ok(None) => {
                    failed = Some(format!("a chunk of {} is missing from the cache; download the model again", file.name));
                    continue;
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    continue;
                }
            };
            let t = js::now_ms();
            let view = js_sys::Uint8Array::new(&data);
            buf.resize(view.length() as usize, 0);
            view.copy_to(&mut buf);
            times.copy_s += secs(t);
            let t = js::now_ms();
            let fed = load.feed(index, c.offset, &buf);
            times.feed_s += secs(t);
            if let Err(e) = fed {
                failed = Some(e.to_string());
                continue;
            }
            peak = peak.max(js::wasm_memory_bytes());
            let done = before + c.offset + c.length;
            emit.as_ref()(Event::LoadProgress { id: id.to_string(), done_bytes: done, total_bytes: total, wasm_memory_bytes: js::wasm_memory_bytes() });
        }
        if let Some(e) = failed {
            return Err(e);
        }
        before += file.size;
    }
    drop(buf);
    let t = js::now_ms();
    let model = load.finish().map_err(|e| e.to_string())?;
    let text = TextModel::new(model).map_err(|e| e.to_string())?;
    times.finish_s = secs(t);
    peak = peak.max(js::wasm_memory_bytes());
    Ok(Loaded { text, manifest, session, peak_wasm_bytes: peak, times })
}
