//! A model from the user's own disk (a `.gguf`, or a Hugging Face folder of
//! safetensors with its config and tokenizer), stored like a download: each
//! file is read in chunks (never whole into memory), each chunk hashed and
//! written to the cache under its sha256, and a manifest made here by the same
//! builder as the server's import. Nothing is uploaded; afterwards the model
//! loads, works offline and survives a reload exactly as a downloaded one.

use std::collections::HashSet;

use app::{
    manifest::{Chunk, Manifest, ManifestFile},
    protocol::Event,
    state::format_bytes,
};
use engine::{
    formats::{gguf, safetensors},
    model::{hf_weight_files, HfFolder, ModelSpec, HF_INDEX, HF_TEXT_FILES},
};
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
/// The largest text file of a folder read whole (a tokenizer.json is ~10 MB).
const MAX_TEXT: u64 = 64 << 20;

async fn slice(file: &web_sys::File, start: u64, end: u64) -> Result<js_sys::ArrayBuffer, String> {
    let blob = file.slice_with_f64_and_f64(start as f64, end as f64).map_err(|e| js::message(&e))?;
    let buffer = js::promise(blob.array_buffer().into()).await.map_err(|e| format!("{} could not be read ({})", file.name(), js::message(&e)))?;
    buffer.dyn_into().map_err(|_| "the browser returned no bytes".to_string())
}

/// A header, read in growing prefixes of `file` until `parse` stops asking
/// for more (`needed`: the bytes a truncated parse asks for).
async fn header<T, E: std::fmt::Display>(file: &web_sys::File, size: u64, parse: impl Fn(&[u8]) -> Result<T, E>, needed: impl Fn(&E) -> Option<u64>) -> Result<T, String> {
    let name = file.name();
    let mut want = (1u64 << 20).min(size);
    loop {
        let bytes = js_sys::Uint8Array::new(&slice(file, 0, want).await?.into()).to_vec();
        match parse(&bytes) {
            Ok(h) => return Ok(h),
            Err(e) => match needed(&e) {
                Some(n) if n > size || n > MAX_HEADER => return Err(format!("{name}: its header asks for {n} bytes; the file has {size}")),
                Some(n) if n > want => want = n.max(want * 2).min(size),
                _ => return Err(format!("{name}: {e}")),
            },
        }
    }
}

async fn text(file: &web_sys::File) -> Result<String, String> {
    let size = file.size() as u64;
    if size > MAX_TEXT {
        return Err(format!("{} is {}, too large for a model's text file", file.name(), format_bytes(size)));
    }
    let bytes = js_sys::Uint8Array::new(&slice(file, 0, size).await?.into()).to_vec();
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", file.name()))
}

/// What was picked, recognised: the files to store (in the engine's order)
/// and the model they make.
struct Recognised {
    files: Vec<web_sys::File>,
    spec: ModelSpec,
    format: &'static str,
    tokenizer: &'static str,
    generation_config: Option<String>,
}

async fn recognise_gguf(file: &web_sys::File) -> Result<Recognised, String> {
    let (name, size) = (file.name(), file.size() as u64);
    if size == 0 {
        return Err(format!("{name} is empty"));
    }
    let head = header(file, size, gguf::parse, |e| match e {
        gguf::GgufError::Truncated { needed, .. } => Some(*needed),
        _ => None,
    })
    .await?;
    let spec = ModelSpec::from_gguf(&head, &name, size).map_err(|e| format!("{name}: {e}"))?;
    Ok(Recognised { files: vec![file.clone()], spec, format: "gguf", tokenizer: "gguf", generation_config: None })
}

/// A Hugging Face folder: its text files by name, its safetensors as its
/// index (or the folder) lists them. Other files in it are left alone.
async fn recognise_folder(folder: &str, picked: &[web_sys::File]) -> Result<Recognised, String> {
    let by_name = |n: &str| picked.iter().find(|f| f.name() == n).cloned();
    let mut texts = std::collections::HashMap::new();
    let mut files = Vec::new();
    for name in HF_TEXT_FILES {
        if let Some(f) = by_name(name) {
            texts.insert(name, text(&f).await?);
            files.push(f);
        }
    }
    let need = |n: &str| texts.get(n).cloned().ok_or_else(|| format!("{folder} has no {n}: a model folder needs config.json, tokenizer.json and its .safetensors"));
    let (config_json, tokenizer_json) = (need("config.json")?, need("tokenizer.json")?);
    let index = match by_name(HF_INDEX) {
        Some(f) => Some(text(&f).await?),
        None => None,
    };
    let present: Vec<String> = picked.iter().map(|f| f.name()).collect();
    let mut headers = Vec::new();
    for name in hf_weight_files(index.as_deref(), &present).map_err(|e| format!("{folder}: {e}"))? {
        let f = by_name(&name).ok_or_else(|| format!("{folder} has no {name}, which its {HF_INDEX} names"))?;
        let size = f.size() as u64;
        let h = header(&f, size, safetensors::parse, |e| match e {
            safetensors::SafetensorsError::Truncated { needed, .. } => Some(*needed),
            _ => None,
        })
        .await?;
        headers.push((name, h, size));
        files.push(f);
    }
    let hf = HfFolder {
        name: folder.to_string(),
        config_json,
        tokenizer_json,
        tokenizer_config_json: texts.get("tokenizer_config.json").cloned(),
        chat_template_jinja: texts.get("chat_template.jinja").cloned(),
        generation_config_json: texts.get("generation_config.json").cloned(),
        safetensors: headers,
    };
    let spec = ModelSpec::from_hf(&hf).map_err(|e| format!("{folder}: {e}"))?;
    Ok(Recognised { files, spec, format: "safetensors", tokenizer: "tokenizer.json", generation_config: hf.generation_config_json })
}

