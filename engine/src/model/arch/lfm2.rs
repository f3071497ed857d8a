//! LFM2 and LFM2-MoE (also LFM2.5, the same architectures): gated short
//! convolutions beside grouped-query attention with QK norms; the MoE has
//! sigmoid routing with an expert bias, after a few dense layers.

use serde_json::Value as Json;

use super::{Activation, Arch, Block, Family, Recommended, RopeStyle};
use crate::formats::gguf::{GgufFile, Value};
use crate::model::config::{j_f32, j_req, j_usize, meta_f32, meta_usize};
use crate::model::{LayerKind, ModelConfig, ModelError, MoeConfig};

const BLOCK: Block = Block { conv_layers: true, qk_norm: true, post_norms: false, activation: Activation::Silu, embedding_scale: false };

const fn family(arch: Arch, gguf_name: &'static str, hf: &'static [&'static str]) -> Family {
    Family {
        arch,
        gguf_name,
        hf_model_types: hf,
        block: BLOCK,
        // A historical misnomer: LFM2's final norm.
        final_norm: "token_embd_norm.weight",
        gguf_rope_style: RopeStyle::Neox,
        default_rope_theta: 1_000_000.0,
        default_norm_eps: 1e-5,
        hf_tied_by_default: true,
        hf_norm_shift: 0.0,
        stop_tokens: &[],
        default_chat_template: None,
        hf_layer_tensor,
        hf_top_tensor,
        read_gguf,
        read_hf,
        sampling,
    }
}

pub(super) const LFM2: Family = family(Arch::Lfm2, "lfm2", &["lfm2"]);
pub(super) const LFM2_MOE: Family = family(Arch::Lfm2Moe, "lfm2moe", &["lfm2_moe"]);

fn hf_top_tensor(name: &str) -> Option<&'static str> {
    Some(match name {
        "model.embed_tokens.weight" => "token_embd.weight",
        "model.embedding_norm.weight" => "token_embd_norm.weight",
        "lm_head.weight" => "output.weight",
        _ => return None,
    })
}

fn hf_layer_tensor(tail: &str) -> Option<&'static str> {
    Some(match tail {
        "operator_norm.weight" => "attn_norm.weight",
        "ffn_norm.weight" => "ffn_norm.weight",
        "conv.in_proj.weight" => "shortconv.in_proj.weight",
        "conv.conv.weight" => "shortconv.conv.weight",
        "conv.out_proj.weight" => "shortconv.out_proj.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.out_proj.weight" => "attn_output.weight",
        "self_attn.q_layernorm.weight" => "attn_q_norm.weight",
        "self_attn.k_layernorm.weight" => "attn_k_norm.weight",
        "feed_forward.w1.weight" => "ffn_gate.weight",
        "feed_forward.w3.weight" => "ffn_up.weight",
        "feed_forward.w2.weight" => "ffn_down.weight",
        "feed_forward.gate.weight" => "ffn_gate_inp.weight",
        // LFM2.5's checkpoints add `.weight`.
        "feed_forward.expert_bias" | "feed_forward.expert_bias.weight" => "exp_probs_b.bias",
        _ => return None,
    })
}

fn read_gguf(file: &GgufFile, c: &mut ModelConfig) -> Result<(), ModelError> {
    if c.arch != Arch::Lfm2Moe {
        return Ok(());
    }
    let a = c.arch.gguf_name();
    let gating = file.get(&format!("{a}.expert_gating_func")).and_then(Value::as_u64).unwrap_or(2);
    if gating != 2 {
        return Err(ModelError::InvalidConfig(format!("expert gating function {gating} (LFM2-MoE uses sigmoid, 2)")));
    }
    let scale = meta_f32(file, &format!("{a}.expert_weights_scale"), 1.0)?;
    c.moe = Some(MoeConfig {
        n_experts: meta_usize(file, &format!("{a}.expert_count"))?,
        top_k: meta_usize(file, &format!("{a}.expert_used_count"))?,
        expert_ffn: meta_usize(file, &format!("{a}.expert_feed_forward_length"))?,
        n_dense_layers: meta_usize(file, &format!("{a}.leading_dense_block_count"))?,
        norm_topk: file.get(&format!("{a}.expert_weights_norm")).and_then(Value::as_bool).unwrap_or(true),
        routed_scale: if scale == 0.0 { 1.0 } else { scale },
    });
    Ok(())
}

fn read_hf(j: &Json, c: &mut ModelConfig) -> Result<(), ModelError> {
    if j.get("conv_bias").and_then(Json::as_bool) == Some(true) {
        return Err(ModelError::InvalidConfig("conv_bias = true is not supported".into()));
    }
    c.layers = if let Some(types) = j.get("layer_types").and_then(Json::as_array) {
        types
            .iter()
            .map(|t| match t.as_str() {
                Some("conv") => Ok(LayerKind::Conv),
                Some("full_attention") => Ok(LayerKind::Attention),
                other => Err(ModelError::InvalidConfig(format!("layer type {other:?}"))),
            })
            .collect::<Result<_, _>>()?
    } else if let Some(idxs) = j.get("full_attn_idxs").and_then(Json::as_array) {
        let idxs: Vec<u64> = idxs.iter().filter_map(Json::as_u64).collect();
        (0..c.n_layers as u64).map(|i| if idxs.contains(&i) { LayerKind::Attention } else { LayerKind::Conv }).collect()
    } else {
        vec![LayerKind::Attention; c.n_layers]
    };
    match c.arch {
        Arch::Lfm2 => {
            let ff = j_usize(j, "block_ff_dim").or_else(|| j_usize(j, "intermediate_size")).unwrap_or(0);
            let auto = j.get("block_auto_adjust_ff_dim").and_then(Json::as_bool).unwrap_or(true);
            let mult = j_f32(j, "block_ffn_dim_multiplier");
            c.ffn = lfm2_effective_ffn(ff, auto, mult, j_usize(j, "block_multiple_of").unwrap_or(256));
        }
        _ => {
            c.ffn = j_req(j, "intermediate_size")?;
            if j.get("use_expert_bias").and_then(Json::as_bool) == Some(false) {
                return Err(ModelError::InvalidConfig("LFM2-MoE without expert bias".into()));
            }
            c.moe = Some(MoeConfig {
                n_experts: j_req(j, "num_experts")?,
                top_k: j_req(j, "num_experts_per_tok")?,
                expert_ffn: j_req(j, "moe_intermediate_size")?,
                n_dense_layers: j_usize(j, "num_dense_layers").unwrap_or(2),
                norm_topk: j.get("norm_topk_prob").and_then(Json::as_bool).unwrap_or(true),
                routed_scale: j_f32(j, "routed_scaling_factor").unwrap_or(1.0),
            });
        }
    }
    Ok(())
}

/// LFM2.5 and LFM2-24B's cards recommend a low temperature, LFM2's a
/// moderate one with min-p.
fn sampling(names: &[&str]) -> Recommended {
    let low = names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        n.contains("lfm2.5") || n.contains("lfm2_5") || n.contains("lfm2-24b")
    });
    if low {
        Recommended { temperature: 0.1, top_k: 50, top_p: 0.1, min_p: 0.0, repetition_penalty: 1.05 }
    } else {
        Recommended { temperature: 0.3, top_k: 0, top_p: 1.0, min_p: 0.15, repetition_penalty: 1.05 }
    }
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
