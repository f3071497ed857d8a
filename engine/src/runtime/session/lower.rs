//! Graph lowering: a model's graph turned into the dispatches of a pass
//! (prefill or decode) and of the head, from the kernel ops.

use super::buffers::{moe_order_offset, Buffers};
use crate::{
    model::RopeStyle,
    runtime::{
        kernels::{Count, Dispatch},
        model::{Ffn, GateUp, Mixer, Model, Qkv},
        ops::{Epilogue, HeadShape, Ops, Product, RouteInput, Routing, Tuning},
        weights::GpuMatrix,
    },
};

/// A pass's phase: a chunk of prompt tokens, or one token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pass {
    Prefill,
    Decode,
}

impl Pass {
    /// The kernel family of the pass's matrix products.
    fn product(self) -> Product {
        match self {
            Pass::Prefill => Product::MatMul,
            Pass::Decode => Product::MatVec,
        }
    }
}

/// Records the passes of one session from the kernel ops.
pub(super) struct Builder<'a> {
    pub(super) model: &'a Model,
    pub(super) bufs: &'a Buffers,
    /// Tokens per prefill pass (the buffers' rows).
    pub(super) chunk: usize,
    pub(super) kv_f16: bool,
    pub(super) tuning: Tuning,
    pub(super) out: Vec<Dispatch>,
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
    fn linear(&mut self, product: Product, name: &str, x: &wgpu::Buffer, x_stride: u64, y: &wgpu::Buffer, y_stride: u64, out_first: u64, ep: Epilogue, tokens: Count) {
        let d = self.ops().linear(product, self.matrix(name), x, x_stride, y, y_stride, out_first, ep, tokens);
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
            Pass::Prefill => self.linear(pass.product(), name, &b.h, d, y, y_stride, out_first, Epilogue::Store, Count::tokens()),
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
                self.linear(pass.product(), out_proj, &b.act, d, y, d, 0, ep, tok);
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
                self.linear(pass.product(), out, &b.act, nq, y, d, 0, ep, tok);
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
                        self.linear(pass.product(), name, &b.h, d, &b.z, 2 * f, 0, Epilogue::Store, tok);
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
                self.linear(pass.product(), down, &b.act, f, y, d, 0, ep, tok);
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
                    None => self.out.extend(ops.linear(Product::MatVec, self.matrix(router), input, d, &b.router_logits, u64::from(routing.n_experts), 0, Epilogue::Store, tok)),
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

    pub(super) fn body(mut self, pass: Pass) -> Vec<Dispatch> {
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
    pub(super) fn head(mut self) -> Vec<Dispatch> {
        let b = self.bufs;
        let c = self.model.config();
        let (d, v) = (c.hidden as u64, c.vocab as u64);
        self.rmsnorm(&self.model.graph.final_norm, true);
        self.linear(Product::MatVec, &self.model.graph.lm_head, &b.h, d, &b.logits_last, v, 0, Epilogue::Store, Count::Fixed(1));
        // Last: a constrained step submits the head without it (Session::generate).
        let sample = self.ops().sample(&b.sampler, &b.logits_last, &b.seen, &b.tokens, &b.out_ids, &b.allowed);
        self.out.push(sample);
        self.out
    }

    /// The logits of every position of the pass (tests).
    pub(super) fn all_logits(mut self) -> Vec<Dispatch> {
        let b = self.bufs;
        let c = self.model.config();
        let (d, v) = (c.hidden as u64, c.vocab as u64);
        let all = b.logits_all.as_ref().expect("all-logits buffer");
        self.rmsnorm(&self.model.graph.final_norm, false);
        self.linear(Product::MatMul, &self.model.graph.lm_head, &b.h, d, all, v, 0, Epilogue::Store, Count::tokens());
        self.out
    }
}