pub struct OpenFile<'a> {
    pub store: &'a Store,
    pub emit: Emit,
    /// The GPU's (maxStorageBufferBindingSize, maxBufferSize).
    pub gpu_limits: Option<(u64, u64)>,
}

impl OpenFile<'_> {
    /// Stores what was picked: one `.gguf`, or the files of a Hugging Face
    /// folder (`folder` names it).
    pub async fn run(&self, id: &str, folder: Option<&str>, picked: &[web_sys::File]) -> Result<(), String> {
        let model = match (folder, picked) {
            (None, [file]) if file.name().to_lowercase().ends_with(".gguf") => recognise_gguf(file).await?,
            (None, [file]) => return Err(format!("{} is not a .gguf file (a Hugging Face model is opened as its folder)", file.name())),
            (Some(folder), files) if !files.is_empty() => recognise_folder(folder, files).await?,
            _ => return Err("nothing was picked".into()),
        };
        let label = folder.map(str::to_string).unwrap_or_else(|| picked[0].name());
        // The same checks as the CLI's: a model the engine cannot run stops here.
        let probe = Manifest::describe(&model.spec, id, model.format, model.tokenizer, Vec::new(), CHUNK, None).map_err(|e| format!("{label}: {e}"))?;
        crate::download::fits_gpu(&probe, self.gpu_limits)?;
        let size: u64 = model.files.iter().map(|f| f.size() as u64).sum();
        if let Some((usage, quota)) = js::storage_estimate().await {
            let free = (quota - usage).max(0.0);
            if size as f64 > free {
                return Err(format!(
                    "{label} needs {} of storage, and this browser allows this site {} more; free some space (or delete other models) and try again",
                    format_bytes(size),
                    format_bytes(free as u64)
                ));
            }
        }
        let mut progress = Reading { id, label: &label, total: size, done: 0, started: js::now_ms() };
        let mut files = Vec::new();
        for f in &model.files {
            files.push(self.store_file(&mut progress, f).await?);
        }
        let manifest = Manifest::describe(&model.spec, id, model.format, model.tokenizer, files, CHUNK, model.generation_config.as_deref()).map_err(|e| format!("{label}: {e}"))?;
        manifest.validate(id).map_err(|e| e.to_string())?;
        let json = serde_json::to_string(&manifest).expect("manifests serialize");
        let record = ModelRecord { id: id.to_string(), manifest_sha256: hex::encode(Sha256::digest(json.as_bytes())), manifest_json: json, complete: true, updated_ms: js::now_ms() };
        self.store.put_model(&record).await.map_err(|e| e.to_string())?;
        // A file opened again under the same id keeps only its own chunks.
        let keep: HashSet<String> = manifest.files.iter().flat_map(|f| f.chunks.iter().map(|c| c.sha256.clone())).collect();
        self.store.prune_chunks(id, &keep).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Stores one file chunk by chunk: each hashed and written, the whole
    /// file's hash fed as it goes.
    async fn store_file(&self, progress: &mut Reading<'_>, file: &web_sys::File) -> Result<ManifestFile, String> {
        let (name, size) = (file.name(), file.size() as u64);
        let mut whole = Sha256::new();
        let mut chunks = Vec::new();
        let mut buf = Vec::new();
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
            self.store.put_chunk(progress.id, &sha, &data).await.map_err(|e| e.to_string())?;
            chunks.push(Chunk { offset, length: end - offset, sha256: sha });
            progress.advance(&self.emit, end - offset);
            offset = end;
        }
        let sha = hex::encode(whole.finalize());
        let ext = name.rsplit_once('.').map_or("bin", |(_, e)| e);
        let shard = format!("shards/{sha}.{ext}");
        Ok(ManifestFile { name, size, sha256: sha, shard, chunks })
    }
}

/// Progress over all the files being stored.
struct Reading<'a> {
    id: &'a str,
    label: &'a str,
    total: u64,
    done: u64,
    started: f64,
}

impl Reading<'_> {
    fn advance(&mut self, emit: &Emit, bytes: u64) {
        self.done += bytes;
        let secs = ((js::now_ms() - self.started) / 1000.0).max(1e-3);
        let speed = self.done as f64 / secs;
        emit.as_ref()(Event::DownloadProgress {
            id: self.id.to_string(),
            done_bytes: self.done,
            total_bytes: self.total,
            bytes_per_s: speed,
            eta_s: self.total.saturating_sub(self.done) as f64 / speed,
            note: Some(format!("reading {} from this device; nothing is uploaded", self.label)),
        });
    }
}
