//! A conversation's state on the GPU (KV caches, conv states, activations) and
//! the recorded passes that run it: prefill (batched kernels over a chunk of
//! tokens), decode (one token), and the head (final norm, logits, sampling).

use std::rc::Rc;

mod snapshot;
pub use snapshot::{RestoreError, Snapshot};

use super::{
    kernels::{uniform_bytes, Count, Dispatch},
    model::{Ffn, GateUp, Mixer, Model, Qkv},
    ops::{Epilogue, HeadShape, Ops, Pass, RouteInput, Routing, Tuning},
    params::{SamplerParams, Step},
    weights::GpuMatrix,
};
use crate::{
    gpu::{read_buffer, Gpu},
    model::{config::LayerKind, ModelError, RopeStyle},
};

#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Tokens the KV cache holds (capped at the model's context length).
    pub context: usize,
    /// Tokens per prefill pass.
    pub prefill_chunk: usize,
    /// Keep the KV cache in f16 where the device has `shader-f16`.
    pub kv_f16: bool,
    /// Also compute the logits of every prompt position (tests).
    pub all_logits: bool,
    /// Kernel shapes (benchmarks sweep them).
    pub tuning: Tuning,
    /// Decode steps submitted ahead of the token being read, 1 to
    /// [`MAX_DECODE_AHEAD`]. Each step takes its token from the one before
    /// on the GPU, so more steps in flight hide a longer readback round trip
    /// (a browser's GPU process) at the cost of up to this many minus one
    /// steps computed past a stop token and thrown away.
    pub decode_ahead: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self { context: 4096, prefill_chunk: 256, kv_f16: true, all_logits: false, tuning: Tuning::default(), decode_ahead: 1 }
    }
}

/// How the next token is chosen; temperature 0 is greedy.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    /// 0: off.
    pub top_k: u32,
    /// 1: off.
    pub top_p: f32,
    /// 0: off.
    pub min_p: f32,
    /// 1: off.
    pub repeat_penalty: f32,
    pub seed: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0, seed: 0 }
    }
}

impl Sampling {
    fn params(&self, vocab: u32) -> SamplerParams {
        let greedy = self.temperature <= 0.0;
        SamplerParams {
            vocab,
            top_k: self.top_k,
            seed: self.seed,
            greedy: greedy as u32,
            inv_temperature: if greedy { 1.0 } else { 1.0 / self.temperature },
            top_p: self.top_p.clamp(0.0, 1.0),
            min_p: self.min_p.clamp(0.0, 1.0),
            penalty: self.repeat_penalty.max(f32::MIN_POSITIVE),
        }
    }
}

fn storage(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).div_ceil(4) * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

struct LayerState {
    kv: Option<(wgpu::Buffer, wgpu::Buffer)>,
    conv: Option<wgpu::Buffer>,
}

struct Buffers {
    step: wgpu::Buffer,
    sampler: wgpu::Buffer,
    tokens: wgpu::Buffer,
    x: wgpu::Buffer,
    h: wgpu::Buffer,
    z: wgpu::Buffer,
    act: wgpu::Buffer,
    q: wgpu::Buffer,
    /// Decode attention's per-split partial results.
    attn_partial: wgpu::Buffer,
    router_logits: wgpu::Buffer,
    sel: wgpu::Buffer,
    sel_w: wgpu::Buffer,
    moe_act: wgpu::Buffer,
    /// Batched MoE prefill: gate|up rows per (token, slot), expert outputs
    /// per (token, slot), and the grouping plan (moe_plan.wgsl).
    moe_z: wgpu::Buffer,
    moe_y: wgpu::Buffer,
    moe_plan: wgpu::Buffer,
    logits_last: wgpu::Buffer,
    logits_all: Option<wgpu::Buffer>,
    rope: wgpu::Buffer,
    /// The sliding-window layers' own RoPE table (Gemma 3's local layers).
    rope_local: Option<wgpu::Buffer>,
    seen: wgpu::Buffer,
    /// The tokens the next choice may be (a bit each): all of them but
    /// while a constraint runs.
    allowed: wgpu::Buffer,
    out_ids: wgpu::Buffer,
    layers: Vec<LayerState>,
}

/// The cos/sin table of RoPE for `capacity` positions, computed like
/// transformers: f32 inverse frequencies and angles, cos/sin of the f32 angle.
fn rope_table(theta: f32, head_dim: usize, capacity: usize) -> Vec<f32> {
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
fn moe_order_offset(n: u64, k: u64, experts: u64) -> u64 {
    4 + 4 * ((n * k).div_ceil(64) + experts)
}

/// Records the passes of one session from the kernel ops.
struct Builder<'a> {
    model: &'a Model,
    bufs: &'a Buffers,
    /// Tokens per prefill pass (the buffers' rows).
    chunk: usize,
    kv_f16: bool,
    tuning: Tuning,
    out: Vec<Dispatch>,
}

