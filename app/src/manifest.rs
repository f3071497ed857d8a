//! What the server publishes about a model and the browser downloads by:
//! plain JSON files, so any static host or CDN can serve them.

use serde::{Deserialize, Serialize};

pub const MANIFEST_VERSION: u32 = 1;

/// A model id as it may appear in URLs and storage keys: 1 to 128 ASCII
/// letters, digits, '-', '_' and '.', not starting with '.'. The server's
/// import makes only such ids, and the browser refuses any other.
pub fn valid_model_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.starts_with('.') && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `models/index.json`: the models a server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Catalog {
    pub models: Vec<CatalogEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub quantization: String,
    pub total_bytes: u64,
    /// The manifest's sha256, so a client sees when a model changed.
    pub manifest_sha256: String,
}

/// `models/{id}/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub quantization: String,
    pub context_length: u64,
    /// Bytes of all files.
    pub total_bytes: u64,
    /// Bytes per chunk (the last chunk of a file may be shorter).
    pub chunk_size: u64,
    /// `gguf`, or `safetensors` (a Hugging Face folder).
    pub format: String,
    /// The model's files in the order the engine reads them; for a Hugging
    /// Face folder the JSON files come first, then the safetensors.
    pub files: Vec<ManifestFile>,
    pub chat_template: Option<String>,
    /// Where the tokenizer is: "gguf" (its metadata) or a file name.
    pub tokenizer: String,
    pub sampling: RecommendedSampling,
    pub requirements: Requirements,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// The shard holding the file's bytes, relative to the manifest: content-addressed
    /// (`shards/<sha256>.<ext>`), so it never changes and caches forever.
    pub shard: String,
    pub chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub offset: u64,
    pub length: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendedSampling {
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    pub repetition_penalty: f32,
}

/// What the GPU must offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirements {
    /// The largest tensor, in bytes.
    pub largest_tensor_bytes: u64,
    /// The smallest `maxStorageBufferBindingSize` that can hold the largest
    /// unsplittable piece (one row group).
    pub min_binding_bytes: u64,
    /// GPU memory for the weights.
    pub weight_bytes: u64,
    /// GPU memory per token of context (KV cache).
    pub kv_bytes_per_token: u64,
    /// Whether the model needs `shader-f16` (never: every kernel has an f32 path).
    pub shader_f16: bool,
}

impl Manifest {
    pub fn chunk_count(&self) -> usize {
        self.files.iter().map(|f| f.chunks.len()).sum()
    }
}
