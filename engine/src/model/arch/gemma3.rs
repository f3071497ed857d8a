//! Gemma 3 (text): sandwich norms (each sublayer's input and output normed),
//! QK norms, GeGLU, the embedding scaled by √hidden, and local layers that
//! see a sliding window with their own RoPE base beside global ones (every
//! sixth layer in Google's releases). Hugging Face checkpoints store norm
//! gains as w for a model that multiplies by 1 + w; GGUF files store 1 + w.

use serde_json::Value as Json;

use super::{llama_style_layer_tensor, llama_style_top_tensor, Activation, Arch, Block, Family, Recommended, RopeStyle};
use crate::formats::gguf::{GgufFile, Value};
use crate::model::config::{j_f32, j_usize, meta_f32, meta_usize, SlidingWindow};
use crate::model::{ModelConfig, ModelError};

/// Google's releases: layers 6k+5 are global, the others local.
const SLIDING_PERIOD: usize = 6;
/// llama.cpp's fixed RoPE base of the local layers.
const LOCAL_ROPE_THETA: f32 = 10_000.0;

/// Gemma's turns; a system message opens the first user turn (as Google's
/// template and llama.cpp's built-in "gemma" template write it).
const CHAT_TEMPLATE: &str = "{{ bos_token }}\
{%- if messages[0]['role'] == 'system' -%}\
{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\
{%- set loop_messages = messages[1:] -%}\
{%- else -%}\
{%- set first_user_prefix = '' -%}\
{%- set loop_messages = messages -%}\
{%- endif -%}\
{%- for message in loop_messages -%}\
{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}\
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}\
{{- message['content'] | trim -}}\
{{ '<end_of_turn>\n' }}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}";

pub(super) const FAMILY: Family = Family {
    arch: Arch::Gemma3,
    gguf_name: "gemma3",
    hf_model_types: &["gemma3_text"],
    block: Block { conv_layers: false, qk_norm: true, post_norms: true, activation: Activation::GeluTanh, embedding_scale: true },
    final_norm: "output_norm.weight",
    gguf_rope_style: RopeStyle::Neox,
    default_rope_theta: 1_000_000.0,
    default_norm_eps: 1e-6,
    hf_tied_by_default: true,
    hf_norm_shift: 1.0,
    stop_tokens: &["<end_of_turn>"],
    default_chat_template: Some(CHAT_TEMPLATE),
    hf_layer_tensor,
    hf_top_tensor: llama_style_top_tensor,
    read_gguf,
    read_hf,
    // Google's recommended settings for Gemma 3.
    sampling: |_| Recommended { temperature: 1.0, top_k: 64, top_p: 0.95, min_p: 0.0, repetition_penalty: 1.0 },
};

fn hf_layer_tensor(tail: &str) -> Option<&'static str> {
    match tail {
        // Gemma's post_attention_layernorm norms the attention's output (Llama's is the FFN's input norm).
        "post_attention_layernorm.weight" => Some("post_attention_norm.weight"),
        "pre_feedforward_layernorm.weight" => Some("ffn_norm.weight"),
        "post_feedforward_layernorm.weight" => Some("post_ffw_norm.weight"),
        _ => llama_style_layer_tensor(tail),
    }
}

fn periodic(n_layers: usize, period: usize) -> Vec<bool> {
    (0..n_layers).map(|l| period == 0 || (l + 1) % period != 0).collect()
}

fn read_gguf(file: &GgufFile, c: &mut ModelConfig) -> Result<(), ModelError> {
    let a = c.arch.gguf_name();
    let window = meta_usize(file, &format!("{a}.attention.sliding_window"))?;
    // Newer converters may write the pattern: one flag per layer, or a period.
    let layers = match file.get(&format!("{a}.attention.sliding_window_pattern")) {
        Some(Value::Array(flags)) => flags.iter().map(|v| v.as_bool().unwrap_or(false)).collect(),
        Some(v) => periodic(c.n_layers, v.as_u64().unwrap_or(SLIDING_PERIOD as u64) as usize),
        None => periodic(c.n_layers, SLIDING_PERIOD),
    };
    let rope_theta = meta_f32(file, &format!("{a}.rope.freq_base_swa"), LOCAL_ROPE_THETA)?;
    c.sliding = Some(SlidingWindow { window, rope_theta, layers });
    // The file's scale where it writes one; else llama.cpp's rule: 1/√head_dim,
    // but for the 27B (62 layers) 1/√(hidden / heads), its query_pre_attn_scalar.
    if let Some(scale) = file.get(&format!("{a}.attention.scale")).and_then(Value::as_f64) {
        c.attention_scale = Some(scale as f32);
    } else if c.n_layers == 62 && c.n_heads > 0 {
        c.attention_scale = Some(1.0 / ((c.hidden / c.n_heads) as f32).sqrt());
    }
    for key in ["final_logit_softcapping", "attn_logit_softcapping"] {
        if file.get(&format!("{a}.{key}")).and_then(Value::as_f64).is_some_and(|v| v != 0.0) {
            return Err(ModelError::InvalidConfig(format!("{key} is not supported (Gemma 2's soft-capping)")));
        }
    }
    Ok(())
}

fn read_hf(j: &Json, c: &mut ModelConfig) -> Result<(), ModelError> {
    if let Some(act) = j.get("hidden_activation").or_else(|| j.get("hidden_act")).and_then(Json::as_str) {
        if act != "gelu_pytorch_tanh" {
            return Err(ModelError::InvalidConfig(format!("activation {act} (Gemma 3 uses gelu_pytorch_tanh)")));
        }
    }
    for key in ["final_logit_softcapping", "attn_logit_softcapping"] {
        if j.get(key).is_some_and(|v| !v.is_null()) {
            return Err(ModelError::InvalidConfig(format!("{key} is not supported (Gemma 2's soft-capping)")));
        }
    }
    if j.get("use_bidirectional_attention").and_then(Json::as_bool) == Some(true) {
        return Err(ModelError::InvalidConfig("bidirectional attention (an embedding model) is not supported".into()));
    }
    let layers = match j.get("layer_types").and_then(Json::as_array) {
        Some(types) => types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                other => Err(ModelError::InvalidConfig(format!("layer type {other:?}"))),
            })
            .collect::<Result<_, _>>()?,
        None => periodic(c.n_layers, j_usize(j, "sliding_window_pattern").unwrap_or(SLIDING_PERIOD)),
    };
    // transformers 5 nests the bases by layer type; 4.x has rope_theta and rope_local_base_freq.
    let params = j.get("rope_parameters");
    let base = |kind: &str| params.and_then(|p| p.get(kind)).and_then(|p| j_f32(p, "rope_theta"));
    if let Some(full) = base("full_attention") {
        c.rope_theta = full;
    }
    for kind in ["full_attention", "sliding_attention"] {
        let rope_type = params.and_then(|p| p.get(kind)).and_then(|p| p.get("rope_type")).and_then(Json::as_str);
        if rope_type.is_some_and(|t| t != "default") {
            return Err(ModelError::InvalidConfig(format!("RoPE scaling {rope_type:?} of the {kind} layers is not supported")));
        }
    }
    let local = base("sliding_attention").or_else(|| j_f32(j, "rope_local_base_freq")).unwrap_or(LOCAL_ROPE_THETA);
    let window = j_usize(j, "sliding_window").unwrap_or(4096);
    c.sliding = Some(SlidingWindow { window, rope_theta: local, layers });
    if let Some(scalar) = j_f32(j, "query_pre_attn_scalar") {
        c.attention_scale = Some(1.0 / scalar.sqrt());
    }
    Ok(())
}