impl<'a> Builder<'a> {
    fn ops(&self) -> Ops<'a> {
        Ops { gpu: &self.model.gpu, kernels: &self.model.kernels, step: &self.bufs.step, tuning: self.tuning }
    }

    fn matrix(&self, name: &str) -> &'a GpuMatrix {
        self.model.weights.matrix(name)
    }

    fn vector(&self, name: &str) -> &'a wgpu::Buffer {
        &self.model.weights.vector(name).buffer
    }

    fn rmsnorm(&mut self, weight: &str, last_only: bool) {
        let c = self.model.config();
        let d = self.ops().rmsnorm(&self.bufs.x, self.vector(weight), &self.bufs.h, c.hidden as u32, c.norm_eps, last_only);
        self.out.push(d);
    }

    #[allow(clippy::too_many_arguments)]
    fn linear(&mut self, pass: Pass, name: &str, x: &wgpu::Buffer, x_stride: u64, y: &wgpu::Buffer, y_stride: u64, out_first: u64, ep: Epilogue, tokens: Count) {
        let d = self.ops().linear(pass, self.matrix(name), x, x_stride, y, y_stride, out_first, ep, tokens);
        self.out.extend(d);
    }

    fn head_shape(&self, layer: usize) -> HeadShape {
        let c = self.model.config();
        let (kc, _) = self.bufs.layers[layer].kv.as_ref().expect("kv cache");
        let kv_width = (c.n_kv_heads * c.head_dim) as u64 * if self.kv_f16 { 2 } else { 4 };
        HeadShape {
            n_heads: c.n_heads as u32,
            n_kv_heads: c.n_kv_heads as u32,
            head_dim: c.head_dim as u32,
            capacity: (kc.size() / kv_width) as u32,
            scale: c.attention_scale(),
            window: c.window(layer).map_or(0, |w| w.min(u32::MAX as usize) as u32),
        }
    }

    /// The RoPE table of `layer` (a sliding-window layer may have its own base).
    fn rope_of(&self, layer: usize) -> &'a wgpu::Buffer {
        match (&self.bufs.rope_local, self.model.config().window(layer)) {
            (Some(local), Some(_)) => local,
            _ => &self.bufs.rope,
        }
    }

    /// A sublayer's output, in h, into the residual stream x: through the
    /// family's post-norm when it has one (Gemma), else added as it is
    /// (the sublayer's last mat-mul then adds into x itself: see `sink`).
    fn post_norm(&mut self, gain: Option<&String>) {
        if let Some(gain) = gain {
            let c = self.model.config();
            let d = self.ops().rmsnorm_add(&self.bufs.h, self.vector(gain), &self.bufs.x, c.hidden as u32, c.norm_eps);
            self.out.push(d);
        }
    }

    /// Where a sublayer's last mat-mul writes: added into x, or stored into
    /// h for a post-norm.
    fn sink(&self, post_norm: Option<&String>) -> (&'a wgpu::Buffer, Epilogue) {
        match post_norm {
            Some(_) => (&self.bufs.h, Epilogue::Store),
            None => (&self.bufs.x, Epilogue::Add),
        }
    }

    /// `name` applied to the layer's input: normed by `gain` first. Decode
    /// fuses the norm into the mat-vec (reading x); prefill normalizes into h
    /// once (see `prenorm`) and multiplies h.
    #[allow(clippy::too_many_arguments)]
    fn normed_linear(&mut self, pass: Pass, name: &str, gain: &str, y: &wgpu::Buffer, y_stride: u64, out_first: u64) {
        let (b, c) = (self.bufs, self.model.config());
        let d = c.hidden as u64;
        match pass {
            Pass::Decode => {
                let ds = self.ops().matvec_norm(self.matrix(name), &b.x, self.vector(gain), c.norm_eps, y, y_stride, out_first, Count::tokens());
                self.out.extend(ds);
            }
            Pass::Prefill => self.linear(pass, name, &b.h, d, y, y_stride, out_first, Epilogue::Store, Count::tokens()),
        }
    }

    /// Prefill normalizes the residual stream into h for the mat-mats that follow.
    fn prenorm(&mut self, pass: Pass, gain: &str) {
        if pass == Pass::Prefill {
            self.rmsnorm(gain, false);
        }
    }

    fn layer(&mut self, pass: Pass, l: usize) {
        let model = self.model;
        let c = model.config();
        let b = self.bufs;
        let layer = &model.graph.layers[l];
        let (d, hd) = (c.hidden as u64, c.head_dim as u64);
        let tok = Count::tokens();
        let eps = c.norm_eps;
        let act = c.family().block.activation;
        let (post_mixer, post_ffn) = match &layer.post_norms {
            Some((a, f)) => (Some(a), Some(f)),
            None => (None, None),
        };
        self.prenorm(pass, &layer.attn_norm);
        match &layer.mixer {
            Mixer::Conv { in_proj, taps, out_proj } => {
                self.normed_linear(pass, in_proj, &layer.attn_norm, &b.z, 3 * d, 0);
                let state = b.layers[l].conv.as_ref().expect("conv state");
                let conv = self.ops().shortconv(&b.z, self.vector(taps), state, &b.act, d as u32);
                self.out.push(conv);
                let (y, ep) = self.sink(post_mixer);
                self.linear(pass, out_proj, &b.act, d, y, d, 0, ep, tok);
                self.post_norm(post_mixer);
            }
            Mixer::Attention { qkv, q_norm, k_norm, out } => {
                let (nq, nkv) = (c.n_heads as u64 * hd, c.n_kv_heads as u64 * hd);
                let stride = nq + 2 * nkv;
                match qkv {
                    Qkv::Fused(name) => self.normed_linear(pass, name, &layer.attn_norm, &b.z, stride, 0),
                    Qkv::Separate([q, k, v]) => {
                        self.normed_linear(pass, q, &layer.attn_norm, &b.z, stride, 0);
                        self.normed_linear(pass, k, &layer.attn_norm, &b.z, stride, nq);
                        self.normed_linear(pass, v, &layer.attn_norm, &b.z, stride, nq + nkv);
                    }
                }
                let shape = self.head_shape(l);
                let (kc, vc) = b.layers[l].kv.as_ref().expect("kv cache");
                let norms = match (q_norm, k_norm) {
                    (Some(qn), Some(kn)) => Some((self.vector(qn), self.vector(kn), eps)),
                    _ => None,
                };
                let neox = c.rope_style == RopeStyle::Neox;
                let rope = self.ops().rope(shape, &b.z, norms, neox, self.rope_of(l), &b.q, (kc, vc), self.kv_f16);
                self.out.push(rope);
                match pass {
                    Pass::Prefill => self.out.push(self.ops().attention(shape, &b.q, (kc, vc), &b.act, self.kv_f16)),
                    Pass::Decode => self.out.extend(self.ops().attention_decode(shape, &b.q, (kc, vc), &b.attn_partial, &b.act, self.kv_f16)),
                }
                let (y, ep) = self.sink(post_mixer);
                self.linear(pass, out, &b.act, nq, y, d, 0, ep, tok);
                self.post_norm(post_mixer);
            }
        }
        self.prenorm(pass, &layer.ffn_norm);
        let gain = self.vector(&layer.ffn_norm);
        match &layer.ffn {
            Ffn::Dense { gate_up, down } => {
                let f = c.ffn as u64;
                match (gate_up, pass) {
                    (GateUp::Fused { name, tile }, Pass::Decode) => {
                        let ds = self.ops().swiglu_matvec(self.matrix(name), *tile, &b.x, Some((gain, eps)), &b.act, f, act);
                        self.out.extend(ds);
                    }
                    (GateUp::Fused { name, tile }, Pass::Prefill) => {
                        self.linear(pass, name, &b.h, d, &b.z, 2 * f, 0, Epilogue::Store, tok);
                        let sw = self.ops().swiglu(&b.z, &b.act, f, *tile, act);
                        self.out.push(sw);
                    }
                    (GateUp::Separate { gate, up }, _) => {
                        self.normed_linear(pass, gate, &layer.ffn_norm, &b.z, 2 * f, 0);
                        self.normed_linear(pass, up, &layer.ffn_norm, &b.z, 2 * f, f);
                        let sw = self.ops().swiglu(&b.z, &b.act, f, f, act);
                        self.out.push(sw);
                    }
                }
                let (y, ep) = self.sink(post_ffn);
                self.linear(pass, down, &b.act, f, y, d, 0, ep, tok);
                self.post_norm(post_ffn);
            }
            Ffn::Moe { router, bias, gate_up, tile, down } => {
                let m = c.moe.as_ref().expect("MoE config");
                let routing = Routing { n_experts: m.n_experts as u32, top_k: m.top_k as u32, norm_topk: m.norm_topk, scale: m.routed_scale };
                // Routing is per token in both passes. Decode runs the chosen
                // experts as mat-vecs; prefill groups the pass's (token, slot)
                // pairs by expert and runs each expert once as a mat-mat over its tokens.
                let (input, norm) = match pass {
                    Pass::Decode => (&b.x, Some((gain, eps))),
                    Pass::Prefill => (&b.h, None),
                };
                let ops = self.ops();
                match norm {
                    Some((g, e)) => self.out.extend(ops.matvec_norm(self.matrix(router), input, g, e, &b.router_logits, u64::from(routing.n_experts), 0, tok)),
                    None => self.out.extend(ops.linear(Pass::Decode, self.matrix(router), input, d, &b.router_logits, u64::from(routing.n_experts), 0, Epilogue::Store, tok)),
                }
                // Decode can choose the experts inside the gate/up mat-vec.
                let route = (pass == Pass::Decode && self.tuning.route_in_gate_up && routing.n_experts <= 256 && routing.top_k <= 8)
                    .then_some(RouteInput { routing, logits: &b.router_logits, bias: self.vector(bias) });
                if route.is_none() {
                    self.out.push(ops.moe_route(routing, &b.router_logits, self.vector(bias), &b.sel, &b.sel_w));
                }
                if pass == Pass::Prefill {
                    let (k, e, fe) = (routing.top_k, routing.n_experts, m.expert_ffn as u64);
                    let order = moe_order_offset(self.chunk as u64, u64::from(k), u64::from(e)) as u32;
                    let tiles = Count::TokensPlus { per: k, div: 64, plus: e };
                    self.out.push(ops.moe_plan(e, k, &b.sel, &b.moe_plan, order));
                    self.out.extend(ops.moe_grouped(self.matrix(gate_up), 2 * fe, &b.h, d, k, &b.moe_z, &b.moe_plan, order, tiles));
                    self.out.push(ops.swiglu_rows(&b.moe_z, &b.moe_act, fe, *tile, Count::Tokens { per: k, div: 1 }));
                    self.out.extend(ops.moe_grouped(self.matrix(down), d, &b.moe_act, fe, 1, &b.moe_y, &b.moe_plan, order, tiles));
                    self.out.push(ops.moe_combine(&b.moe_y, &b.sel_w, &b.x, d, k));
                    return;
                }
                self.out.extend(ops.moe_gate_up(self.matrix(gate_up), *tile, m.expert_ffn as u64, routing.top_k, input, norm, &b.moe_act, &b.sel, &b.sel_w, route));
                self.out.extend(ops.moe_down(self.matrix(down), d, routing.top_k, &b.moe_act, &b.x, &b.sel, &b.sel_w));
            }
        }
    }

    fn body(mut self, pass: Pass) -> Vec<Dispatch> {
        let b = self.bufs;
        let ops = self.ops();
        let c = self.model.config();
        let scale = if c.family().block.embedding_scale { (c.hidden as f32).sqrt() } else { 1.0 };
        self.out.extend(ops.embed(self.matrix(&self.model.graph.embedding), &b.tokens, &b.x, scale));
        self.out.push(ops.mark_seen(&b.tokens, &b.seen));
        for l in 0..self.model.config().n_layers {
            self.layer(pass, l);
        }
        self.out
    }

    /// Final norm of the last position, its logits, and the sampler.
    fn head(mut self) -> Vec<Dispatch> {
        let b = self.bufs;
        let c = self.model.config();
        let (d, v) = (c.hidden as u64, c.vocab as u64);
        self.rmsnorm(&self.model.graph.final_norm, true);
        self.linear(Pass::Decode, &self.model.graph.lm_head, &b.h, d, &b.logits_last, v, 0, Epilogue::Store, Count::Fixed(1));
        // Last: a constrained step submits the head without it (Session::generate_with).
        let sample = self.ops().sample(&b.sampler, &b.logits_last, &b.seen, &b.tokens, &b.out_ids, &b.allowed);
        self.out.push(sample);
        self.out
    }

    /// The logits of every position of the pass (tests).
    fn all_logits(mut self) -> Vec<Dispatch> {
        let b = self.bufs;
        let c = self.model.config();
        let (d, v) = (c.hidden as u64, c.vocab as u64);
        let all = b.logits_all.as_ref().expect("all-logits buffer");
        self.rmsnorm(&self.model.graph.final_norm, false);
        self.linear(Pass::Prefill, &self.model.graph.lm_head, &b.h, d, all, v, 0, Epilogue::Store, Count::tokens());
        self.out
    }
}

