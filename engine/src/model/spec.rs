//! A model as the engine sees it before loading: its configuration, where each
//! weight's bytes lie in the source files, its tokenizer and chat template.
//! Weights are named as in GGUF; Hugging Face names are mapped onto them.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{config::LayerKind, ModelConfig, ModelError};
use crate::model::arch::Family;
use crate::formats::{gguf::GgufFile, gguf::Value, safetensors::SafetensorsFile, DType};

/// A contiguous run of one weight's bytes in one source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub file: usize,
    /// Absolute byte offset in the file.
    pub start: u64,
    pub len: u64,
    /// Index (in elements) of the piece's first value within the weight.
    pub first_elem: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightSpec {
    pub name: String,
    pub dtype: DType,
    /// GGML order: `dims[0]` is contiguous; a matrix is `[cols, rows]`.
    pub dims: Vec<u64>,
    pub pieces: Vec<Piece>,
}

impl WeightSpec {
    /// Values in the weight (u64::MAX if the shape overflows; such a weight
    /// fails the shape check against the configuration).
    pub fn elems(&self) -> u64 {
        self.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX)
    }

    pub fn bytes(&self) -> u64 {
        self.dtype.bytes_for(self.elems()).unwrap_or(0)
    }
}

/// Where the tokenizer comes from.
#[derive(Debug, Clone)]
pub enum TokenizerSpec {
    /// A Hugging Face `tokenizer.json`.
    HfJson(String),
    /// GGUF `tokenizer.ggml.*` metadata.
    /// `scores` rank SentencePiece's pieces (`model` "llama"); byte-level BPE has `merges`.
    Gguf { model: String, pre: String, tokens: Vec<String>, token_types: Vec<i32>, merges: Vec<String>, scores: Vec<f32>, add_space_prefix: bool },
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub len: u64,
}

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub config: ModelConfig,
    pub weights: BTreeMap<String, WeightSpec>,
    pub files: Vec<SourceFile>,
    pub tokenizer: TokenizerSpec,
    pub chat_template: Option<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// More ids that end a reply (e.g. `<|endoftext|>` beside `<|im_end|>`).
    pub extra_stops: Vec<u32>,
    /// The engine prepends BOS to plain text (GGUF tokenizers); a tokenizer.json
    /// post-processor adds it by itself, so this is false for those.
    pub add_bos: bool,
    /// How the weights are quantized, for people ("Q4_0", "F16 + Q8_0", ...).
    pub quantization: String,
    /// Added to every norm gain as it loads (a Hugging Face Gemma stores
    /// g - 1: [`Family::hf_norm_shift`]).
    pub norm_shift: f32,
}

impl ModelSpec {
    pub fn weight(&self, name: &str) -> Result<&WeightSpec, ModelError> {
        self.weights.get(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    /// Total bytes of all weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.values().map(WeightSpec::bytes).sum()
    }

    /// Every weight the graph needs with its GGML-order shape, checked against
    /// the files: a missing tensor or a wrong shape fails here, before any upload.
    pub fn check_weights(&self) -> Result<(), ModelError> {
        for (name, dims) in expected_weights(&self.config) {
            let w = self.weight(&name)?;
            if w.dims != dims {
                return Err(ModelError::ShapeMismatch { name, expected: dims, found: w.dims.clone() });
            }
        }
        Ok(())
    }

    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.eos.into_iter().chain(self.extra_stops.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The weights a configuration needs, with their shapes in GGML order.
pub fn expected_weights(c: &ModelConfig) -> Vec<(String, Vec<u64>)> {
    let (d, v) = (c.hidden as u64, c.vocab as u64);
    let (hd, q, kv) = (c.head_dim as u64, (c.n_heads * c.head_dim) as u64, (c.n_kv_heads * c.head_dim) as u64);
    let mut w = vec![("token_embd.weight".to_string(), vec![d, v])];
    let block = c.family().block;
    w.push((c.family().final_norm.to_string(), vec![d]));
    if !c.tied_embeddings {
        w.push(("output.weight".to_string(), vec![d, v]));
    }
    for (l, kind) in c.layers.iter().enumerate() {
        let b = |s: &str| format!("blk.{l}.{s}");
        w.push((b("attn_norm.weight"), vec![d]));
        w.push((b("ffn_norm.weight"), vec![d]));
        if block.post_norms {
            w.push((b("post_attention_norm.weight"), vec![d]));
            w.push((b("post_ffw_norm.weight"), vec![d]));
        }
        match kind {
            LayerKind::Conv => {
                w.push((b("shortconv.in_proj.weight"), vec![d, 3 * d]));
                w.push((b("shortconv.conv.weight"), vec![c.conv_kernel as u64, d]));
                w.push((b("shortconv.out_proj.weight"), vec![d, d]));
            }
            LayerKind::Attention => {
                w.push((b("attn_q.weight"), vec![d, q]));
                w.push((b("attn_k.weight"), vec![d, kv]));
                w.push((b("attn_v.weight"), vec![d, kv]));
                w.push((b("attn_output.weight"), vec![q, d]));
                if block.qk_norm {
                    w.push((b("attn_q_norm.weight"), vec![hd]));
                    w.push((b("attn_k_norm.weight"), vec![hd]));
                }
            }
        }
        match (&c.moe, c.is_moe_layer(l)) {
            (Some(m), true) => {
                let (e, fe) = (m.n_experts as u64, m.expert_ffn as u64);
                w.push((b("ffn_gate_inp.weight"), vec![d, e]));
                w.push((b("exp_probs_b.bias"), vec![e]));
                w.push((b("ffn_gate_exps.weight"), vec![d, fe, e]));
                w.push((b("ffn_up_exps.weight"), vec![d, fe, e]));
                w.push((b("ffn_down_exps.weight"), vec![fe, d, e]));
            }
            _ => {
                let f = c.ffn as u64;
                w.push((b("ffn_gate.weight"), vec![d, f]));
                w.push((b("ffn_up.weight"), vec![d, f]));
                w.push((b("ffn_down.weight"), vec![f, d]));
            }
        }
    }
    w
}

fn quantization_summary<'a>(dtypes: impl Iterator<Item = &'a WeightSpec>) -> String {
    // Name the type holding most of the bytes first.
    let mut bytes: BTreeMap<&str, u64> = BTreeMap::new();
    for w in dtypes {
        *bytes.entry(w.dtype.name()).or_default() += w.bytes();
    }
    let mut v: Vec<_> = bytes.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1));
    v.iter().map(|(n, _)| *n).take(3).collect::<Vec<_>>().join(" + ")
}

