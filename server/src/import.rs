//! `server import`: prepares a model for hosting. It checks the model with the
//! engine, copies each file into a content-addressed shard, and writes the
//! manifest (chunks with their sha256, what the GPU needs) and the catalog.
//! The bytes are not re-encoded: the browser reads the GGUF or safetensors as published.

use std::{
    fs::File,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use app::manifest::{Catalog, CatalogEntry, Chunk, Manifest, ManifestFile};
use engine::model::ModelError;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Source(String),
    #[error("downloading {reference} from Hugging Face failed: {message}")]
    Hub { reference: String, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io { path: path.display().to_string(), source }
}

pub use app::manifest::sanitize_id;

pub fn valid_id(id: &str) -> bool {
    app::manifest::valid_model_id(id)
}

/// Reads `path` once: the sha256 of every chunk and of the whole file.
fn hash_chunks(path: &Path, chunk_size: u64) -> Result<(String, Vec<Chunk>, u64), ImportError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut whole = Sha256::new();
    let mut chunks = Vec::new();
    let mut buf = vec![0u8; chunk_size as usize];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..]).map_err(io(path))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        whole.update(&buf[..filled]);
        chunks.push(Chunk { offset, length: filled as u64, sha256: hex::encode(Sha256::digest(&buf[..filled])) });
        offset += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    Ok((hex::encode(whole.finalize()), chunks, offset))
}

/// Places a copy of `src` at `dst`, atomically. A copy, never a hard link: the
/// shard's name is its hash, and a link would change with the user's file if
/// they overwrote it later. (`std::fs::copy` uses copy_file_range, which
/// reflinks where the file system can.)
fn place(src: &Path, dst: &Path) -> Result<(), ImportError> {
    if dst.exists() {
        return Ok(()); // content-addressed: the same name holds the same bytes
    }
    let tmp = dst.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(src, &tmp).map_err(io(src))?;
    std::fs::rename(&tmp, dst).map_err(io(dst))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn looks_like_hub_reference(source: &str) -> bool {
    !Path::new(source).exists() && source.split('/').count() == 2 && !source.starts_with('.') && !source.starts_with('/')
}

/// Imports SOURCE (a .gguf, a Hugging Face folder, or on a connected machine a
/// hub reference `owner/repo:QUANT`) into `models_dir/ID`. Returns the manifest.
/// `name`: the display name (default: the model's own, from its metadata).
pub fn import(source: &str, models_dir: &Path, id: Option<&str>, name: Option<&str>, chunk_size: u64) -> Result<Manifest, ImportError> {
    if looks_like_hub_reference(source) {
        let file = crate::hub::download(source)?;
        let default_id = sanitize_id(source.rsplit('/').next().unwrap_or(source));
        return import(&file.to_string_lossy(), models_dir, Some(id.unwrap_or(&default_id)), name, chunk_size);
    }
    let path = Path::new(source);
    if !path.exists() {
        return Err(ImportError::Source(format!("{source}: no such file or folder")));
    }
    let local = engine::source::open(path)?;
    let spec = &local.spec;
    // Files in the order the engine reads them: a folder's text files first.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut generation_config = None;
    let tokenizer;
    if path.is_dir() {
        for name in engine::model::HF_TEXT_FILES {
            let p = path.join(name);
            if p.exists() {
                if name == "generation_config.json" {
                    generation_config = std::fs::read_to_string(&p).ok();
                }
                files.push(p);
            }
        }
        tokenizer = "tokenizer.json".to_string();
    } else {
        tokenizer = "gguf".to_string();
    }
    files.extend(local.paths.iter().cloned());
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let id = sanitize_id(id.unwrap_or(&stem));
    if !valid_id(&id) {
        return Err(ImportError::Source(format!("\"{id}\" is not a usable model id")));
    }
    let dir = models_dir.join(&id);
    let shards = dir.join("shards");
    std::fs::create_dir_all(&shards).map_err(io(&shards))?;
    let mut manifest_files = Vec::new();
    for f in &files {
        let (sha, chunks, size) = hash_chunks(f, chunk_size)?;
        let ext = f.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_else(|| "bin".into());
        let shard = format!("shards/{sha}.{ext}");
        place(f, &dir.join(&shard))?;
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        manifest_files.push(ManifestFile { name, size, sha256: sha, shard, chunks });
    }
    let format = if path.is_dir() { "safetensors" } else { "gguf" };
    let mut manifest = Manifest::describe(spec, &id, format, &tokenizer, manifest_files, chunk_size, generation_config.as_deref())?;
    if let Some(name) = name {
        manifest.name = name.to_string();
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    write_atomic(&dir.join("manifest.json"), &json)?;
    remove_stale_shards(&dir, &manifest)?;
    update_catalog(models_dir, &manifest, &hex::encode(Sha256::digest(&json)))?;
    Ok(manifest)
}

/// Shards no longer named by the manifest (a re-import of changed files).
fn remove_stale_shards(dir: &Path, manifest: &Manifest) -> Result<(), ImportError> {
    let shards = dir.join("shards");
    for entry in std::fs::read_dir(&shards).map_err(io(&shards))?.flatten() {
        let name = format!("shards/{}", entry.file_name().to_string_lossy());
        if !manifest.files.iter().any(|f| f.shard == name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn update_catalog(models_dir: &Path, manifest: &Manifest, manifest_sha256: &str) -> Result<(), ImportError> {
    let path = models_dir.join("index.json");
    // Imports running at once each read, change and write the catalog: one at a time.
    let lock_path = models_dir.join(".index.lock");
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    let mut catalog: Catalog = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    catalog.models.retain(|m| m.id != manifest.id);
    catalog.models.push(CatalogEntry {
        id: manifest.id.clone(),
        name: manifest.name.clone(),
        architecture: manifest.architecture.clone(),
        parameters: manifest.parameters,
        quantization: manifest.quantization.clone(),
        total_bytes: manifest.total_bytes,
        manifest_sha256: manifest_sha256.to_string(),
    });
    catalog.models.sort_by(|a, b| a.id.cmp(&b.id));
    write_atomic(&path, &serde_json::to_vec_pretty(&catalog).expect("catalog serializes"))
}
