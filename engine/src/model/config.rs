//! One architecture-neutral description of a model's shape, built from GGUF
//! metadata or from a Hugging Face `config.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::ModelError;
use crate::formats::gguf::{GgufFile, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Lfm2,
    Lfm2Moe,
    Llama,
    /// Llama's block with RMS norms on each head's queries and keys, NeoX RoPE.
    Qwen3,
}

impl Arch {
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Lfm2 => "lfm2",
            Arch::Lfm2Moe => "lfm2moe",
            Arch::Llama => "llama",
            Arch::Qwen3 => "qwen3",
        }
    }

    /// LFM2's family: short-convolution layers beside attention, the final
    /// norm stored as `token_embd_norm`.
    pub fn is_lfm2(self) -> bool {
        matches!(self, Arch::Lfm2 | Arch::Lfm2Moe)
    }

    /// Whether attention normalizes each head's queries and keys (RMS) before RoPE.
    pub fn qk_norm(self) -> bool {
        !matches!(self, Arch::Llama)
    }

    /// RoPE's pairing in GGUF files: llama.cpp's converter permutes Llama's
    /// Q/K rows to the normal form and leaves the others as trained (NeoX).
    pub fn gguf_rope_style(self) -> RopeStyle {
        if self == Arch::Llama { RopeStyle::Normal } else { RopeStyle::Neox }
    }

    /// RoPE's base when the file does not say.
    pub fn default_rope_theta(self) -> f32 {
        if self == Arch::Llama { 10_000.0 } else { 1_000_000.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// LFM2's gated short convolution.
    Conv,
    /// Grouped-query attention.
    Attention,
}

/// How RoPE pairs dimensions: NeoX rotates the two halves of a head, "normal"
/// (GPT-J) rotates adjacent pairs. llama.cpp's converter permutes Llama's Q/K
/// weights so that GGUF Llama files use the normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeStyle {
    Neox,
    Normal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoeConfig {
    pub n_experts: usize,
    pub top_k: usize,
    /// Width of each expert's SwiGLU.
    pub expert_ffn: usize,
    /// Layers before this index use the dense FFN.
    pub n_dense_layers: usize,
    pub norm_topk: bool,
    pub routed_scale: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub hidden: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Effective dense FFN width (after LFM2's auto-adjust).
    pub ffn: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub rope_theta: f32,
    pub rope_style: RopeStyle,
    pub norm_eps: f32,
    pub layers: Vec<LayerKind>,
    /// Width of LFM2's causal conv (taps, including the current token).
    pub conv_kernel: usize,
    pub moe: Option<MoeConfig>,
    pub tied_embeddings: bool,
}

impl ModelConfig {
    pub fn is_moe_layer(&self, layer: usize) -> bool {
        self.moe.as_ref().is_some_and(|m| layer >= m.n_dense_layers)
    }

    pub fn attention_layers(&self) -> impl Iterator<Item = usize> + '_ {
        self.layers.iter().enumerate().filter(|(_, k)| **k == LayerKind::Attention).map(|(i, _)| i)
    }

    /// Checks what the kernels rely on, so a bad file fails here with a reason.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        // Upper bounds before anything is sized from these numbers (a hostile
        // file could otherwise ask for absurd buffers): far above real models.
        for (name, v, max) in [
            ("hidden size", self.hidden, MAX_HIDDEN),
            ("layer count", self.n_layers, MAX_LAYERS),
            ("head count", self.n_heads, MAX_HEADS),
            ("vocabulary", self.vocab, MAX_VOCAB),
            ("FFN width", self.ffn, MAX_FFN),
            ("expert FFN width", self.moe.as_ref().map_or(0, |m| m.expert_ffn), MAX_FFN),
            ("dense layer count", self.moe.as_ref().map_or(0, |m| m.n_dense_layers), self.n_layers),
        ] {
            if v > max {
                return bad(format!("{name} {v} (at most {max})"));
            }
        }
        if self.hidden == 0 || self.n_layers == 0 || self.n_heads == 0 || self.vocab == 0 {
            return bad(format!("hidden {}, layers {}, heads {}, vocab {}", self.hidden, self.n_layers, self.n_heads, self.vocab));
        }
        if self.layers.len() != self.n_layers {
            return bad(format!("{} layer types for {} layers", self.layers.len(), self.n_layers));
        }
        if self.n_kv_heads == 0 || self.n_heads % self.n_kv_heads != 0 {
            return bad(format!("{} heads cannot share {} kv heads", self.n_heads, self.n_kv_heads));
        }
        if self.head_dim == 0 || self.head_dim % 16 != 0 || self.head_dim > 256 {
            return bad(format!("head size {} (the attention kernels take multiples of 16 up to 256)", self.head_dim));
        }
        if self.layers.contains(&LayerKind::Conv) && self.conv_kernel != 3 {
            return bad(format!("conv kernel width {} (Eddy's kernels use 3)", self.conv_kernel));
        }
        if let Some(m) = &self.moe {
            if m.top_k == 0 || m.top_k > m.n_experts || m.top_k > 8 || m.n_experts > 256 {
                return bad(format!("{} of {} experts per token", m.top_k, m.n_experts));
            }
        }
        for (name, v) in [("hidden", self.hidden), ("ffn", self.ffn), ("head size", self.head_dim)] {
            if v % 8 != 0 {
                return bad(format!("{name} {v} is not a multiple of 8"));
            }
        }
        if !(self.rope_theta > 0.0) || !(self.norm_eps > 0.0) {
            return bad(format!("rope theta {} and norm eps {}", self.rope_theta, self.norm_eps));
        }
        Ok(())
    }

    /// Parameter count (elements of every weight the graph uses).
    pub fn parameter_count(&self) -> u64 {
        let (d, f, v) = (self.hidden as u64, self.ffn as u64, self.vocab as u64);
        let (h, g, hd) = (self.n_heads as u64, self.n_kv_heads as u64, self.head_dim as u64);
        let mut n = v * d + d;
        if !self.tied_embeddings {
            n += v * d;
        }
        for (l, kind) in self.layers.iter().enumerate() {
            n += 2 * d;
            n += match kind {
                LayerKind::Conv => 4 * d * d + self.conv_kernel as u64 * d,
                LayerKind::Attention => {
                    d * h * hd + 2 * d * g * hd + h * hd * d + if self.arch.qk_norm() { 2 * hd } else { 0 }
                }
            };
            n += match (&self.moe, self.is_moe_layer(l)) {
                (Some(m), true) => {
                    let e = m.n_experts as u64;
                    e * 3 * d * m.expert_ffn as u64 + d * e + e
                }
                _ => 3 * d * f,
            };
        }
        n
    }
}

