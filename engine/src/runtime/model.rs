//! A loaded model: its description, its weights on the GPU (assembled for the
//! kernels' fusions), and its pipelines.

use std::{cell::Cell, rc::Rc};

use super::{
    kernels::Kernels,
    loader::{binding_limit, LoadPlan, Loader, Weights},
    weights::{pair_tile, MatrixPlan, RowLayout, RowMap},
};
use crate::{
    gpu::Gpu,
    model::{LayerKind, ModelConfig, ModelError, ModelSpec, WeightSpec},
};

/// Q, K and V: one matrix (rows q|k|v) when their types agree and it fits a
/// binding, else three.
#[derive(Debug, Clone)]
pub enum Qkv {
    Fused(String),
    Separate([String; 3]),
}

/// Gate and up: one matrix with rows interleaved in tiles of `tile` (so the
/// SwiGLU pairs sit together), or two.
#[derive(Debug, Clone)]
pub enum GateUp {
    Fused { name: String, tile: u64 },
    Separate { gate: String, up: String },
}

#[derive(Debug, Clone)]
pub enum Mixer {
    Conv { in_proj: String, taps: String, out_proj: String },
    Attention { qkv: Qkv, q_norm: Option<String>, k_norm: Option<String>, out: String },
}

#[derive(Debug, Clone)]
pub enum Ffn {
    Dense { gate_up: GateUp, down: String },
    /// Expert gate/up rows interleaved per expert in tiles of `tile`.
    Moe { router: String, bias: String, gate_up: String, tile: u64, down: String },
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub attn_norm: String,
    pub ffn_norm: String,
    /// Gemma's norms of the mixer's and the FFN's outputs, before the residual add.
    pub post_norms: Option<(String, String)>,
    pub mixer: Mixer,
    pub ffn: Ffn,
}

/// The model's structure, naming the GPU matrices and vectors each step reads.
#[derive(Debug, Clone)]
pub struct Graph {
    pub embedding: String,
    pub final_norm: String,
    pub lm_head: String,
    pub layers: Vec<Layer>,
}

