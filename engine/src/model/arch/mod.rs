//! Model families, one module each: what a family is called in GGUF and in
//! Hugging Face configs, the shape of its blocks, how its tensors are named,
//! how its configuration differs from the common reading, and its defaults
//! (chat template, stop tokens, sampling). The config reader, the weight map
//! and the graph builder ask the family's [`Family`] descriptor; nothing else
//! asks which family a model is.
//!
//! Adding a family: a module here with its `FAMILY`, a variant of [`Arch`],
//! and its line in [`Arch::ALL`].

mod gemma3;
mod lfm2;
mod llama;
mod qwen3;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{ModelConfig, ModelError};
use crate::formats::gguf::GgufFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Lfm2,
    Lfm2Moe,
    Llama,
    /// Llama's block with RMS norms on each head's queries and keys, NeoX RoPE.
    Qwen3,
    /// Sandwich norms, GeGLU, sliding-window layers with their own RoPE base.
    Gemma3,
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

/// The gate's activation in the gated feed-forward: SwiGLU or GeGLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
}

/// What a family's transformer block is made of, beyond the common
/// pre-norm residual block of attention (or LFM2's conv) and a gated FFN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Block {
    /// Some layers are LFM2's gated short convolution.
    pub conv_layers: bool,
    /// Each head's queries and keys are RMS-normed before RoPE.
    pub qk_norm: bool,
    /// Each sublayer's output is RMS-normed before the residual add
    /// (`post_attention_norm`, `post_ffw_norm`).
    pub post_norms: bool,
    pub activation: Activation,
    /// The embedding is scaled by √hidden.
    pub embedding_scale: bool,
}

/// The sampling a family's model cards recommend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommended {
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    pub repetition_penalty: f32,
}

/// A family's descriptor.
pub struct Family {
    pub arch: Arch,
    pub gguf_name: &'static str,
    /// `model_type` values of its Hugging Face configs.
    pub hf_model_types: &'static [&'static str],
    pub block: Block,
    /// The GGUF name of the final norm.
    pub final_norm: &'static str,
    /// RoPE's pairing in GGUF files (llama.cpp's converter permutes Llama's
    /// Q/K rows to the normal form and leaves the others as trained).
    pub gguf_rope_style: RopeStyle,
    pub default_rope_theta: f32,
    pub default_norm_eps: f32,
    /// Embeddings tied to the head when a Hugging Face config does not say.
    pub hf_tied_by_default: bool,
    /// What a Hugging Face checkpoint stores for a norm gain g: g - shift
    /// (Gemma's norms multiply by 1 + w; GGUF files store 1 + w).
    pub hf_norm_shift: f32,
    /// Token texts that end a reply besides the file's eos (llama.cpp's
    /// end-of-generation list for the family).
    pub stop_tokens: &'static [&'static str],
    /// The chat template for files that carry none.
    pub default_chat_template: Option<&'static str>,
    /// A Hugging Face tensor name's GGUF name within a layer (`self_attn.q_proj.weight`
    /// → `attn_q.weight`), and outside them (`model.norm.weight` → `output_norm.weight`).
    pub hf_layer_tensor: fn(&str) -> Option<&'static str>,
    pub hf_top_tensor: fn(&str) -> Option<&'static str>,
    /// The family's reading of a GGUF file or a config.json on top of the common one.
    pub read_gguf: fn(&GgufFile, &mut ModelConfig) -> Result<(), ModelError>,
    pub read_hf: fn(&Json, &mut ModelConfig) -> Result<(), ModelError>,
    /// The recommended sampling, given what the model is called (LFM2.5
    /// shares LFM2's architectures but not its recommendation).
    pub sampling: fn(&[&str]) -> Recommended,
}

impl Arch {
    pub const ALL: [Arch; 5] = [Arch::Lfm2, Arch::Lfm2Moe, Arch::Llama, Arch::Qwen3, Arch::Gemma3];

    pub fn family(self) -> &'static Family {
        match self {
            Arch::Lfm2 => &lfm2::LFM2,
            Arch::Lfm2Moe => &lfm2::LFM2_MOE,
            Arch::Llama => &llama::FAMILY,
            Arch::Qwen3 => &qwen3::FAMILY,
            Arch::Gemma3 => &gemma3::FAMILY,
        }
    }

    pub fn from_gguf_name(name: &str) -> Result<Arch, ModelError> {
        Arch::ALL.into_iter().find(|a| a.family().gguf_name == name).ok_or_else(|| ModelError::UnsupportedArchitecture(name.to_string()))
    }

    pub fn from_hf_model_type(model_type: &str) -> Result<Arch, ModelError> {
        Arch::ALL
            .into_iter()
            .find(|a| a.family().hf_model_types.contains(&model_type))
            .ok_or_else(|| ModelError::UnsupportedArchitecture(model_type.to_string()))
    }

    pub fn gguf_name(self) -> &'static str {
        self.family().gguf_name
    }
}

/// Tensor names shared by the Llama-style families' Hugging Face checkpoints.
fn llama_style_layer_tensor(tail: &str) -> Option<&'static str> {
    Some(match tail {
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "self_attn.q_norm.weight" => "attn_q_norm.weight",
        "self_attn.k_norm.weight" => "attn_k_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    })
}

fn llama_style_top_tensor(name: &str) -> Option<&'static str> {
    Some(match name {
        "model.embed_tokens.weight" => "token_embd.weight",
        "model.norm.weight" => "output_norm.weight",
        "lm_head.weight" => "output.weight",
        _ => return None,
    })
}

fn nothing_more_gguf(_: &GgufFile, _: &mut ModelConfig) -> Result<(), ModelError> {
    Ok(())
}

fn nothing_more_hf(_: &Json, _: &mut ModelConfig) -> Result<(), ModelError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_found_by_its_names() {
        for arch in Arch::ALL {
            let f = arch.family();
            assert_eq!(f.arch, arch);
            assert_eq!(Arch::from_gguf_name(f.gguf_name).unwrap(), arch);
            for t in f.hf_model_types {
                assert_eq!(Arch::from_hf_model_type(t).unwrap(), arch);
            }
        }
        assert!(matches!(Arch::from_gguf_name("mamba"), Err(ModelError::UnsupportedArchitecture(n)) if n == "mamba"));
    }
}
