//! Llama and the families shaped like it (SmolLM2): pre-norm attention and
//! SwiGLU, RoPE permuted to the normal pairing in GGUF files.

use super::{llama_style_layer_tensor, llama_style_top_tensor, nothing_more_gguf, nothing_more_hf, Activation, Arch, Block, Family, Recommended, RopeStyle};

pub(super) const FAMILY: Family = Family {
    arch: Arch::Llama,
    gguf_name: "llama",
    hf_model_types: &["llama"],
    block: Block { conv_layers: false, qk_norm: false, post_norms: false, activation: Activation::Silu, embedding_scale: false },
    final_norm: "output_norm.weight",
    gguf_rope_style: RopeStyle::Normal,
    default_rope_theta: 10_000.0,
    default_norm_eps: 1e-5,
    hf_tied_by_default: false,
    hf_norm_shift: 0.0,
    stop_tokens: &[],
    default_chat_template: None,
    hf_layer_tensor: llama_style_layer_tensor,
    hf_top_tensor: llama_style_top_tensor,
    read_gguf: nothing_more_gguf,
    read_hf: nothing_more_hf,
    sampling: |_| Recommended { temperature: 0.2, top_k: 0, top_p: 0.9, min_p: 0.0, repetition_penalty: 1.0 },
};