// ---------------------------------------------------------------------------------------------
// GGUF

fn string_array(file: &GgufFile, key: &str) -> Result<Vec<String>, ModelError> {
    let arr = file.get(key).and_then(Value::as_array).ok_or_else(|| ModelError::MissingMetadata(key.to_string()))?;
    Ok(arr.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect())
}

impl ModelSpec {
    /// Describes a GGUF file from its header; `file_len` is the file's size.
    pub fn from_gguf(file: &GgufFile, file_name: &str, file_len: u64) -> Result<Self, ModelError> {
        file.validate(file_len)?;
        let config = ModelConfig::from_gguf(file)?;
        let mut weights = BTreeMap::new();
        for t in &file.tensors {
            let dtype = DType::from_ggml(t.ggml_type)
                .map_err(|dtype| ModelError::UnsupportedTensorType { name: t.name.clone(), dtype })?;
            let len = dtype.bytes_for(t.elems()).ok_or_else(|| ModelError::InvalidConfig(format!("tensor {} has an impossible size", t.name)))?;
            let piece = Piece { file: 0, start: file.data_offset + t.offset, len, first_elem: 0 };
            weights.insert(t.name.clone(), WeightSpec { name: t.name.clone(), dtype, dims: t.dims.clone(), pieces: vec![piece] });
        }
        let model = file.get("tokenizer.ggml.model").and_then(Value::as_str).unwrap_or("").to_string();
        let tokenizer = TokenizerSpec::Gguf {
            pre: file.get("tokenizer.ggml.pre").and_then(Value::as_str).unwrap_or("default").to_string(),
            tokens: string_array(file, "tokenizer.ggml.tokens")?,
            token_types: file
                .get("tokenizer.ggml.token_type")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_i64().unwrap_or(1) as i32).collect())
                .unwrap_or_default(),
            merges: string_array(file, "tokenizer.ggml.merges").unwrap_or_default(),
            scores: file
                .get("tokenizer.ggml.scores")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect())
                .unwrap_or_default(),
            add_space_prefix: file.get("tokenizer.ggml.add_space_prefix").and_then(Value::as_bool).unwrap_or(true),
            model,
        };
        let id = |key: &str| file.get(key).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok());
        let name = file
            .get("general.name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| file_name.trim_end_matches(".gguf").to_string());
        let family = config.family();
        let mut extra_stops: Vec<u32> = id("tokenizer.ggml.eot_token_id").into_iter().collect();
        if let TokenizerSpec::Gguf { tokens, .. } = &tokenizer {
            extra_stops.extend(family_stop_ids(family, |t| tokens.iter().position(|x| x == t)));
        }
        let spec = ModelSpec {
            name,
            quantization: quantization_summary(weights.values()),
            config,
            files: vec![SourceFile { name: file_name.to_string(), len: file_len }],
            chat_template: file
                .get("tokenizer.chat_template")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| family.default_chat_template.map(str::to_string)),
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            extra_stops,
            norm_shift: 0.0,
            add_bos: file.get("tokenizer.ggml.add_bos_token").and_then(Value::as_bool).unwrap_or(false),
            tokenizer,
            weights,
        };
        spec.check_weights()?;
        Ok(spec)
    }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face folders