/// Bounds on a configuration (see `validate`).
pub const MAX_HIDDEN: usize = 1 << 16;
pub const MAX_LAYERS: usize = 512;
pub const MAX_HEADS: usize = 1024;
pub const MAX_VOCAB: usize = 1 << 22;
pub const MAX_FFN: usize = 1 << 18;
/// Context lengths above this are taken as this (sessions hold fewer tokens anyway).
pub const MAX_CONTEXT: usize = 1 << 24;

/// A count from a file as usize: on wasm32 usize has 32 bits, and a silent
/// truncation would turn a huge hostile value into a plausible one.
fn count(v: u64, key: &str) -> Result<usize, ModelError> {
    usize::try_from(v).map_err(|_| ModelError::InvalidConfig(format!("{key} is {v}")))
}

fn layer_count(n: usize, key: &str) -> Result<usize, ModelError> {
    if n == 0 || n > MAX_LAYERS {
        return Err(ModelError::InvalidConfig(format!("{key} is {n} (1 to {MAX_LAYERS} layers)")));
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// From GGUF metadata

fn meta<'a>(file: &'a GgufFile, key: &str) -> Result<&'a Value, ModelError> {
    file.get(key).ok_or_else(|| ModelError::MissingMetadata(key.to_string()))
}

fn meta_usize(file: &GgufFile, key: &str) -> Result<usize, ModelError> {
    let v = meta(file, key)?.as_u64().ok_or_else(|| ModelError::InvalidConfig(format!("{key} is not a non-negative integer")))?;
    count(v, key)
}

