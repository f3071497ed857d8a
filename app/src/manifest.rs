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

/// A model id made from a file or folder name: lowercase letters, digits,
/// '-', '_' and '.', not starting with '.' (check it with `valid_model_id`).
pub fn sanitize_id(raw: &str) -> String {
    let id: String = raw
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect();
    id.trim_start_matches('.').trim_matches('-').chars().take(128).collect()
}

/// The id a model file opened from the user's disk is stored under.
pub fn local_model_id(file_name: &str) -> String {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(s, _)| s);
    sanitize_id(&format!("local-{stem}"))
}

/// The id of a Hugging Face folder opened from disk (its name kept whole: `LFM2-1.2B`).
pub fn local_folder_id(folder: &str) -> String {
    sanitize_id(&format!("local-{folder}"))
}

/// The sampling the model's makers recommend (model cards), or generation_config.json's.
/// `names`: what the model is called (its file's `general.name`, its id or
/// folder): LFM2.5 shares LFM2's architectures but not its recommendation.
pub fn recommended_sampling(arch: engine::model::Arch, names: &[&str], generation_config: Option<&str>) -> RecommendedSampling {
    let r = (arch.family().sampling)(names);
    let mut s = RecommendedSampling { temperature: r.temperature, top_k: r.top_k, top_p: r.top_p, min_p: r.min_p, repetition_penalty: r.repetition_penalty };
    if let Some(g) = generation_config.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()) {
        if g.get("do_sample").and_then(|v| v.as_bool()) == Some(true) {
            if let Some(t) = g.get("temperature").and_then(|v| v.as_f64()) {
                s.temperature = t as f32;
            }
            if let Some(p) = g.get("top_p").and_then(|v| v.as_f64()) {
                s.top_p = p as f32;
            }
            if let Some(k) = g.get("top_k").and_then(|v| v.as_u64()) {
                s.top_k = k as u32;
            }
        }
        if let Some(r) = g.get("repetition_penalty").and_then(|v| v.as_f64()) {
            s.repetition_penalty = r as f32;
        }
    }
    s
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