/// What a reply may say, as the tokens each choice may be (a JSON schema or
/// a grammar: [`crate::constrain`]). The session asks for a choice's mask once
/// the token before it is known, while the GPU runs that step's forward pass.
pub trait TokenConstraint {
    /// The tokens the next choice may be: bit `t % 32` of word `t / 32`, for
    /// at least the model's vocabulary.
    fn allowed(&mut self) -> Result<&[u32], ModelError>;
    /// Records the token chosen, before the next [`TokenConstraint::allowed`].
    fn consume(&mut self, token: u32) -> Result<(), ModelError>;
}

/// The sampler's mask with every token allowed (no constraint).
fn allow_every_token(gpu: &Gpu, allowed: &wgpu::Buffer, vocab: usize) {
    gpu.queue.write_buffer(allowed, 0, bytemuck::cast_slice(&vec![u32::MAX; vocab.div_ceil(32)]));
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An end-of-sequence or stop token.
    Stop,
    #[default]
    MaxTokens,
    /// The callback asked to stop.
    Cancelled,
    ContextFull,
}

/// What a generation produced.
#[derive(Debug, Clone, Default)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// Logits at the last prompt position, before sampling (when asked).
    pub last_logits: Option<Vec<f32>>,
    pub prefill_tokens: usize,
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    /// CPU time spent recording and submitting the decode steps.
    pub record_seconds: f64,
    /// Time spent waiting for decode steps' tokens (the GPU ahead of the CPU).
    pub wait_seconds: f64,
}