/// An optional count (`default` when absent; an error when present but not a count).
fn meta_count_or(file: &GgufFile, key: &str, default: usize) -> Result<usize, ModelError> {
    match file.get(key) {
        None => Ok(default),
        Some(v) => count(v.as_u64().ok_or_else(|| ModelError::InvalidConfig(format!("{key} is not a non-negative integer")))?, key),
    }
}

fn meta_f32(file: &GgufFile, key: &str, default: f32) -> Result<f32, ModelError> {
    match file.get(key) {
        None => Ok(default),
        Some(v) => v.as_f64().map(|v| v as f32).ok_or_else(|| ModelError::InvalidConfig(format!("{key} is not a number"))),
    }
}

impl ModelConfig {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let arch_name = meta(file, "general.architecture")?
            .as_str()
            .ok_or_else(|| ModelError::InvalidConfig("general.architecture is not a string".into()))?;
        let arch = match arch_name {
            "lfm2" => Arch::Lfm2,
            "lfm2moe" => Arch::Lfm2Moe,
            "llama" => Arch::Llama,
            "qwen3" => Arch::Qwen3,
            other => return Err(ModelError::UnsupportedArchitecture(other.to_string())),
        };
        let a = arch_name;
        let hidden = meta_usize(file, &format!("{a}.embedding_length"))?;
        let n_layers = layer_count(meta_usize(file, &format!("{a}.block_count"))?, "block_count")?;
        let n_heads = meta_usize(file, &format!("{a}.attention.head_count"))?;
        // head_count_kv is one number, or (LFM2) one per layer with 0 marking conv layers.
        let kv_key = format!("{a}.attention.head_count_kv");
        let kv_count = |v: &Value| v.as_u64().ok_or_else(|| ModelError::InvalidConfig(format!("{kv_key} holds {v:?}"))).and_then(|v| count(v, &kv_key));
        let kv_per_layer: Vec<usize> = match file.get(&kv_key) {
            None => vec![n_heads; n_layers],
            Some(Value::Array(items)) => items.iter().map(kv_count).collect::<Result<_, _>>()?,
            Some(v) => vec![kv_count(v)?; n_layers],
        };
        if kv_per_layer.len() != n_layers {
            return Err(ModelError::InvalidConfig(format!("{kv_key} has {} entries for {n_layers} layers", kv_per_layer.len())));
        }
        let layers: Vec<LayerKind> = kv_per_layer
            .iter()
            .map(|&g| if g == 0 && arch.is_lfm2() { LayerKind::Conv } else { LayerKind::Attention })
            .collect();
        let n_kv_heads = kv_per_layer.iter().copied().find(|&g| g > 0).unwrap_or(n_heads);
        if kv_per_layer.iter().any(|&g| g != 0 && g != n_kv_heads) {
            return Err(ModelError::InvalidConfig(format!("{kv_key} varies between attention layers: {kv_per_layer:?}")));
        }
        let head_dim = meta_count_or(file, &format!("{a}.attention.key_length"), if n_heads > 0 { hidden / n_heads } else { 0 })?;
        let vocab = match file.get(&format!("{a}.vocab_size")).and_then(Value::as_u64) {
            Some(v) => count(v, "vocab_size")?,
            None => meta(file, "tokenizer.ggml.tokens")?.as_array().map_or(0, <[Value]>::len),
        };
        let moe = if arch == Arch::Lfm2Moe {
            let gating = file.get(&format!("{a}.expert_gating_func")).and_then(Value::as_u64).unwrap_or(2);
            if gating != 2 {
                return Err(ModelError::InvalidConfig(format!("expert gating function {gating} (LFM2-MoE uses sigmoid, 2)")));
            }
            let scale = meta_f32(file, &format!("{a}.expert_weights_scale"), 1.0)?;
            Some(MoeConfig {
                n_experts: meta_usize(file, &format!("{a}.expert_count"))?,
                top_k: meta_usize(file, &format!("{a}.expert_used_count"))?,
                expert_ffn: meta_usize(file, &format!("{a}.expert_feed_forward_length"))?,
                n_dense_layers: meta_usize(file, &format!("{a}.leading_dense_block_count"))?,
                norm_topk: file.get(&format!("{a}.expert_weights_norm")).and_then(Value::as_bool).unwrap_or(true),
                routed_scale: if scale == 0.0 { 1.0 } else { scale },
            })
        } else {
            None
        };
        let config = ModelConfig {
            arch,
            hidden,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn: meta_usize(file, &format!("{a}.feed_forward_length"))?,
            vocab,
            context_length: file.get(&format!("{a}.context_length")).and_then(Value::as_u64).unwrap_or(4096).min(MAX_CONTEXT as u64) as usize,
            rope_theta: meta_f32(file, &format!("{a}.rope.freq_base"), arch.default_rope_theta())?,
            rope_style: arch.gguf_rope_style(),
            norm_eps: meta_f32(file, &format!("{a}.attention.layer_norm_rms_epsilon"), 1e-5)?,
            layers,
            conv_kernel: meta_count_or(file, &format!("{a}.shortconv.l_cache"), 3)?,
            moe,
            tied_embeddings: !file.tensors.iter().any(|t| t.name == "output.weight"),
        };
        if !arch.is_lfm2() {
            if let Some(dims) = file.get(&format!("{a}.rope.dimension_count")).and_then(Value::as_u64) {
                if dims as usize != config.head_dim {
                    return Err(ModelError::InvalidConfig(format!("partial RoPE ({dims} of {} dims) is not supported", config.head_dim)));
                }
            }
            if file.get(&format!("{a}.rope.scaling.type")).and_then(Value::as_str).is_some_and(|s| s != "none") {
                return Err(ModelError::InvalidConfig("RoPE scaling is not supported".into()));
            }
        }
        config.validate()?;
        Ok(config)
    }
}