/// Decides how the weights are assembled on this device, and the graph that reads them.
pub fn plan(spec: &ModelSpec, binding_limit: u64) -> Result<(LoadPlan, Graph), ModelError> {
    let c = &spec.config;
    let mut matrices = Vec::new();
    let mut vectors = Vec::new();
    let plain = |matrices: &mut Vec<MatrixPlan>, name: &str, granularity: u64| -> Result<String, ModelError> {
        let w = spec.weight(name)?;
        let rows = w.dims[1..].iter().product();
        matrices.push(MatrixPlan {
            name: name.to_string(),
            dtype: w.dtype,
            rows,
            cols: w.dims[0],
            sources: vec![RowMap::plain(name, 0)],
            split_granularity: granularity,
        });
        Ok(name.to_string())
    };
    let fits = |names: &[&str]| -> bool {
        let first = &spec.weights[names[0]];
        names.iter().all(|n| spec.weights[*n].dtype == first.dtype && spec.weights[*n].dims[0] == first.dims[0])
            && RowLayout::new(first.dtype, first.dims[0]).is_some_and(|l| {
                let rows: u64 = names.iter().map(|n| spec.weights[*n].dims[1..].iter().product::<u64>()).sum();
                rows * l.gpu_row_bytes() <= binding_limit
            })
    };
    let embedding = plain(&mut matrices, "token_embd.weight", 1)?;
    let lm_head = if c.tied_embeddings { embedding.clone() } else { plain(&mut matrices, "output.weight", 1)? };
    let block = c.family().block;
    let final_norm = c.family().final_norm.to_string();
    vectors.push(final_norm.clone());
    let mut layers = Vec::new();
    for (l, kind) in c.layers.iter().enumerate() {
        let b = |s: &str| format!("blk.{l}.{s}");
        let (attn_norm, ffn_norm) = (b("attn_norm.weight"), b("ffn_norm.weight"));
        vectors.push(attn_norm.clone());
        vectors.push(ffn_norm.clone());
        let post_norms = block.post_norms.then(|| (b("post_attention_norm.weight"), b("post_ffw_norm.weight")));
        if let Some((a, f)) = &post_norms {
            vectors.push(a.clone());
            vectors.push(f.clone());
        }
        let mixer = match kind {
            LayerKind::Conv => {
                let taps = b("shortconv.conv.weight");
                vectors.push(taps.clone());
                Mixer::Conv { in_proj: plain(&mut matrices, &b("shortconv.in_proj.weight"), 1)?, taps, out_proj: plain(&mut matrices, &b("shortconv.out_proj.weight"), 1)? }
            }
            LayerKind::Attention => {
                let names = [b("attn_q.weight"), b("attn_k.weight"), b("attn_v.weight")];
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let qkv = if fits(&refs) {
                    let w: Vec<_> = names.iter().map(|n| &spec.weights[n]).collect();
                    let (q, k) = (w[0].dims[1], w[1].dims[1]);
                    let name = b("attn_qkv");
                    matrices.push(MatrixPlan {
                        name: name.clone(),
                        dtype: w[0].dtype,
                        rows: q + 2 * k,
                        cols: w[0].dims[0],
                        sources: vec![RowMap::plain(&names[0], 0), RowMap::plain(&names[1], q), RowMap::plain(&names[2], q + k)],
                        split_granularity: q + 2 * k,
                    });
                    Qkv::Fused(name)
                } else {
                    Qkv::Separate([plain(&mut matrices, &names[0], 1)?, plain(&mut matrices, &names[1], 1)?, plain(&mut matrices, &names[2], 1)?])
                };
                let (q_norm, k_norm) = if !block.qk_norm {
                    (None, None)
                } else {
                    let (qn, kn) = (b("attn_q_norm.weight"), b("attn_k_norm.weight"));
                    vectors.push(qn.clone());
                    vectors.push(kn.clone());
                    (Some(qn), Some(kn))
                };
                Mixer::Attention { qkv, q_norm, k_norm, out: plain(&mut matrices, &b("attn_output.weight"), 1)? }
            }
        };
        let ffn = match (&c.moe, c.is_moe_layer(l)) {
            (Some(m), true) => {
                let (gate, up) = (b("ffn_gate_exps.weight"), b("ffn_up_exps.weight"));
                let (gw, uw) = (spec.weight(&gate)?, spec.weight(&up)?);
                if gw.dtype != uw.dtype {
                    return Err(ModelError::UnsupportedTensorType {
                        name: up.clone(),
                        dtype: format!("{} (its gate experts are {}; Eddy needs them equal)", uw.dtype, gw.dtype),
                    });
                }
                let fe = m.expert_ffn as u64;
                let tile = pair_tile(fe);
                let name = b("ffn_gate_up_exps");
                matrices.push(MatrixPlan {
                    name: name.clone(),
                    dtype: gw.dtype,
                    rows: 2 * fe * m.n_experts as u64,
                    cols: c.hidden as u64,
                    sources: vec![
                        RowMap { weight: gate, offset: 0, tile, interleave: 2, phase: 0 },
                        RowMap { weight: up, offset: 0, tile, interleave: 2, phase: tile },
                    ],
                    split_granularity: 2 * fe,
                });
                let bias = b("exp_probs_b.bias");
                vectors.push(bias.clone());
                Ffn::Moe {
                    router: plain(&mut matrices, &b("ffn_gate_inp.weight"), 1)?,
                    bias,
                    gate_up: name,
                    tile,
                    down: plain(&mut matrices, &b("ffn_down_exps.weight"), c.hidden as u64)?,
                }
            }
            _ => {
                let (gate, up) = (b("ffn_gate.weight"), b("ffn_up.weight"));
                let gate_up = if fits(&[&gate, &up]) {
                    let f = c.ffn as u64;
                    let tile = pair_tile(f);
                    let name = b("ffn_gate_up");
                    matrices.push(MatrixPlan {
                        name: name.clone(),
                        dtype: spec.weights[&gate].dtype,
                        rows: 2 * f,
                        cols: c.hidden as u64,
                        sources: vec![
                            RowMap { weight: gate, offset: 0, tile, interleave: 2, phase: 0 },
                            RowMap { weight: up, offset: 0, tile, interleave: 2, phase: tile },
                        ],
                        split_granularity: 2 * tile,
                    });
                    GateUp::Fused { name, tile }
                } else {
                    GateUp::Separate { gate: plain(&mut matrices, &gate, 1)?, up: plain(&mut matrices, &up, 1)? }
                };
                Ffn::Dense { gate_up, down: plain(&mut matrices, &b("ffn_down.weight"), 1)? }
            }
        };
        layers.push(Layer { attn_norm, ffn_norm, post_norms, mixer, ffn });
    }
    Ok((LoadPlan { matrices, vectors }, Graph { embedding, final_norm, lm_head, layers }))
}