impl Generation {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        if self.prefill_seconds > 0.0 { self.prefill_tokens as f64 / self.prefill_seconds } else { 0.0 }
    }

    /// Decode speed over the tokens after the first (which prefill produced).
    pub fn decode_tokens_per_s(&self) -> f64 {
        let n = self.tokens.len().saturating_sub(1);
        if self.decode_seconds > 0.0 && n > 0 { n as f64 / self.decode_seconds } else { 0.0 }
    }
}

/// The most decode steps in flight ahead of the token being read. Natively
/// on the H200 (2026-12-02) two and three decoded no faster than one (the CPU
/// records a step in 0.2–0.7 ms, well within the GPU's step).
pub const MAX_DECODE_AHEAD: usize = 3;
/// Token readback slots: the one being read and those of the steps ahead.
const RING: usize = MAX_DECODE_AHEAD + 1;
/// Positions each conv layer's state keeps (shortconv.wgsl's SLOTS): the two
/// inputs before the next token, and the positions of the steps run past a
/// stop token, which then do not disturb them.
const CONV_SLOTS: u64 = MAX_DECODE_AHEAD as u64 + 1;

/// One conversation with a model: the tokens it has seen and their state on the GPU.
pub struct Session {
    model: Rc<Model>,
    options: SessionOptions,
    capacity: usize,
    chunk: usize,
    bufs: Buffers,
    prefill: Vec<Dispatch>,
    decode: Vec<Dispatch>,
    head: Vec<Dispatch>,
    all_logits: Vec<Dispatch>,
    readback: Vec<wgpu::Buffer>,
    history: Vec<u32>,
    sampling: Option<Sampling>,
    /// The allowed-token buffer holds a constraint's mask, not all ones.
    constrained_mask: bool,
    /// Whether the KV caches hold f16 (2 bytes per value) or f32.
    kv_f16: bool,
    /// Which session this is (snapshots are restored only into their own).
    id: u64,
}