// ---------------------------------------------------------------------------------------------
// From a Hugging Face config.json

/// A count from config.json; values too large for usize read as usize::MAX,
/// which `validate` (or `layer_count`) then refuses.
fn j_usize(c: &Json, key: &str) -> Option<usize> {
    c.get(key).and_then(Json::as_u64).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

fn j_req(c: &Json, key: &str) -> Result<usize, ModelError> {
    j_usize(c, key).ok_or_else(|| ModelError::MissingMetadata(format!("config.json key {key}")))
}

fn j_f32(c: &Json, key: &str) -> Option<f32> {
    c.get(key).and_then(Json::as_f64).map(|v| v as f32)
}

/// LFM2's SwiGLU width: 2/3 of the configured width, times the multiplier,
/// rounded up to `block_multiple_of` (HF `Lfm2MLP` and llama.cpp agree).
pub fn lfm2_effective_ffn(ff: usize, auto_adjust: bool, multiplier: Option<f32>, multiple_of: usize) -> usize {
    let mut f = ff;
    if auto_adjust {
        f = f.saturating_mul(2) / 3;
        if let Some(m) = multiplier {
            f = (m * f as f32) as usize;
        }
        let m = multiple_of.max(1);
        f = f.div_ceil(m).saturating_mul(m);
    }
    f
}

impl ModelConfig {
    pub fn from_hf(c: &Json) -> Result<Self, ModelError> {
        let model_type = c.get("model_type").and_then(Json::as_str).unwrap_or("");
        let arch = match model_type {
            "lfm2" => Arch::Lfm2,
            "lfm2_moe" => Arch::Lfm2Moe,
            "llama" => Arch::Llama,
            "qwen3" => Arch::Qwen3,
            other => return Err(ModelError::UnsupportedArchitecture(other.to_string())),
        };
        let hidden = j_req(c, "hidden_size")?;
        let n_layers = layer_count(j_req(c, "num_hidden_layers")?, "num_hidden_layers")?;
        let n_heads = j_req(c, "num_attention_heads")?;
        let n_kv_heads = j_usize(c, "num_key_value_heads").unwrap_or(n_heads);
        let rope_theta = j_f32(c, "rope_theta")
            .or_else(|| c.get("rope_parameters").and_then(|r| j_f32(r, "rope_theta")))
            .unwrap_or(arch.default_rope_theta());
        if let Some(scaling) = c.get("rope_scaling").filter(|v| !v.is_null()) {
            return Err(ModelError::InvalidConfig(format!("RoPE scaling {scaling} is not supported")));
        }
        let layers = match arch {
            Arch::Llama | Arch::Qwen3 => vec![LayerKind::Attention; n_layers],
            _ => {
                if let Some(types) = c.get("layer_types").and_then(Json::as_array) {
                    types
                        .iter()
                        .map(|t| match t.as_str() {
                            Some("conv") => Ok(LayerKind::Conv),
                            Some("full_attention") => Ok(LayerKind::Attention),
                            other => Err(ModelError::InvalidConfig(format!("layer type {other:?}"))),
                        })
                        .collect::<Result<_, _>>()?
                } else if let Some(idxs) = c.get("full_attn_idxs").and_then(Json::as_array) {
                    let idxs: Vec<u64> = idxs.iter().filter_map(Json::as_u64).collect();
                    (0..n_layers as u64).map(|i| if idxs.contains(&i) { LayerKind::Attention } else { LayerKind::Conv }).collect()
                } else {
                    vec![LayerKind::Attention; n_layers]
                }
            }
        };
        let ffn = match arch {
            Arch::Lfm2 => {
                let ff = j_usize(c, "block_ff_dim").or_else(|| j_usize(c, "intermediate_size")).unwrap_or(0);
                let auto = c.get("block_auto_adjust_ff_dim").and_then(Json::as_bool).unwrap_or(true);
                let mult = j_f32(c, "block_ffn_dim_multiplier");
                lfm2_effective_ffn(ff, auto, mult, j_usize(c, "block_multiple_of").unwrap_or(256))
            }
            _ => j_req(c, "intermediate_size")?,
        };
        let moe = if arch == Arch::Lfm2Moe {
            if c.get("use_expert_bias").and_then(Json::as_bool) == Some(false) {
                return Err(ModelError::InvalidConfig("LFM2-MoE without expert bias".into()));
            }
            Some(MoeConfig {
                n_experts: j_req(c, "num_experts")?,
                top_k: j_req(c, "num_experts_per_tok")?,
                expert_ffn: j_req(c, "moe_intermediate_size")?,
                n_dense_layers: j_usize(c, "num_dense_layers").unwrap_or(2),
                norm_topk: c.get("norm_topk_prob").and_then(Json::as_bool).unwrap_or(true),
                routed_scale: j_f32(c, "routed_scaling_factor").unwrap_or(1.0),
            })
        } else {
            None
        };
        let tied = c
            .get("tie_word_embeddings")
            .or_else(|| c.get("tie_embedding"))
            .and_then(Json::as_bool)
            .unwrap_or(arch.is_lfm2());
        let config = ModelConfig {
            arch,
            hidden,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim: j_usize(c, "head_dim").unwrap_or(if n_heads > 0 { hidden / n_heads } else { 0 }),
            ffn,
            vocab: j_req(c, "vocab_size")?,
            context_length: j_usize(c, "max_position_embeddings").unwrap_or(4096).min(MAX_CONTEXT),
            rope_theta,
            rope_style: RopeStyle::Neox,
            norm_eps: j_f32(c, "norm_eps").or_else(|| j_f32(c, "rms_norm_eps")).unwrap_or(1e-5),
            layers,
            conv_kernel: j_usize(c, "conv_L_cache").unwrap_or(3),
            moe,
            tied_embeddings: tied,
        };
        if c.get("conv_bias").and_then(Json::as_bool) == Some(true) {
            return Err(ModelError::InvalidConfig("conv_bias = true is not supported".into()));
        }
        config.validate()?;
        Ok(config)
    }
}