/// A model whose weights are on the GPU (or, while a [`ModelLoad`] runs,
/// arriving there: its buffers exist from the start).
pub struct Model {
    pub gpu: Gpu,
    pub spec: ModelSpec,
    pub graph: Graph,
    pub weights: Weights,
    pub kernels: Kernels,
    /// The most bytes of rows the streaming loader held at once while loading.
    pub peak_loader_bytes: Cell<u64>,
}

impl Model {
    pub fn config(&self) -> &ModelConfig {
        &self.spec.config
    }

    /// Starts a streaming load: allocate, then feed bytes, then [`ModelLoad::finish`].
    pub fn begin_load(gpu: &Gpu, spec: ModelSpec) -> Result<ModelLoad<'_>, ModelError> {
        let (plan, graph) = plan(&spec, binding_limit(gpu))?;
        let loader = Loader::new(gpu, &spec, &plan)?;
        let model = Rc::new(Model { gpu: gpu.clone(), spec, graph, weights: loader.weights(), kernels: Kernels::new(), peak_loader_bytes: Cell::new(0) });
        Ok(ModelLoad { model, loader })
    }
}

/// A model being loaded: feed it the source files' bytes in order.
pub struct ModelLoad<'g> {
    model: Rc<Model>,
    pub loader: Loader<'g>,
}

impl ModelLoad<'_> {
    pub fn spec(&self) -> &ModelSpec {
        &self.model.spec
    }

    /// The model whose buffers are being filled. A session made on it now
    /// builds (and so compiles) every kernel while the bytes arrive: in a
    /// browser the GPU process compiles while the worker reads and hashes
    /// chunks. It must not run before [`ModelLoad::finish`].
    pub fn model(&self) -> &Rc<Model> {
        &self.model
    }

    pub fn feed(&mut self, file: usize, offset: u64, bytes: &[u8]) -> Result<(), ModelError> {
        self.loader.feed(file, offset, bytes)
    }

    pub fn finish(self) -> Result<Rc<Model>, ModelError> {
        self.model.peak_loader_bytes.set(self.loader.peak_staged_bytes());
        self.loader.finish()?;
        Ok(self.model)
    }
}

/// What a model needs from a GPU, for manifests and for checks before a download.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Requirements {
    pub largest_tensor_bytes: u64,
    /// The smallest binding that holds the model's largest unsplittable piece
    /// (a row, or one expert of an expert stack).
    pub min_binding_bytes: u64,
    /// GPU memory for the weights, as laid out on the GPU.
    pub weight_bytes: u64,
    /// KV-cache bytes per token of context (f32 cache; f16 halves it).
    pub kv_bytes_per_token: u64,
}

impl Requirements {
    pub fn of(spec: &ModelSpec) -> Result<Self, ModelError> {
        // Unfused, as the smallest devices get it: every piece at its finest split.
        let (fine, _) = plan(spec, 1)?;
        let (fused, _) = plan(spec, u64::MAX)?;
        let row_bytes = |m: &MatrixPlan| RowLayout::new(m.dtype, m.cols).map_or(0, |l| l.gpu_row_bytes());
        let min_binding_bytes = fine.matrices.iter().map(|m| row_bytes(m) * m.split_granularity).max().unwrap_or(0);
        let weight_bytes = fused.matrices.iter().map(|m| (row_bytes(m) * m.rows).div_ceil(16) * 16).sum::<u64>()
            + fused.vectors.iter().filter_map(|v| spec.weights.get(v)).map(|w| 4 * w.elems()).sum::<u64>();
        let c = &spec.config;
        let kv_bytes_per_token = c.attention_layers().count() as u64 * 2 * (c.n_kv_heads * c.head_dim) as u64 * 4;
        Ok(Self {
            largest_tensor_bytes: spec.weights.values().map(WeightSpec::bytes).max().unwrap_or(0),
            min_binding_bytes,
            weight_bytes,
            kv_bytes_per_token,
        })
    }

    /// Why this model cannot run on a device with these limits, if it cannot.
    pub fn check(&self, max_binding: u64, max_buffer: u64) -> Result<(), String> {
        let limit = max_binding.min(max_buffer);
        if self.min_binding_bytes > limit {
            return Err(format!(
                "the model needs GPU buffers of {} bytes in one binding, and this GPU allows {limit}",
                self.min_binding_bytes
            ));
        }
        Ok(())
    }
}
