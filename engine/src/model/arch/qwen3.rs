//! Qwen3 (dense): Llama's block with RMS norms on each head's queries and
//! keys, NeoX RoPE, an untied head.

use super::{llama_style_layer_tensor, llama_style_top_tensor, nothing_more_gguf, nothing_more_hf, Activation, Arch, Block, Family, Recommended, RopeStyle};

pub(super) const FAMILY: Family = Family {
    arch: Arch::Qwen3,
    gguf_name: "qwen3",
    hf_model_types: &["qwen3"],
    block: Block { conv_layers: false, qk_norm: true, post_norms: false, activation: Activation::Silu, embedding_scale: false },
    final_norm: "output_norm.weight",
    gguf_rope_style: RopeStyle::Neox,
    default_rope_theta: 1_000_000.0,
    default_norm_eps: 1e-6,
    hf_tied_by_default: false,
    hf_norm_shift: 0.0,
    stop_tokens: &[],
    default_chat_template: None,
    hf_layer_tensor: llama_style_layer_tensor,
    hf_top_tensor: llama_style_top_tensor,
    read_gguf: nothing_more_gguf,
    read_hf: nothing_more_hf,
    // The model card's non-thinking settings.
    sampling: |_| Recommended { temperature: 0.7, top_k: 20, top_p: 0.8, min_p: 0.0, repetition_penalty: 1.0 },
};