impl Session {
    pub fn new(model: Rc<Model>, options: SessionOptions) -> Result<Self, ModelError> {
        let c = model.config().clone();
        let gpu = model.gpu.clone();
        let capacity = options.context.min(c.context_length).max(1);
        let mut chunk = options.prefill_chunk.clamp(1, capacity);
        if options.all_logits {
            // Keep the all-logits buffer within a binding.
            chunk = chunk.min((super::loader::binding_limit(&gpu) / (4 * c.vocab as u64)).max(1) as usize);
        }
        if let Some(m) = &c.moe {
            // The batched MoE prefill keeps gate|up rows per (token, slot) in one binding.
            let per_token = 4 * (m.top_k * 2 * m.expert_ffn) as u64;
            chunk = chunk.min((super::loader::binding_limit(&gpu) / per_token.max(1)).max(1) as usize);
        }
        let kv_f16 = options.kv_f16 && gpu.f16;
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
                LayerKind::Attention => LayerState { kv: Some((storage(&gpu, "k-cache", kv_bytes), storage(&gpu, "v-cache", kv_bytes))), conv: None },
                LayerKind::Conv => LayerState { kv: None, conv: Some(storage(&gpu, "conv-state", 4 * CONV_SLOTS * d)) },
            })
            .collect();
        let rope_buffer = |theta: f32| {
            let table = rope_table(theta, c.head_dim, capacity);
            let buf = storage(&gpu, "rope", table.len() as u64 * 4);
            gpu.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&table));
            buf
        };
        let rope_buf = rope_buffer(c.rope_theta);
        let rope_local = c.sliding.as_ref().map(|s| rope_buffer(s.rope_theta));
        let bufs = Buffers {
            step: uniform_bytes(&gpu, "step", bytemuck::bytes_of(&Step::default())),
            sampler: uniform_bytes(&gpu, "sampler", bytemuck::bytes_of(&Sampling::default().params(c.vocab as u32))),
            tokens: storage(&gpu, "tokens", 4 * n),
            x: storage(&gpu, "x", 4 * n * d),
            h: storage(&gpu, "h", 4 * n * d),
            z: storage(&gpu, "z", 4 * n * z_width),
            act: storage(&gpu, "act", 4 * n * act_width),
            q: storage(&gpu, "q", 4 * n * nq),
            attn_partial: storage(&gpu, "attention-partial", 4 * c.n_heads as u64 * (capacity as u64).div_ceil(64) * (hd + 2)),
            router_logits: storage(&gpu, "router-logits", 4 * n * e),
            sel: storage(&gpu, "experts", 4 * n * k),
            sel_w: storage(&gpu, "expert-weights", 4 * n * k),
            moe_act: storage(&gpu, "moe-act", 4 * n * k * fe),
            moe_z: storage(&gpu, "moe-z", if c.moe.is_some() { 4 * n * k * 2 * fe } else { 16 }),
            moe_y: storage(&gpu, "moe-y", if c.moe.is_some() { 4 * n * k * d } else { 16 }),
            moe_plan: storage(&gpu, "moe-plan", 4 * (moe_order_offset(n, k, e) + n * k)),
            logits_last: storage(&gpu, "logits", 4 * c.vocab as u64),
            logits_all: options.all_logits.then(|| storage(&gpu, "all-logits", 4 * n * c.vocab as u64)),
            rope: rope_buf,
            rope_local,
            seen: storage(&gpu, "seen", 4 * (c.vocab as u64).div_ceil(32)),
            allowed: storage(&gpu, "allowed", 4 * (c.vocab as u64).div_ceil(32)),
            out_ids: storage(&gpu, "out-ids", 4 * (capacity as u64 + 2)),
            layers,
        };
        allow_every_token(&gpu, &bufs.allowed, c.vocab);
        let builder = || Builder { model: &model, bufs: &bufs, chunk, kv_f16, tuning: options.tuning, out: Vec::new() };
        let prefill = builder().body(Pass::Prefill);
        let decode = builder().body(Pass::Decode);
        let head = builder().head();
        let all_logits = if options.all_logits { builder().all_logits() } else { Vec::new() };
        let readback = (0..RING)
            .map(|_| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("token-readback"),
                    size: 8,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        Ok(Self { model, options, capacity, chunk, bufs, prefill, decode, head, all_logits, readback, history: Vec::new(), sampling: None, constrained_mask: false, kv_f16, id: snapshot::next_session_id() })
    }

    pub fn model(&self) -> &Rc<Model> {
        &self.model
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Tokens the context holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tokens the repetition penalty counts as seen (read from the GPU),
    /// ascending: the history's, once each.
    pub async fn seen_tokens(&self) -> Result<Vec<u32>, ModelError> {
        let bytes = read_buffer(&self.model.gpu, &self.bufs.seen, self.bufs.seen.size()).await?;
        let words: &[u32] = bytemuck::cast_slice(&bytes);
        Ok((0..self.model.config().vocab as u32).filter(|&t| words[t as usize / 32] & (1 << (t % 32)) != 0).collect())
    }

    /// The tokens whose state the GPU holds, in order.
    pub fn history(&self) -> &[u32] {
        &self.history
    }

    /// Forgets the conversation: the next prompt starts at position 0.
    pub fn reset(&mut self) {
        self.history.clear();
        let gpu = &self.model.gpu;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.bufs.seen, 0, None);
        for l in &self.bufs.layers {
            if let Some(conv) = &l.conv {
                enc.clear_buffer(conv, 0, None);
            }
        }
        gpu.queue.submit([enc.finish()]);
    }

    /// Runs every pass a chat uses once (a two-token prompt, one decode step)
    /// and forgets it. A browser finishes compiling a pipeline at its first
    /// use, so without this the user's first prompt pays for all of them.
    pub async fn warm_up(&mut self) -> Result<(), ModelError> {
        self.reset();
        if self.capacity >= 3 {
            self.generate(&[0, 0], 1, &Sampling::default(), &[], false, &mut |_| true).await?;
            self.reset();
        }
        Ok(())
    }

    fn set_sampling(&mut self, s: &Sampling) {
        if self.sampling.as_ref() != Some(s) {
            let params = s.params(self.model.config().vocab as u32);
            self.model.gpu.queue.write_buffer(&self.bufs.sampler, 0, bytemuck::bytes_of(&params));
            self.sampling = Some(s.clone());
        }
    }

    /// Sets the repetition penalty's seen-token bitset to the history's tokens.
    fn write_seen(&self) {
        let mut bits = vec![0u32; (self.model.config().vocab as usize).div_ceil(32)];
        for &t in &self.history {
            bits[t as usize / 32] |= 1 << (t % 32);
        }
        self.model.gpu.queue.write_buffer(&self.bufs.seen, 0, bytemuck::cast_slice(&bits));
    }

    fn write_step(&self, n_tokens: usize, pos0: usize, step: usize) {
        let params = Step { n_tokens: n_tokens as u32, pos0: pos0 as u32, step: step as u32, _pad: 0 };
        self.model.gpu.queue.write_buffer(&self.bufs.step, 0, bytemuck::bytes_of(&params));
    }

    /// Records `passes` into one compute pass, copies out_ids[step] into a
    /// readback slot, and submits.
    fn submit(&self, passes: &[&[Dispatch]], n_tokens: usize, pos0: usize, readback: Option<(usize, usize)>) -> wgpu::SubmissionIndex {
        let commands = self.record(passes, n_tokens, pos0, readback);
        self.model.gpu.queue.submit([commands])
    }

    fn record(&self, passes: &[&[Dispatch]], n_tokens: usize, pos0: usize, readback: Option<(usize, usize)>) -> wgpu::CommandBuffer {
        let gpu = &self.model.gpu;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for list in passes {
                for d in list.iter() {
                    d.record(&mut pass, n_tokens as u32, pos0 as u32);
                }
            }
        }
        if let Some((step, slot)) = readback {
            enc.copy_buffer_to_buffer(&self.bufs.out_ids, 4 * step as u64, &self.readback[slot], 0, 4);
        }
        enc.finish()
    }

    /// The token in readback `slot`, once `submission` (which filled it) is done.
    async fn read_token(&self, slot: usize, submission: Option<wgpu::SubmissionIndex>) -> Result<u32, ModelError> {
        let bytes = crate::gpu::map_and_read(&self.model.gpu, &self.readback[slot], 4, submission).await?;
        Ok(u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")))
    }

    /// Runs `tokens` through the model after the history, in chunks. With
    /// `sample_step`, the last chunk also samples the next token into
    /// out_ids[step]. Returns the logits of every position when the session
    /// was made with `all_logits`.
    async fn prefill(&mut self, tokens: &[u32], sample_step: Option<usize>) -> Result<Option<Vec<f32>>, ModelError> {
        let gpu = self.model.gpu.clone();
        let v = self.model.config().vocab;
        let mut all = self.options.all_logits.then(Vec::new);
        let chunks: Vec<&[u32]> = tokens.chunks(self.chunk).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let sample = last && sample_step.is_some();
            // A short chunk (a regenerated reply's prompt is its last token)
            // runs token by token through the decode pass where whole prefill
            // tiles cost more (Tuning::prefill_by_token).
            if all.is_none() && chunk.len() <= self.options.tuning.prefill_by_token.max(1) as usize {
                for (j, token) in chunk.iter().enumerate() {
                    gpu.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::bytes_of(token));
                    self.write_step(1, self.history.len(), sample_step.unwrap_or(0));
                    let passes: &[&[Dispatch]] = if sample && j + 1 == chunk.len() { &[&self.decode, &self.head] } else { &[&self.decode] };
                    self.submit(passes, 1, self.history.len(), None);
                    self.history.push(*token);
                }
                continue;
            }
            gpu.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::cast_slice(chunk));
            self.write_step(chunk.len(), self.history.len(), sample_step.unwrap_or(0));
            let mut passes: Vec<&[Dispatch]> = vec![&self.prefill];
            if all.is_some() {
                passes.push(&self.all_logits);
            }
            if sample {
                passes.push(&self.head);
            }
            self.submit(&passes, chunk.len(), self.history.len(), None);
            self.history.extend_from_slice(chunk);
            if let (Some(all), Some(buf)) = (all.as_mut(), self.bufs.logits_all.as_ref()) {
                let bytes = read_buffer(&gpu, buf, (chunk.len() * v * 4) as u64).await?;
                all.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&bytes));
            }
        }
        Ok(all)
    }

    /// The logits of every position of `tokens`, appended to the history
    /// (the session must have `all_logits`).
    pub async fn forward_all_logits(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, ModelError> {
        if !self.options.all_logits {
            return Err(ModelError::Invalid("this session was not made with all_logits".into()));
        }
        self.check_room(tokens.len())?;
        let flat = self.prefill(tokens, None).await?.unwrap_or_default();
        Ok(flat.chunks(self.model.config().vocab).map(<[f32]>::to_vec).collect())
    }

    /// Runs `tokens` through the model after the history without sampling
    /// (a prefix to snapshot before the rest of a prompt).
    pub async fn extend(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        self.check_tokens(tokens)?;
        self.prefill(tokens, None).await?;
        Ok(())
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<(), ModelError> {
        let vocab = self.model.config().vocab;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::Invalid(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        self.check_room(tokens.len())
    }

    fn check_room(&self, new: usize) -> Result<(), ModelError> {
        if self.history.len() + new > self.capacity {
            return Err(ModelError::ContextOverflow { tokens: self.history.len() + new, context: self.capacity });
        }
        Ok(())
    }

    /// Appends `prompt` to the conversation and generates up to `max_tokens`
    /// tokens, calling `on_token` with each (return false to stop). Generation
    /// stops at any of `stop_ids`. The last generated token is run through the
    /// model too, so the next call continues the conversation from here.
    pub async fn generate(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        sampling: &Sampling,
        stop_ids: &[u32],
        dump_logits: bool,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Generation, ModelError> {
        self.generate_with(prompt, max_tokens, sampling, stop_ids, dump_logits, None, on_token).await
    }

    /// Writes the tokens the next choice may be (all of them without a constraint).
    fn write_allowed(&mut self, constraint: Option<&mut (dyn TokenConstraint + '_)>) -> Result<(), ModelError> {
        let words = self.model.config().vocab.div_ceil(32);
        match constraint {
            Some(c) => {
                let mask = c.allowed()?;
                if mask.len() < words {
                    return Err(ModelError::Constraint(format!("the mask has {} words for a vocabulary of {words}", mask.len())));
                }
                self.model.gpu.queue.write_buffer(&self.bufs.allowed, 0, bytemuck::cast_slice(&mask[..words]));
                self.constrained_mask = true;
            }
            None if self.constrained_mask => {
                allow_every_token(&self.model.gpu, &self.bufs.allowed, self.model.config().vocab);
                self.constrained_mask = false;
            }
            None => {}
        }
        Ok(())
    }

    /// [`Session::generate`] with each choice restricted to what `constraint`
    /// allows. A constrained step runs its forward pass while the CPU reads
    /// the token before it and computes the mask, then its sampler: one step
    /// in flight (`decode_ahead` does not apply), the mask never waiting for
    /// the logits nor the logits for the mask.
    #[allow(clippy::too_many_arguments)]
    pub async fn generate_with(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        sampling: &Sampling,
        stop_ids: &[u32],
        dump_logits: bool,
        mut constraint: Option<&mut (dyn TokenConstraint + '_)>,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Generation, ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::Invalid("the prompt is empty".into()));
        }
        let vocab = self.model.config().vocab;
        self.check_tokens(prompt)?;
        self.set_sampling(sampling);
        self.write_allowed(constraint.as_deref_mut())?;
        let gpu = self.model.gpu.clone();
        let t0 = crate::clock::now();
        self.prefill(prompt, Some(0)).await?;
        let mut last_logits = None;
        if dump_logits {
            let bytes = read_buffer(&gpu, &self.bufs.logits_last, 4 * vocab as u64).await?;
            last_logits = Some(bytemuck::cast_slice::<u8, f32>(&bytes).to_vec());
        }
        // Copy the first choice out: the prefill pass wrote it to out_ids[0].
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&self.bufs.out_ids, 0, &self.readback[0], 0, 4);
        let mut filled: [Option<wgpu::SubmissionIndex>; RING] = Default::default();
        filled[0] = Some(gpu.queue.submit([enc.finish()]));
        let prefill_tokens = prompt.len();
        let mut tokens = Vec::new();
        let mut stop = StopReason::MaxTokens;
        let mut prefill_seconds = 0.0;
        let mut t_first = t0;
        let mut step = 0usize;
        if max_tokens == 0 {
            let _ = self.read_token(0, filled[0].take()).await?;
            return Ok(Generation { tokens, stop, last_logits, prefill_tokens, prefill_seconds: crate::clock::now() - t0, ..Generation::default() });
        }
        // Steps submitted ahead of the one being read: step k consumes the
        // token chosen at step k-1 (which stays on the GPU) at position base+k-1.
        let ahead = if constraint.is_some() { 1 } else { self.options.decode_ahead.clamp(1, MAX_DECODE_AHEAD) };
        // A constrained step's sampler, submitted once its mask is known.
        let sampler_at = self.head.len() - 1;
        let base = self.history.len();
        let mut submitted = 0usize;
        let (mut record_seconds, mut wait_seconds) = (0.0, 0.0);
        loop {
            // The last token is run through the model too (so the next turn
            // continues from it): max_tokens steps after the prefill.
            while submitted < step + ahead && submitted < max_tokens && base + submitted < self.capacity {
                let next = submitted + 1;
                let t = crate::clock::now();
                self.write_step(1, base + submitted, next);
                if constraint.is_some() {
                    self.submit(&[&self.decode, &self.head[..sampler_at]], 1, base + submitted, None);
                } else {
                    filled[next % RING] = Some(self.submit(&[&self.decode, &self.head], 1, base + submitted, Some((next, next % RING))));
                }
                record_seconds += crate::clock::now() - t;
                submitted = next;
            }
            let t = crate::clock::now();
            let token = self.read_token(step % RING, filled[step % RING].take()).await?;
            if step == 0 {
                prefill_seconds = crate::clock::now() - t0;
                t_first = crate::clock::now();
            } else {
                wait_seconds += crate::clock::now() - t;
            }
            // Consumed by the model once step+1 was submitted.
            let consumed = submitted > step;
            if consumed {
                self.history.push(token);
            }
            tokens.push(token);
            let keep_going = on_token(token);
            if stop_ids.contains(&token) {
                stop = StopReason::Stop;
            } else if !keep_going {
                stop = StopReason::Cancelled;
            } else if tokens.len() >= max_tokens {
                stop = StopReason::MaxTokens;
            } else if !consumed || self.history.len() >= self.capacity {
                stop = StopReason::ContextFull;
            } else {
                step += 1;
                if let Some(c) = constraint.as_deref_mut() {
                    let t = crate::clock::now();
                    c.consume(token)?;
                    self.write_allowed(Some(c))?;
                    let pos = base + step - 1;
                    filled[step % RING] = Some(self.submit(&[&self.head[sampler_at..]], 1, pos, Some((step, step % RING))));
                    record_seconds += crate::clock::now() - t;
                }
                continue;
            }
            break;
        }
        // Let the steps in flight finish so the state is settled (a
        // constrained step past the stop ran its forward pass, not its sampler).
        for k in step + 1..=submitted {
            if let Some(submission) = filled[k % RING].take() {
                self.read_token(k % RING, Some(submission)).await?;
            }
        }
        // Steps past the one that consumed the last token ran on tokens that
        // are not in the conversation: the conv layers keep them apart by
        // position and their KV rows are overwritten later, but each marked
        // its token seen. The seen tokens are the history's.
        if submitted > step + 1 {
            self.write_seen();
        }
        let decode_seconds = crate::clock::now() - t_first;
        Ok(Generation { tokens, stop, last_logits, prefill_tokens, prefill_seconds, decode_seconds, record_seconds, wait_seconds })
    }
}

/// GPU time per kind of dispatch, from timestamp queries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileEntry {
    pub label: String,
    pub count: usize,
    pub ms: f64,
}

/// One dispatch's GPU time, in the order the pass runs them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DispatchTime {
    pub label: String,
    pub ms: f64,
}

/// The GPU times of a pass, per dispatch and per kind of dispatch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PassProfile {
    /// Each dispatch alone in a compute pass (its time includes the wait for the previous one).
    pub dispatches: Vec<DispatchTime>,
    /// Each dispatch repeated `reps` times back to back, per repetition: its
    /// steady-state cost with the barrier before it, as inside a real pass.
    pub repeated: Vec<DispatchTime>,
    pub reps: usize,
    /// The whole pass recorded as in generation (one compute pass), timed at its ends.
    pub whole_ms: f64,
}

