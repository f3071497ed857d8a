//! A model file from the user's own disk, stored like a download: the file is
//! read in chunks (never whole into memory), each chunk hashed and written to
//! the cache under its sha256, and a manifest made here by the same builder as
//! the server's import. Nothing is uploaded; afterwards the model loads, works
//! offline and survives a reload exactly as a downloaded one.

use std::collections::HashSet;

use app::{
    manifest::{Chunk, Manifest, ManifestFile},
    protocol::Event,
    state::format_bytes,
};
use engine::{formats::gguf, model::ModelSpec};
use sha2::{Digest, Sha256};
use wasm_bindgen::JsCast;

use crate::{
    download::Emit,
    js,
    store::{ModelRecord, Store},
};

/// Bytes per stored chunk (as the server's import, so both cache alike).
const CHUNK: u64 = 8 << 20;
/// The most header bytes read to recognise the model.
const MAX_HEADER: u64 = 256 << 20;

async fn slice(file: &web_sys::File, start: u64, end: u64) -> Result<js_sys::ArrayBuffer, String> {
    let blob = file.slice_with_f64_and_f64(start as f64, end as f64).map_err(|e| js::message(&e))?;
    let buffer = js::promise(blob.array_buffer().into()).await.map_err(|e| format!("{} could not be read ({})", file.name(), js::message(&e)))?;
    buffer.dyn_into().map_err(|_| "the browser returned no bytes".to_string())
}

/// The file's GGUF header, read in growing prefixes until it parses.
async fn header(file: &web_sys::File, size: u64) -> Result<gguf::GgufFile, String> {
    let name = file.name();
    let mut want = (1u64 << 20).min(size);
    loop {
        let bytes = js_sys::Uint8Array::new(&slice(file, 0, want).await?.into()).to_vec();
        match gguf::parse(&bytes) {
            Ok(h) => return Ok(h),
            Err(gguf::GgufError::Truncated { needed, .. }) if needed > size || needed > MAX_HEADER => {
                return Err(format!("{name}: its header asks for {needed} bytes; the file has {size}"));
            }
            Err(gguf::GgufError::Truncated { needed, .. }) if needed > want => want = needed.max(want * 2).min(size),
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
}

pub struct OpenFile<'a> {
    pub store: &'a Store,
    pub emit: Emit,
    /// The GPU's (maxStorageBufferBindingSize, maxBufferSize).
    pub gpu_limits: Option<(u64, u64)>,
}

impl OpenFile<'_> {
    pub async fn run(&self, id: &str, file: &web_sys::File) -> Result<(), String> {
        let name = file.name();
        if !name.to_lowercase().ends_with(".gguf") {
            return Err(format!("{name} is not a .gguf file (a Hugging Face folder is imported with `server import` for now)"));
        }
        let size = file.size() as u64;
        if size == 0 {
            return Err(format!("{name} is empty"));
        }
        // The same checks as the CLI's: a file the engine cannot run stops here.
        let head = header(file, size).await?;
        let spec = ModelSpec::from_gguf(&head, &name, size).map_err(|e| format!("{name}: {e}"))?;
        drop(head);
        let probe = Manifest::describe(&spec, id, "gguf", "gguf", Vec::new(), CHUNK, None).map_err(|e| format!("{name}: {e}"))?;
        crate::download::fits_gpu(&probe, self.gpu_limits)?;
        if let Some((usage, quota)) = js::storage_estimate().await {
            let free = (quota - usage).max(0.0);
            if size as f64 > free {
                return Err(format!(
                    "{name} needs {} of storage, and this browser allows this site {} more; free some space (or delete other models) and try again",
                    format_bytes(size),
                    format_bytes(free as u64)
                ));
            }
        }
        // Chunk by chunk: hash, store, and feed the whole-file hash.
        let mut whole = Sha256::new();
        let mut chunks = Vec::new();
        let mut buf = Vec::new();
        let started = js::now_ms();
        let mut offset = 0;
        while offset < size {
            let end = (offset + CHUNK).min(size);
            let data = slice(file, offset, end).await?;
            let view = js_sys::Uint8Array::new(&data.clone().into());
            if u64::from(view.length()) != end - offset {
                return Err(format!("{name} changed while it was read; open it again"));
            }
            buf.resize(view.length() as usize, 0);
            view.copy_to(&mut buf);
            whole.update(&buf);
            let sha = hex::encode(Sha256::digest(&buf));
            self.store.put_chunk(id, &sha, &data).await.map_err(|e| e.to_string())?;
            chunks.push(Chunk { offset, length: end - offset, sha256: sha });
            offset = end;
            let secs = ((js::now_ms() - started) / 1000.0).max(1e-3);
            let speed = offset as f64 / secs;
            self.emit.as_ref()(Event::DownloadProgress {
                id: id.to_string(),
                done_bytes: offset,
                total_bytes: size,
                bytes_per_s: speed,
                eta_s: (size - offset) as f64 / speed,
                note: Some(format!("reading {name} from this device; nothing is uploaded")),
            });
        }
        let sha = hex::encode(whole.finalize());
        let files = vec![ManifestFile { name: name.clone(), size, sha256: sha.clone(), shard: format!("shards/{sha}.gguf"), chunks }];
        let manifest = Manifest::describe(&spec, id, "gguf", "gguf", files, CHUNK, None).map_err(|e| format!("{name}: {e}"))?;
        manifest.validate(id).map_err(|e| e.to_string())?;
        let json = serde_json::to_string(&manifest).expect("manifests serialize");
        let record = ModelRecord { id: id.to_string(), manifest_sha256: hex::encode(Sha256::digest(json.as_bytes())), manifest_json: json, complete: true, updated_ms: js::now_ms() };
        self.store.put_model(&record).await.map_err(|e| e.to_string())?;
        // A file opened again under the same id keeps only its own chunks.
        let keep: HashSet<String> = manifest.files.iter().flat_map(|f| f.chunks.iter().map(|c| c.sha256.clone())).collect();
        self.store.prune_chunks(id, &keep).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
