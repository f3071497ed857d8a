//! One architecture-neutral description of a model's shape, built from GGUF
//! metadata or from a Hugging Face `config.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{arch::Family, Arch, ModelError, RopeStyle};
use crate::formats::gguf::{GgufFile, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// LFM2's gated short convolution.
    Conv,
    /// Grouped-query attention.
    Attention,
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
    /// Layers that attend only to the last `window` positions (Gemma 3).
    #[serde(default)]
    pub sliding: Option<SlidingWindow>,
    /// The attention logits' scale; None: 1/√head_dim.
    #[serde(default)]
    pub attention_scale: Option<f32>,
}

/// Sliding-window attention layers: which layers, how far they see, and
/// their own RoPE base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlidingWindow {
    /// A query sees itself and the `window - 1` positions before it.
    pub window: usize,
    pub rope_theta: f32,
    /// One per layer: whether it is a sliding-window layer.
    pub layers: Vec<bool>,
}

impl ModelConfig {
    pub fn is_moe_layer(&self, layer: usize) -> bool {
        self.moe.as_ref().is_some_and(|m| layer >= m.n_dense_layers)
    }

    pub fn family(&self) -> &'static Family {
        self.arch.family()
    }

    /// How far layer `layer` attends back (None: the whole context).
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.sliding.as_ref().filter(|s| s.layers.get(layer).copied().unwrap_or(false)).map(|s| s.window)
    }

    /// Layer `layer`'s RoPE base.
    pub fn rope_theta_of(&self, layer: usize) -> f32 {
        match &self.sliding {
            Some(s) if s.layers.get(layer).copied().unwrap_or(false) => s.rope_theta,
            _ => self.rope_theta,
        }
    }

    pub fn attention_scale(&self) -> f32 {
        self.attention_scale.unwrap_or(1.0 / (self.head_dim as f32).sqrt())
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
        if self.family().block.post_norms && self.moe.is_some() {
            return bad("post-norms around MoE layers are not supported".into());
        }
        if let Some(s) = &self.sliding {
            if s.window == 0 || s.layers.len() != self.n_layers || !(s.rope_theta > 0.0) {
                return bad(format!("sliding window {} over {} of {} layers, rope theta {}", s.window, s.layers.len(), self.n_layers, s.rope_theta));
            }
        }
        if let Some(scale) = self.attention_scale {
            if !(scale > 0.0 && scale.is_finite()) {
                return bad(format!("attention scale {scale}"));
            }
        }
        Ok(())
    }

    /// Parameter count (elements of every weight the graph uses).
    pub fn parameter_count(&self) -> u64 {
        let (d, f, v) = (self.hidden as u64, self.ffn as u64, self.vocab as u64);
        let (h, g, hd) = (self.n_heads as u64, self.n_kv_heads as u64, self.head_dim as u64);
        let post_norms = if self.family().block.post_norms { 2 * d } else { 0 };
        let mut n = v * d + d;
        if !self.tied_embeddings {
            n += v * d;
        }
        for (l, kind) in self.layers.iter().enumerate() {
            n += 2 * d + post_norms;
            n += match kind {
                LayerKind::Conv => 4 * d * d + self.conv_kernel as u64 * d,
                LayerKind::Attention => {
                    d * h * hd + 2 * d * g * hd + h * hd * d + if self.family().block.qk_norm { 2 * hd } else { 0 }
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
pub(super) fn count(v: u64, key: &str) -> Result<usize, ModelError> {
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

pub(super) fn meta<'a>(file: &'a GgufFile, key: &str) -> Result<&'a Value, ModelError> {
    file.get(key).ok_or_else(|| ModelError::MissingMetadata(key.to_string()))
}

pub(super) fn meta_usize(file: &GgufFile, key: &str) -> Result<usize, ModelError> {
    let v = meta(file, key)?.as_u64().ok_or_else(|| ModelError::InvalidConfig(format!("{key} is not a non-negative integer")))?;
    count(v, key)
}

/// An optional count (`default` when absent; an error when present but not a count).
pub(super) fn meta_count_or(file: &GgufFile, key: &str, default: usize) -> Result<usize, ModelError> {
    match file.get(key) {
        None => Ok(default),
        Some(v) => count(v.as_u64().ok_or_else(|| ModelError::InvalidConfig(format!("{key} is not a non-negative integer")))?, key),
    }
}

pub(super) fn meta_f32(file: &GgufFile, key: &str, default: f32) -> Result<f32, ModelError> {
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
        let arch = Arch::from_gguf_name(arch_name)?;
        let family = arch.family();
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
            .map(|&g| if g == 0 && family.block.conv_layers { LayerKind::Conv } else { LayerKind::Attention })
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
        let mut config = ModelConfig {
            arch,
            hidden,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn: meta_usize(file, &format!("{a}.feed_forward_length"))?,
            vocab,
            context_length: file.get(&format!("{a}.context_length")).and_then(Value::as_u64).unwrap_or(4096).min(MAX_CONTEXT as u64) as usize,
            rope_theta: meta_f32(file, &format!("{a}.rope.freq_base"), family.default_rope_theta)?,
            rope_style: family.gguf_rope_style,
            norm_eps: meta_f32(file, &format!("{a}.attention.layer_norm_rms_epsilon"), family.default_norm_eps)?,
            layers,
            conv_kernel: meta_count_or(file, &format!("{a}.shortconv.l_cache"), 3)?,
            moe: None,
            tied_embeddings: !file.tensors.iter().any(|t| t.name == "output.weight"),
            sliding: None,
            attention_scale: None,
        };
        if let Some(dims) = file.get(&format!("{a}.rope.dimension_count")).and_then(Value::as_u64) {
            if dims as usize != config.head_dim {
                return Err(ModelError::InvalidConfig(format!("partial RoPE ({dims} of {} dims) is not supported", config.head_dim)));
            }
        }
        if file.get(&format!("{a}.rope.scaling.type")).and_then(Value::as_str).is_some_and(|s| s != "none") {
            return Err(ModelError::InvalidConfig("RoPE scaling is not supported".into()));
        }
        (family.read_gguf)(file, &mut config)?;
        config.validate()?;
        Ok(config)
    }
}

// ---------------------------------------------------------------------------------------------
// From a Hugging Face config.json

/// A count from config.json; values too large for usize read as usize::MAX,
/// which `validate` (or `layer_count`) then refuses.
pub(super) fn j_usize(c: &Json, key: &str) -> Option<usize> {
    c.get(key).and_then(Json::as_u64).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

pub(super) fn j_req(c: &Json, key: &str) -> Result<usize, ModelError> {
    j_usize(c, key).ok_or_else(|| ModelError::MissingMetadata(format!("config.json key {key}")))
}

pub(super) fn j_f32(c: &Json, key: &str) -> Option<f32> {
    c.get(key).and_then(Json::as_f64).map(|v| v as f32)
}

impl ModelConfig {
    pub fn from_hf(c: &Json) -> Result<Self, ModelError> {
        let model_type = c.get("model_type").and_then(Json::as_str).unwrap_or("");
        let arch = Arch::from_hf_model_type(model_type)?;
        let family = arch.family();
        let hidden = j_req(c, "hidden_size")?;
        let n_layers = layer_count(j_req(c, "num_hidden_layers")?, "num_hidden_layers")?;
        let n_heads = j_req(c, "num_attention_heads")?;
        let n_kv_heads = j_usize(c, "num_key_value_heads").unwrap_or(n_heads);
        let rope_theta = j_f32(c, "rope_theta")
            .or_else(|| c.get("rope_parameters").and_then(|r| j_f32(r, "rope_theta")))
            .unwrap_or(family.default_rope_theta);
        if let Some(scaling) = c.get("rope_scaling").filter(|v| !v.is_null()) {
            return Err(ModelError::InvalidConfig(format!("RoPE scaling {scaling} is not supported")));
        }
        let tied = c.get("tie_word_embeddings").or_else(|| c.get("tie_embedding")).and_then(Json::as_bool).unwrap_or(family.hf_tied_by_default);
        let mut config = ModelConfig {
            arch,
            hidden,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim: j_usize(c, "head_dim").unwrap_or(if n_heads > 0 { hidden / n_heads } else { 0 }),
            ffn: j_usize(c, "intermediate_size").unwrap_or(0),
            vocab: j_req(c, "vocab_size")?,
            context_length: j_usize(c, "max_position_embeddings").unwrap_or(4096).min(MAX_CONTEXT),
            rope_theta,
            rope_style: RopeStyle::Neox,
            norm_eps: j_f32(c, "norm_eps").or_else(|| j_f32(c, "rms_norm_eps")).unwrap_or(family.default_norm_eps),
            layers: vec![LayerKind::Attention; n_layers],
            conv_kernel: j_usize(c, "conv_L_cache").unwrap_or(3),
            moe: None,
            tied_embeddings: tied,
            sliding: None,
            attention_scale: None,
        };
        (family.read_hf)(c, &mut config)?;
        if config.ffn == 0 {
            return Err(ModelError::MissingMetadata("config.json key intermediate_size".into()));
        }
        config.validate()?;
        Ok(config)
    }
}