impl PassProfile {
    /// Times summed per label, largest first.
    pub fn by_label(list: &[DispatchTime]) -> Vec<ProfileEntry> {
        let mut by_label: Vec<ProfileEntry> = Vec::new();
        for d in list {
            match by_label.iter_mut().find(|e| e.label == d.label) {
                Some(e) => {
                    e.count += 1;
                    e.ms += d.ms;
                }
                None => by_label.push(ProfileEntry { label: d.label.clone(), count: 1, ms: d.ms }),
            }
        }
        by_label.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        by_label
    }
}

/// The profile of a prefill and of one decode step, and the CPU cost of recording a step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub prefill: PassProfile,
    pub decode: PassProfile,
    pub encode_ms: f64,
    /// The CPU time to record one decode step's command buffer, unsubmitted.
    pub record_ms: f64,
    /// A tiny dependent dispatch (mark-seen) repeated: the floor every dispatch pays.
    pub dispatch_floor_us: f64,
}

impl Session {
    /// Runs `groups` of dispatches, each group in its own compute pass timed
    /// at its ends, every dispatch of a group recorded `reps` times; returns
    /// each group's GPU time per repetition.
    async fn timed_groups(&self, groups: &[Vec<&Dispatch>], reps: usize, n_tokens: usize, pos0: usize) -> Result<Vec<f64>, ModelError> {
        let gpu = &self.model.gpu;
        if !gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(ModelError::Gpu("this adapter has no timestamp queries".into()));
        }
        let mut times = Vec::with_capacity(groups.len());
        // Query sets hold at most 4096 queries: time at most 2048 groups per submission.
        for batch in groups.chunks(2048) {
            let n = batch.len() as u32 * 2;
            let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: n });
            let resolved = storage(gpu, "profile", u64::from(n) * 8);
            let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile-resolve"),
                size: u64::from(n) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            for (i, group) in batch.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                for d in group {
                    for _ in 0..reps {
                        d.record(&mut pass, n_tokens as u32, pos0 as u32);
                    }
                }
            }
            enc.resolve_query_set(&set, 0..n, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &resolved, 0, u64::from(n) * 8);
            gpu.queue.submit([enc.finish()]);
            let bytes = read_buffer(gpu, &resolved, u64::from(n) * 8).await?;
            let ticks: &[u64] = bytemuck::cast_slice(&bytes);
            let period = f64::from(gpu.queue.get_timestamp_period());
            for i in 0..batch.len() {
                times.push(ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period / 1e6 / reps as f64);
            }
        }
        Ok(times)
    }

    async fn profile_pass(&self, passes: &[&[Dispatch]], n_tokens: usize, pos0: usize, reps: usize) -> Result<PassProfile, ModelError> {
        let dispatches: Vec<&Dispatch> = passes.iter().flat_map(|p| p.iter()).collect();
        let singles: Vec<Vec<&Dispatch>> = dispatches.iter().map(|d| vec![*d]).collect();
        let label = |times: Vec<f64>| -> Vec<DispatchTime> { dispatches.iter().zip(times).map(|(d, ms)| DispatchTime { label: d.label.clone(), ms }).collect() };
        let alone = label(self.timed_groups(&singles, 1, n_tokens, pos0).await?);
        let repeated = if reps > 1 { label(self.timed_groups(&singles, reps, n_tokens, pos0).await?) } else { Vec::new() };
        let whole_ms = self.timed_groups(&[dispatches.clone()], 1, n_tokens, pos0).await?[0];
        Ok(PassProfile { dispatches: alone, repeated, reps, whole_ms })
    }

    /// Profiles a prefill of `prompt` (from an empty context) and one decode
    /// step after it: GPU time per dispatch, alone and repeated `reps` times,
    /// the CPU time to record a decode step, and the dependent-dispatch floor.
    pub async fn profile(&mut self, prompt: &[u32], reps: usize) -> Result<Profile, ModelError> {
        self.reset();
        self.check_room(prompt.len() + 1)?;
        let n = prompt.len().min(self.chunk);
        self.model.gpu.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::cast_slice(&prompt[..n]));
        self.write_step(n, 0, 0);
        let prefill = self.profile_pass(&[&self.prefill, &self.head], n, 0, 1).await?;
        // Rebuild the state the decode step sees: the prompt in the cache.
        self.reset();
        self.submit(&[&self.prefill], n, 0, None);
        self.write_step(1, n, 1);
        let decode = self.profile_pass(&[&self.decode, &self.head], 1, n, reps).await?;
        let floor_groups: Vec<Vec<&Dispatch>> = self.decode.iter().filter(|d| d.label == "mark-seen").take(1).map(|d| vec![d]).collect();
        let dispatch_floor_us = match floor_groups.is_empty() {
            true => 0.0,
            false => self.timed_groups(&floor_groups, 256, 1, n).await?[0] * 1000.0,
        };
        // CPU cost of recording and submitting one decode step.
        let t0 = crate::clock::now();
        let rounds = 20;
        for _ in 0..rounds {
            self.submit(&[&self.decode, &self.head], 1, n, None);
        }
        let encode_ms = (crate::clock::now() - t0) * 1000.0 / f64::from(rounds);
        read_buffer(&self.model.gpu, &self.bufs.out_ids, 4).await?;
        // The same without submitting: wgpu's and the driver's recording alone.
        let t0 = crate::clock::now();
        for _ in 0..rounds {
            drop(self.record(&[&self.decode, &self.head], 1, n, None));
        }
        let record_ms = (crate::clock::now() - t0) * 1000.0 / f64::from(rounds);
        self.reset();
        Ok(Profile { prefill, decode, encode_ms, record_ms, dispatch_floor_us })
    }
}