/// The text files of a Hugging Face model folder the engine reads (config.json
/// and tokenizer.json required), in the order a cache stores them.
pub const HF_TEXT_FILES: [&str; 5] = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"];

/// The index of a sharded safetensors checkpoint.
pub const HF_INDEX: &str = "model.safetensors.index.json";

/// The weight files of a Hugging Face folder, sorted: those its index
/// (`index_json`, the text of [`HF_INDEX`]) names, else every `.safetensors`
/// file `present`. An index naming a path outside the folder is refused.
pub fn hf_weight_files(index_json: Option<&str>, present: &[String]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = match index_json {
        Some(index) => {
            let v: Json = serde_json::from_str(index).map_err(|e| format!("{HF_INDEX}: {e}"))?;
            let names: Vec<String> = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .map(|m| m.values().filter_map(|f| f.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            for n in &names {
                let p = std::path::Path::new(n);
                if p.is_absolute() || p.components().any(|c| !matches!(c, std::path::Component::Normal(_))) || n.contains('/') || n.contains('\\') {
                    return Err(format!("{HF_INDEX} names {n}, outside the model folder"));
                }
            }
            names
        }
        None => present.iter().filter(|n| n.ends_with(".safetensors")).cloned().collect(),
    };
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err("no .safetensors files in this folder".into());
    }
    Ok(names)
}

/// The text files of a Hugging Face model folder, and its parsed safetensors headers.
pub struct HfFolder {
    pub name: String,
    pub config_json: String,
    pub tokenizer_json: String,
    pub tokenizer_config_json: Option<String>,
    pub chat_template_jinja: Option<String>,
    pub generation_config_json: Option<String>,
    /// (file name, header, file length), in the order their bytes will be fed.
    pub safetensors: Vec<(String, SafetensorsFile, u64)>,
}

/// Maps a Hugging Face tensor name to its GGUF name (the family's map), and,
/// for per-expert MoE weights, the expert index (they are stacked into one
/// GGUF tensor).
fn hf_to_gguf_name(family: &Family, name: &str) -> Option<(String, Option<u64>)> {
    if let Some(t) = (family.hf_top_tensor)(name) {
        return Some((t.to_string(), None));
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    if let Some(expert_tail) = tail.strip_prefix("feed_forward.experts.") {
        let (e, w) = expert_tail.split_once('.')?;
        let stacked = match w {
            "w1.weight" => "ffn_gate_exps.weight",
            "w3.weight" => "ffn_up_exps.weight",
            "w2.weight" => "ffn_down_exps.weight",
            _ => return None,
        };
        return Some((format!("blk.{layer}.{stacked}"), Some(e.parse().ok()?)));
    }
    Some((format!("blk.{layer}.{}", (family.hf_layer_tensor)(tail)?), None))
}

/// The ids of the family's extra stop tokens that the vocabulary has.
fn family_stop_ids(family: &Family, id_of: impl Fn(&str) -> Option<usize>) -> Vec<u32> {
    family.stop_tokens.iter().filter_map(|t| id_of(t)).filter_map(|i| u32::try_from(i).ok()).collect()
}

fn parse_json(text: &str, what: &str) -> Result<Json, ModelError> {
    serde_json::from_str(text).map_err(|e| ModelError::InvalidConfig(format!("{what} is not valid JSON: {e}")))
}

/// A token id given as a number, a list of numbers (the first is taken), or absent.
fn json_ids(v: Option<&Json>) -> Vec<u32> {
    match v {
        Some(Json::Number(n)) => n.as_u64().and_then(|v| u32::try_from(v).ok()).map(|v| vec![v]).unwrap_or_default(),
        Some(Json::Array(a)) => a.iter().filter_map(Json::as_u64).filter_map(|v| u32::try_from(v).ok()).collect(),
        _ => Vec::new(),
    }
}

impl ModelSpec {
    pub fn from_hf(folder: &HfFolder) -> Result<Self, ModelError> {
        let config_json = parse_json(&folder.config_json, "config.json")?;
        let config = ModelConfig::from_hf(&config_json)?;
        let mut weights: BTreeMap<String, WeightSpec> = BTreeMap::new();
        let mut files = Vec::new();
        for (file_idx, (file_name, header, len)) in folder.safetensors.iter().enumerate() {
            header.validate(*len)?;
            files.push(SourceFile { name: file_name.clone(), len: *len });
            for t in &header.tensors {
                let Some((name, expert)) = hf_to_gguf_name(config.family(), &t.name) else {
                    continue; // e.g. rotary caches some exports carry
                };
                // PyTorch [out, in] is GGML [in, out]; the conv's [D, 1, K] squeezes to [K, D].
                let mut dims: Vec<u64> = t.shape.iter().rev().copied().filter(|&d| d != 1 || t.shape.len() == 1).collect();
                if dims.is_empty() {
                    dims.push(1);
                }
                let elems = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
                let piece = Piece { file: file_idx, start: t.start, len: t.end - t.start, first_elem: 0 };
                match expert {
                    None => {
                        if weights.contains_key(&name) {
                            return Err(ModelError::InvalidConfig(format!("{} maps to {name}, which another tensor already gave", t.name)));
                        }
                        weights.insert(name.clone(), WeightSpec { name, dtype: t.dtype, dims, pieces: vec![piece] });
                    }
                    Some(e) => {
                        let n_experts = config.moe.as_ref().map_or(0, |m| m.n_experts as u64);
                        if e >= n_experts {
                            return Err(ModelError::InvalidConfig(format!("{} names expert {e} of {n_experts}", t.name)));
                        }
                        let entry = weights.entry(name.clone()).or_insert_with(|| WeightSpec {
                            name: name.clone(),
                            dtype: t.dtype,
                            dims: dims.iter().copied().chain([n_experts]).collect(),
                            pieces: Vec::new(),
                        });
                        let per_expert = &entry.dims[..entry.dims.len() - 1];
                        if entry.dtype != t.dtype || per_expert != &dims[..] {
                            return Err(ModelError::ShapeMismatch { name: t.name.clone(), expected: per_expert.to_vec(), found: dims });
                        }
                        let first_elem = e.checked_mul(elems).ok_or_else(|| ModelError::InvalidConfig(format!("{} is too large", t.name)))?;
                        if entry.pieces.iter().any(|p| p.first_elem == first_elem) {
                            // e.g. experts.0 and experts.00
                            return Err(ModelError::InvalidConfig(format!("{} repeats expert {e} of {name}", t.name)));
                        }
                        entry.pieces.push(Piece { first_elem, ..piece });
                    }
                }
            }
        }
        for w in weights.values_mut() {
            w.pieces.sort_by_key(|p| p.first_elem);
            // The pieces must tile the weight: each starts where the previous ended.
            let block = w.dtype.block_elems();
            let mut next = 0u64;
            for p in &w.pieces {
                let elems = p.len / w.dtype.block_bytes() * block;
                if p.first_elem != next {
                    return Err(ModelError::MissingTensor(format!("{} (values {next}..{} are missing: an expert?)", w.name, p.first_elem)));
                }
                next = next.saturating_add(elems);
            }
            let covered: u64 = w.pieces.iter().map(|p| p.len).fold(0u64, u64::saturating_add);
            if covered != w.bytes() {
                return Err(ModelError::MissingTensor(format!("{} (only {covered} of {} bytes: experts missing?)", w.name, w.bytes())));
            }
        }
        let tok_config = folder.tokenizer_config_json.as_deref().map(|t| parse_json(t, "tokenizer_config.json")).transpose()?;
        let gen_config = folder.generation_config_json.as_deref().map(|t| parse_json(t, "generation_config.json")).transpose()?;
        let chat_template = folder.chat_template_jinja.clone().or_else(|| {
            tok_config.as_ref().and_then(|t| t.get("chat_template")).and_then(|v| match v {
                Json::String(s) => Some(s.clone()),
                // A list of named templates: take "default".
                Json::Array(a) => a
                    .iter()
                    .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(Json::as_str)
                    .map(str::to_string),
                _ => None,
            })
        });
        let from_gen_or_config = |key: &str| {
            let ids = json_ids(gen_config.as_ref().and_then(|g| g.get(key)));
            if ids.is_empty() { json_ids(config_json.get(key)) } else { ids }
        };
        let eos_ids = from_gen_or_config("eos_token_id");
        let config_family = config.family();
        let chat_template = chat_template.or_else(|| config_family.default_chat_template.map(str::to_string));
        let spec = ModelSpec {
            name: folder.name.clone(),
            quantization: quantization_summary(weights.values()),
            config,
            weights,
            files,
            tokenizer: TokenizerSpec::HfJson(folder.tokenizer_json.clone()),
            chat_template,
            bos: from_gen_or_config("bos_token_id").first().copied(),
            eos: eos_ids.first().copied(),
            extra_stops: eos_ids.iter().skip(1).copied().collect(),
            // tokenizer.json's post-processor adds BOS itself when it should.
            add_bos: false,
            norm_shift: config_family.hf_norm_shift,
        };
        spec.check_weights()?;
        Ok(spec)
    }
}