/// Why a manifest is refused before anything is downloaded by it: a client
/// trusts a manifest for where each chunk starts and what it must hash to, so
/// one that is malformed (a gap, an overlap, an empty chunk, a path out of its
/// folder) could make it store bytes it never verified against the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest version {0} is not one this app reads (it reads {MANIFEST_VERSION}): reload the page for a newer app")]
    Version(u32),
    #[error("the manifest is for \"{found}\", not \"{wanted}\"")]
    WrongId { wanted: String, found: String },
    #[error("the manifest lists no files")]
    NoFiles,
    #[error("the manifest's chunk size is {0}")]
    ChunkSize(u64),
    #[error("{file}: {why}")]
    File { file: String, why: String },
    #[error("the manifest's total of {stated} bytes is not the sum of its files' sizes ({sum})")]
    Total { stated: u64, sum: u64 },
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A path relative to the manifest's folder that stays in it.
fn is_contained_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 512
        && !p.starts_with('/')
        && !p.contains('\\')
        && !p.contains(':')
        && !p.contains('?')
        && !p.contains('#')
        && p.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Manifest {
    /// The manifest of a model whose files are hashed into `files`: what the
    /// server's import publishes, and what the browser stores for a file
    /// opened from disk (one definition, so both load the same way).
    pub fn describe(
        spec: &engine::model::ModelSpec,
        id: &str,
        format: &str,
        tokenizer: &str,
        files: Vec<ManifestFile>,
        chunk_size: u64,
        generation_config: Option<&str>,
    ) -> Result<Self, engine::model::ModelError> {
        let req = engine::runtime::model::Requirements::of(spec)?;
        Ok(Manifest {
            version: MANIFEST_VERSION,
            id: id.to_string(),
            name: if spec.name.is_empty() { spec.config.arch.gguf_name().to_string() } else { spec.name.clone() },
            architecture: spec.config.arch.gguf_name().to_string(),
            parameters: spec.config.parameter_count(),
            quantization: spec.quantization.clone(),
            context_length: spec.config.context_length as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
            chunk_size,
            format: format.to_string(),
            files,
            chat_template: spec.chat_template.clone(),
            tokenizer: tokenizer.to_string(),
            sampling: recommended_sampling(spec.config.arch, &[&spec.name, id], generation_config),
            requirements: Requirements {
                largest_tensor_bytes: req.largest_tensor_bytes,
                min_binding_bytes: req.min_binding_bytes,
                weight_bytes: req.weight_bytes,
                kv_bytes_per_token: req.kv_bytes_per_token,
                shader_f16: false,
            },
        })
    }

    pub fn chunk_count(&self) -> usize {
        self.files.iter().map(|f| f.chunks.len()).sum()
    }

    /// Checks that the manifest is one this app can download `wanted` by:
    /// its version and id, and for every file chunks that are non-empty, no
    /// longer than `chunk_size`, in order, without gaps or overlaps, and cover
    /// the file exactly; hashes that are sha256 hex; shard paths inside the
    /// model's folder.
    pub fn validate(&self, wanted: &str) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(self.version));
        }
        if self.id != wanted || !valid_model_id(&self.id) {
            return Err(ManifestError::WrongId { wanted: wanted.to_string(), found: self.id.clone() });
        }
        if self.files.is_empty() {
            return Err(ManifestError::NoFiles);
        }
        if self.chunk_size == 0 {
            return Err(ManifestError::ChunkSize(0));
        }
        let mut sum = 0u64;
        for file in &self.files {
            let bad = |why: String| ManifestError::File { file: file.name.clone(), why };
            if file.name.is_empty() || file.name.len() > 256 || file.name.contains('/') || file.name.contains('\\') {
                return Err(bad("the file name is not a plain name".into()));
            }
            if !is_contained_path(&file.shard) {
                return Err(bad(format!("the shard path {:?} leaves the model's folder", file.shard)));
            }
            if !is_sha256_hex(&file.sha256) {
                return Err(bad("the file's sha256 is not 64 hex digits".into()));
            }
            if file.size == 0 || file.chunks.is_empty() {
                return Err(bad("the file is empty".into()));
            }
            let mut next = 0u64;
            for (i, chunk) in file.chunks.iter().enumerate() {
                if chunk.length == 0 {
                    return Err(bad(format!("chunk {i} is empty")));
                }
                if chunk.length > self.chunk_size {
                    return Err(bad(format!("chunk {i} is {} bytes, more than the chunk size {}", chunk.length, self.chunk_size)));
                }
                if chunk.offset != next {
                    return Err(bad(format!("chunk {i} starts at byte {}, not where chunk {} ended ({next})", chunk.offset, i.saturating_sub(1))));
                }
                if !is_sha256_hex(&chunk.sha256) {
                    return Err(bad(format!("chunk {i}'s sha256 is not 64 hex digits")));
                }
                next = chunk.offset.checked_add(chunk.length).ok_or_else(|| bad(format!("chunk {i} ends past 2^64")))?;
            }
            if next != file.size {
                return Err(bad(format!("the chunks cover {next} bytes of a {}-byte file", file.size)));
            }
            sum = sum.checked_add(file.size).ok_or_else(|| bad("the sizes add up past 2^64".into()))?;
        }
        if sum != self.total_bytes {
            return Err(ManifestError::Total { stated: self.total_bytes, sum });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn good() -> Manifest {
        let chunks = vec![Chunk { offset: 0, length: 4, sha256: hex(1) }, Chunk { offset: 4, length: 4, sha256: hex(2) }, Chunk { offset: 8, length: 2, sha256: hex(3) }];
        Manifest {
            version: MANIFEST_VERSION,
            id: "tiny".into(),
            name: "Tiny".into(),
            architecture: "lfm2".into(),
            parameters: 1,
            quantization: "F32".into(),
            context_length: 128,
            total_bytes: 10,
            chunk_size: 4,
            format: "gguf".into(),
            files: vec![ManifestFile { name: "m.gguf".into(), size: 10, sha256: hex(9), shard: format!("shards/{}.gguf", hex(9)), chunks }],
            chat_template: None,
            tokenizer: "gguf".into(),
            sampling: RecommendedSampling { temperature: 0.3, top_k: 0, top_p: 1.0, min_p: 0.15, repetition_penalty: 1.05 },
            requirements: Requirements { largest_tensor_bytes: 1, min_binding_bytes: 1, weight_bytes: 1, kv_bytes_per_token: 1, shader_f16: false },
        }
    }

    #[test]
    fn lfm25_and_lfm2_24b_take_their_own_sampling() {
        use engine::model::Arch;
        let low = RecommendedSampling { temperature: 0.1, top_k: 50, top_p: 0.1, min_p: 0.0, repetition_penalty: 1.05 };
        let lfm2 = RecommendedSampling { temperature: 0.3, top_k: 0, top_p: 1.0, min_p: 0.15, repetition_penalty: 1.05 };
        for names in [&["LFM2.5-1.2B-Instruct"][..], &["", "lfm2.5-8b-a1b-q4_k_m"], &["LFM2-24B-A2B"], &["local-LFM2_5-350M"]] {
            assert_eq!(recommended_sampling(Arch::Lfm2, names, None), low, "{names:?}");
            assert_eq!(recommended_sampling(Arch::Lfm2Moe, names, None), low, "{names:?}");
        }
        for names in [&["LFM2-1.2B"][..], &["LFM2-8B-A1B", "lfm2-8b-a1b-q4_0"], &[""]] {
            assert_eq!(recommended_sampling(Arch::Lfm2Moe, names, None), lfm2, "{names:?}");
        }
        // Not a Liquid architecture: the name does not matter.
        assert_eq!(recommended_sampling(Arch::Qwen3, &["LFM2.5"], None).temperature, 0.7);
        // Google's settings for Gemma 3.
        let gemma = recommended_sampling(Arch::Gemma3, &["Gemma 3 270m"], None);
        assert_eq!((gemma.temperature, gemma.top_k, gemma.top_p), (1.0, 64, 0.95));
    }

    fn refused(edit: impl FnOnce(&mut Manifest)) -> ManifestError {
        let mut m = good();
        edit(&mut m);
        m.validate("tiny").expect_err("a bad manifest is refused")
    }

    #[test]
    fn file_names_make_valid_local_ids() {
        assert_eq!(local_model_id("SmolLM2-135M-Instruct.Q4_1.gguf"), "local-smollm2-135m-instruct.q4_1");
        assert_eq!(local_model_id("../My Model (v2).gguf"), "local-..-my-model--v2");
        for name in ["a.gguf", "Ünïcode 模型.gguf", &"x".repeat(300), ".gguf"] {
            assert!(valid_model_id(&local_model_id(name)), "{name}");
        }
    }

    #[test]
    fn a_well_formed_manifest_passes() {
        good().validate("tiny").unwrap();
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_reason() {
        assert_eq!(refused(|m| m.version = 2), ManifestError::Version(2));
        assert!(matches!(refused(|m| m.id = "other".into()), ManifestError::WrongId { .. }));
        assert!(matches!(refused(|m| m.files.clear()), ManifestError::NoFiles));
        assert_eq!(refused(|m| m.chunk_size = 0), ManifestError::ChunkSize(0));
        let why = |e: ManifestError| match e {
            ManifestError::File { why, .. } => why,
            other => panic!("expected a file error, got {other:?}"),
        };
        assert!(why(refused(|m| m.files[0].chunks[1].length = 0)).contains("empty"));
        assert!(why(refused(|m| m.files[0].chunks[1].offset = 5)).contains("not where chunk 0 ended"));
        assert!(why(refused(|m| m.files[0].chunks[1].offset = 3)).contains("not where"));
        assert!(why(refused(|m| { m.files[0].chunks.pop(); })).contains("cover 8 bytes of a 10-byte file"));
        assert!(why(refused(|m| m.files[0].chunks[0].length = 5)).contains("more than the chunk size"));
        assert!(why(refused(|m| m.files[0].chunks[2].sha256 = "XYZ".into())).contains("sha256"));
        assert!(why(refused(|m| m.files[0].chunks[2].offset = u64::MAX)).contains("not where"));
        for shard in ["../other/shards/x", "/abs", "https://evil.example/x", "a//b", "shards/./x", "a\\b", "x?y=1", ""] {
            assert!(why(refused(|m| m.files[0].shard = shard.into())).contains("leaves the model's folder"), "{shard}");
        }
        assert!(why(refused(|m| m.files[0].name = "../m.gguf".into())).contains("plain name"));
        assert!(matches!(refused(|m| m.total_bytes = 11), ManifestError::Total { stated: 11, sum: 10 }));
    }
}
