//! A session's GPU memory: the activations of a pass (rows of the prefill
//! chunk), the per-layer state (KV caches, conv rings), the RoPE tables, the
//! sampler's inputs and outputs.

use super::CONV_SLOTS;
use crate::{
    gpu::Gpu,
    model::{config::LayerKind, ModelConfig},
    runtime::{
        kernels::uniform_bytes,
        params::{SamplerParams, Step},
    },
};

pub(super) fn storage(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).div_ceil(4) * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

pub(super) struct LayerState {
    pub(super) kv: Option<(wgpu::Buffer, wgpu::Buffer)>,
    pub(super) conv: Option<wgpu::Buffer>,
}

pub(super) struct Buffers {
    pub(super) step: wgpu::Buffer,
    pub(super) sampler: wgpu::Buffer,
    pub(super) tokens: wgpu::Buffer,
    pub(super) x: wgpu::Buffer,
    pub(super) h: wgpu::Buffer,
    pub(super) z: wgpu::Buffer,
    pub(super) act: wgpu::Buffer,
    pub(super) q: wgpu::Buffer,
    /// Decode attention's per-split partial results.
    pub(super) attn_partial: wgpu::Buffer,
    pub(super) router_logits: wgpu::Buffer,
    pub(super) sel: wgpu::Buffer,
    pub(super) sel_w: wgpu::Buffer,
    pub(super) moe_act: wgpu::Buffer,
    /// Batched MoE prefill: gate|up rows per (token, slot), expert outputs
    /// per (token, slot), and the grouping plan (moe_plan.wgsl).
    pub(super) moe_z: wgpu::Buffer,
    pub(super) moe_y: wgpu::Buffer,
    pub(super) moe_plan: wgpu::Buffer,
    pub(super) logits_last: wgpu::Buffer,
    pub(super) logits_all: Option<wgpu::Buffer>,
    pub(super) rope: wgpu::Buffer,
    /// The sliding-window layers' own RoPE table (Gemma 3's local layers).
    pub(super) rope_local: Option<wgpu::Buffer>,
    pub(super) seen: wgpu::Buffer,
    /// The tokens the next choice may be (a bit each): all of them but
    /// while a constraint runs.
    pub(super) allowed: wgpu::Buffer,
    pub(super) out_ids: wgpu::Buffer,
    pub(super) layers: Vec<LayerState>,
}

/// The cos/sin table of RoPE for `capacity` positions, computed like
/// transformers: f32 inverse frequencies and angles, cos/sin of the f32 angle.
pub(super) fn rope_table(theta: f32, head_dim: usize, capacity: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let inv: Vec<f32> = (0..half).map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32)).collect();
    let mut t = Vec::with_capacity(capacity * half * 2);
    for pos in 0..capacity {
        for &f in &inv {
            let angle = f64::from(pos as f32 * f);
            t.push(angle.cos() as f32);
            t.push(angle.sin() as f32);
        }
    }
    t
}

/// Where the slot order starts in the MoE plan buffer (after the tile count
/// and the most tiles a pass of `n` tokens can make).
pub(super) fn moe_order_offset(n: u64, k: u64, experts: u64) -> u64 {
    4 + 4 * ((n * k).div_ceil(64) + experts)
}

impl Buffers {
    /// Sized for `chunk` tokens a prefill pass and `capacity` positions of context.
    pub(super) fn new(gpu: &Gpu, c: &ModelConfig, capacity: usize, chunk: usize, kv_f16: bool, all_logits: bool, sampler: SamplerParams) -> Self {
            let (d, hd) = (c.hidden as u64, c.head_dim as u64);
            let (nq, nkv) = (c.n_heads as u64 * hd, c.n_kv_heads as u64 * hd);
            let n = chunk as u64;
            let (e, k, fe) = c.moe.as_ref().map_or((1, 1, 1), |m| (m.n_experts as u64, m.top_k as u64, m.expert_ffn as u64));
            let z_width = [3 * d, nq + 2 * nkv, 2 * c.ffn as u64].into_iter().max().unwrap_or(d);
            let act_width = [c.ffn as u64, nq, d].into_iter().max().unwrap_or(d);
            let kv_bytes = nkv * capacity as u64 * if kv_f16 { 2 } else { 4 };
            let layers = c
                .layers
                .iter()
                .map(|kind| match kind {
                    LayerKind::Attention => LayerState { kv: Some((storage(gpu, "k-cache", kv_bytes), storage(gpu, "v-cache", kv_bytes))), conv: None },
                    LayerKind::Conv => LayerState { kv: None, conv: Some(storage(gpu, "conv-state", 4 * CONV_SLOTS * d)) },
                })
                .collect();
            let rope_buffer = |theta: f32| {
                let table = rope_table(theta, c.head_dim, capacity);
                let buf = storage(gpu, "rope", table.len() as u64 * 4);
                gpu.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&table));
                buf
            };
            let rope_buf = rope_buffer(c.rope_theta);
            let rope_local = c.sliding.as_ref().map(|s| rope_buffer(s.rope_theta));
            Buffers {
                step: uniform_bytes(gpu, "step", bytemuck::bytes_of(&Step::default())),
                sampler: uniform_bytes(gpu, "sampler", bytemuck::bytes_of(&sampler)),
                tokens: storage(gpu, "tokens", 4 * n),
                x: storage(gpu, "x", 4 * n * d),
                h: storage(gpu, "h", 4 * n * d),
                z: storage(gpu, "z", 4 * n * z_width),
                act: storage(gpu, "act", 4 * n * act_width),
                q: storage(gpu, "q", 4 * n * nq),
                attn_partial: storage(gpu, "attention-partial", 4 * c.n_heads as u64 * (capacity as u64).div_ceil(64) * (hd + 2)),
                router_logits: storage(gpu, "router-logits", 4 * n * e),
                sel: storage(gpu, "experts", 4 * n * k),
                sel_w: storage(gpu, "expert-weights", 4 * n * k),
                moe_act: storage(gpu, "moe-act", 4 * n * k * fe),
                moe_z: storage(gpu, "moe-z", if c.moe.is_some() { 4 * n * k * 2 * fe } else { 16 }),
                moe_y: storage(gpu, "moe-y", if c.moe.is_some() { 4 * n * k * d } else { 16 }),
                moe_plan: storage(gpu, "moe-plan", 4 * (moe_order_offset(n, k, e) + n * k)),
                logits_last: storage(gpu, "logits", 4 * c.vocab as u64),
                logits_all: all_logits.then(|| storage(gpu, "all-logits", 4 * n * c.vocab as u64)),
                rope: rope_buf,
                rope_local,
                seen: storage(gpu, "seen", 4 * (c.vocab as u64).div_ceil(32)),
                allowed: storage(gpu, "allowed", 4 * (c.vocab as u64).div_ceil(32)),
                out_ids: storage(gpu, "out-ids", 4 * (capacity as u64 + 2)),
                layers,
            }
    }
}
