//! One function per kernel: given buffers and shapes, the recorded dispatch(es).
//! The session's passes are built from these, and the per-kernel tests call them
//! directly on random inputs.

use super::{
    kernels::{uniform_bytes, Count, Dispatch, KernelKey, Kernels},
    params::{
        AttentionMergeParams, AttentionParams, EmbedParams, MatmulParams, MatvecParams, MoeCombineParams, MoePlanParams, MoeRouteParams, RmsnormParams, RopeParams, ShortconvParams,
        SwigluParams, WeightGeom,
    },
    weights::GpuMatrix,
};
use crate::{formats::DType, gpu::Gpu, model::Activation};

/// Which kernel family a matrix product uses. Prefill takes mat-mats and
/// decode mat-vecs, but not only: the head's last row and the MoE router are
/// mat-vecs in any pass.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Product {
    /// Tiled mat-mat products, the weights read once per tile of tokens.
    MatMul,
    /// Mat-vec products, one read of the weights per token.
    MatVec,
}

/// Store the product, or add it to what is there (residual connections).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Epilogue {
    Store,
    Add,
}

/// Elements per dot unit of the mat-vec kernels.
pub fn dot_unit(dtype: DType) -> u64 {
    if dtype.is_quantized() { 32 } else { 8 }
}

/// How mat-vecs are laid out on the device: lanes per workgroup, and lanes
/// sharing one output's columns. More lanes per output keep more loads in
/// flight for few outputs; fewer give each lane longer runs of weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    pub matvec_wg: u32,
    /// Lanes sharing one output's columns (at most; fewer for short rows).
    pub matvec_lanes: u32,
    /// Mat-vecs whose x cannot be staged in workgroup memory (long rows, MoE
    /// down projections) hold x in registers (matvec_xr.wgsl) where the
    /// matrix allows; the others stage x (matvec.wgsl), which measured faster
    /// on the H200 where both apply (docs/BENCHMARKS.md).
    pub matvec_xr: bool,
    /// Use the x-in-registers mat-vec wherever the matrix allows (tests, sweeps).
    pub xr_always: bool,
    /// Staged mat-vecs of Q4_0, Q4_1, Q8_0 and Q6_K matrices of at least this
    /// many weights take x as two int8 levels (about 16 bits) and multiply with
    /// packed int8 dot products (u64::MAX: never).
    pub int8_min_weights: u64,
    /// x-in-registers: weight bytes each lane loads at once (over a group's
    /// rows), which sets the rows per group for each weight type,
    pub xr_bytes: u32,
    /// but never fewer rows than this (F16's 64-byte chunks want 2 where
    /// Q4_0's 18-byte chunks want 3: both measured on the H200).
    pub xr_min_rows: u32,
    /// Lanes per output of the MoE experts' mat-vecs (their rows are short and
    /// gathered per slot: fewer lanes than the dense mat-vecs measured slower).
    pub moe_lanes: u32,
    /// Outputs per lane group of the staged mat-vec (matvec.wgsl's RG, 1 to 8):
    /// more share each read of x from workgroup memory and each staging of it.
    pub matvec_rows: u32,
    /// The same for the MoE experts' mat-vecs.
    pub moe_rows: u32,
    /// A staged mat-vec keeps several outputs per group only while it still
    /// has this many workgroups (on the H200 the 2048- and 6144-row mat-vecs
    /// were slower with two outputs per group and 64 or 192 workgroups, the
    /// gate/up ones with 256 and more faster),
    pub rows_min_workgroups: u32,
    /// and one with fewer workgroups than this widens its lane groups (up to
    /// the workgroup) until it has them or runs out of columns: a 32-row
    /// router on 4 workgroups leaves most of the GPU idle (0 = never).
    pub min_workgroups: u32,
    /// Decode chooses the MoE experts inside the gate/up mat-vec (each of
    /// its workgroups ranks the router logits) instead of in a routing
    /// kernel between the router and the experts: one dispatch per MoE layer fewer.
    pub route_in_gate_up: bool,
    /// Prompt chunks of at most this many tokens run through the decode pass,
    /// one token at a time, instead of the prefill mat-mats (1, the default:
    /// a lone token only, such as a regenerated reply's prompt). Meant for
    /// adapters where whole mat-mat tiles cost more than a few decode steps;
    /// on SwiftShader the LFM2-2.6B's first ~10-token reply took 209 s with
    /// the mat-mats, and 208.6 s with 64 here for adapters named SwiftShader
    /// (whether the browser's adapter matched was not checked).
    pub prefill_by_token: u32,
    /// Prefill mat-mats on the matrix units over parts of at least this many
    /// rows take 128-token tiles (matmul_coop.wgsl's BM128: each staged
    /// weight feeds twice the products) instead of 64-token ones; narrower
    /// parts keep 64 (u64::MAX: never). On the H200 (pp512) 128-token tiles
    /// everywhere were fastest: 1.2B Q4_0 +20%, 2.6B +20%, 8B-A1B +6%, 350M
    /// +5% against 64; from 8192 rows only, the 1.2B gained less (docs/BENCHMARKS.md).
    pub coop_wide_rows: u64,
}

impl Tuning {
    /// Measured on the H200 (docs/BENCHMARKS.md): 16 lanes per output and 2-3
    /// rows per x-in-registers group decode LFM2-1.2B Q4_0 17% faster than 32
    /// lanes and 7 rows; the MoE mat-vecs keep 32 lanes. Two outputs per group
    /// of the staged quantized mat-vecs: MoE gate/up 13.5 → 9.7 µs, 2.6B gate/up
    /// 13.7 → 10.4 µs; fewer than 256 workgroups left the 2048-row ones slower.
    pub const DEFAULT: Tuning = Tuning { matvec_wg: 256, matvec_lanes: 16, matvec_xr: true, xr_always: false, int8_min_weights: INT8_MIN_WEIGHTS, xr_bytes: 64, xr_min_rows: 2, moe_lanes: 32, matvec_rows: 2, moe_rows: 2, rows_min_workgroups: 256, min_workgroups: 64, route_in_gate_up: true, prefill_by_token: 1, coop_wide_rows: 0 };
    /// CPU implementations of WebGPU (SwiftShader, lavapipe) pay for every
    /// workgroup barrier: small workgroups with few lanes per output.
    pub const CPU: Tuning = Tuning { matvec_wg: 64, matvec_lanes: 4, matvec_xr: false, xr_always: false, int8_min_weights: u64::MAX, xr_bytes: 128, xr_min_rows: 1, moe_lanes: 4, matvec_rows: 1, moe_rows: 1, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: true, prefill_by_token: 1, coop_wide_rows: u64::MAX };

    /// Outputs per lane group of a staged mat-vec of `dtype`: the float types
    /// keep one (two made LFM2-1.2B F16 decode 13% slower on the H200).
    pub fn rows_for(&self, dtype: DType, moe: bool) -> u32 {
        match (dtype.is_quantized(), moe) {
            (false, _) => 1,
            (true, true) => self.moe_rows,
            (true, false) => self.matvec_rows,
        }
    }

    pub fn for_adapter(gpu: &crate::gpu::Gpu) -> Self {
        if gpu.is_cpu() { Self::CPU } else { Self::DEFAULT }
    }
}

impl Default for Tuning {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Clone, Copy, Debug)]
pub struct MatvecShape {
    pub wg: u32,
    pub lanes: u32,
    /// Outputs per lane group.
    pub rows: u32,
}

impl MatvecShape {
    /// The shape for `outputs` outputs of `units` dot units each, with
    /// `rows` outputs per group (clamped to 1..=8).
    pub fn new(units: u64, outputs: u64, rows: u32, tuning: Tuning) -> Self {
        let pow = 1u64 << (63 - units.max(1).leading_zeros());
        let wg = tuning.matvec_wg.clamp(64, 256).next_power_of_two();
        let max_lanes = (pow as u32).clamp(1, wg);
        let mut shape = Self { wg, lanes: max_lanes.min(tuning.matvec_lanes.next_power_of_two()), rows: rows.clamp(1, 8) };
        while shape.rows > 1 && shape.workgroups(outputs) < u64::from(tuning.rows_min_workgroups) {
            shape.rows = (shape.rows / 2).max(1);
        }
        while shape.lanes < max_lanes && shape.workgroups(outputs) < u64::from(tuning.min_workgroups) {
            shape.lanes *= 2;
        }
        shape
    }

    fn workgroups(self, outputs: u64) -> u64 {
        outputs.div_ceil(u64::from(self.per_workgroup()))
    }

    /// Outputs one workgroup makes.
    pub fn per_workgroup(self) -> u32 {
        self.wg / self.lanes * self.rows
    }

    fn groups(self, outputs: u64) -> Count {
        Count::Fixed((outputs as u32).div_ceil(self.per_workgroup()))
    }
}

/// The x-in-registers mat-vec's layout: groups of `lanes` lanes, each lane
/// owning up to `chunks_per_lane` 32-column chunks of x, each group making
/// `rows` outputs.
#[derive(Clone, Copy, Debug)]
pub struct XrShape {
    pub wg: u32,
    pub lanes: u32,
    pub rows: u32,
    pub chunks_per_lane: u32,
}

impl XrShape {
    /// None where the reference kernel serves: columns not in whole 32-column
    /// chunks, x rows not in whole vec4s, or more than 64 columns per lane.
    pub fn new(cols: u64, x_stride: u64, rows: u32, tuning: Tuning) -> Option<Self> {
        if !tuning.matvec_xr || cols % 32 != 0 || x_stride % 4 != 0 {
            return None;
        }
        let chunks = cols / 32;
        let wg = tuning.matvec_wg.clamp(64, 256).next_power_of_two();
        let mut lanes = (chunks.next_power_of_two() as u32).min(tuning.matvec_lanes.next_power_of_two()).clamp(1, wg);
        while chunks > 2 * u64::from(lanes) && lanes < wg {
            lanes *= 2;
        }
        let chunks_per_lane = chunks.div_ceil(u64::from(lanes));
        (chunks_per_lane <= 2).then_some(Self { wg, lanes, rows: rows.clamp(1, 8), chunks_per_lane: chunks_per_lane as u32 })
    }

    fn groups(self, outputs: u64) -> Count {
        Count::Fixed((outputs as u32).div_ceil(self.wg / self.lanes * self.rows))
    }
}

/// Weights from which a staged mat-vec takes x as int8 (see `Tuning::int8_min_weights`).
pub const INT8_MIN_WEIGHTS: u64 = 32 << 20;

/// The units each lane of the reference mat-vec takes, where all lanes take
/// the same number (at most 8).
fn m_units(dtype: DType, cols: u64, shape: MatvecShape) -> Option<u32> {
    let units = cols / dot_unit(dtype);
    let lanes = u64::from(shape.lanes);
    let off = std::env::var("EDDY_NO_UL").is_ok();
    (!off && units % lanes == 0 && units / lanes <= 8).then_some((units / lanes) as u32)
}

fn geom(m: &GpuMatrix, part: usize) -> WeightGeom {
    let p = &m.parts[part];
    WeightGeom { row_words: m.layout.payload_words as u32, scale_words: m.layout.scale_words as u32, scale_off: p.scale_offset_words as u32, rows: p.rows as u32 }
}

/// Attention geometry shared by the rope and attention kernels.
#[derive(Clone, Copy, Debug)]
pub struct HeadShape {
    pub n_heads: u32,
    pub n_kv_heads: u32,
    pub head_dim: u32,
    /// Positions the KV cache holds.
    pub capacity: u32,
    /// The logits' scale (1/√head_dim unless the model says otherwise).
    pub scale: f32,
    /// A query sees itself and the `window - 1` positions before it; 0: all.
    pub window: u32,
}

/// Routing parameters of an MoE layer.
#[derive(Clone, Copy, Debug)]
pub struct Routing {
    pub n_experts: u32,
    pub top_k: u32,
    pub norm_topk: bool,
    pub scale: f32,
}

/// What the gate/up mat-vec needs to choose the experts itself.
#[derive(Clone, Copy)]
pub struct RouteInput<'b> {
    pub routing: Routing,
    /// The token's router logits, [t][n_experts].
    pub logits: &'b wgpu::Buffer,
    /// The selection bias, [n_experts].
    pub bias: &'b wgpu::Buffer,
}

/// Builds dispatches that read the pass's [`Step`](../../shaders/step.wgsl) from `step`.
pub struct Ops<'a> {
    pub gpu: &'a Gpu,
    pub kernels: &'a Kernels,
    pub step: &'a wgpu::Buffer,
    pub tuning: Tuning,
}

/// An RMSNorm applied inside a mat-vec: the gains and epsilon.
pub type Norm<'b> = Option<(&'b wgpu::Buffer, f32)>;

impl<'a> Ops<'a> {
    /// A mat-vec kernel key: lanes reduce by subgroup shuffles where a group
    /// fits in the device's smallest subgroup.
    /// `stage_cols`: the row length of x when the kernel may stage x in
    /// workgroup memory (each token's x is one contiguous row), or 0.
    /// Whether the reference mat-vec stages x of `cols` columns in workgroup memory.
    fn stages_x(&self, cols: u64) -> bool {
        cols <= 4096 && cols * 4 + u64::from(self.tuning.matvec_wg) * 8 <= u64::from(self.gpu.limits.max_compute_workgroup_storage_size)
    }

    fn matvec_key(&self, dtype: DType, defines: &[&'static str], shape: MatvecShape, stage_cols: u64, cols: u64, rows: u64) -> KernelKey {
        let mut key = KernelKey::new("matvec.wgsl").weight(dtype).define("DOT");
        for d in defines {
            key = key.define(d);
        }
        let subgroup_reduce = self.gpu.subgroups && shape.lanes <= self.gpu.subgroup_min_size;
        if subgroup_reduce {
            key = key.define("SUBGROUP_REDUCE");
        }
        if self.gpu.subgroups {
            key = key.define("SUBGROUPS");
        }
        // Staging pays while it leaves room for several workgroups per core:
        // up to 16 KiB of x (a 4096-wide hidden state).
        let shared = stage_cols * 4 + u64::from(shape.wg) * 8;
        // MoE down projections stage their token's k slots (k × the expert's
        // columns), as large as the device allows: read from global memory,
        // each output's lanes re-read all of them (0.4 TB/s on the H200).
        let moe_down = defines.contains(&"MOE_DOWN");
        if stage_cols > 0 && (stage_cols <= 4096 || moe_down) && shared <= u64::from(self.gpu.limits.max_compute_workgroup_storage_size) {
            // Quantizing x costs each workgroup a pass over it: it pays where the
            // matrix is large enough for the dequantization to dominate (measured on
            // the H200: 16384x2048 and 65536x2048 faster, 6144x2048 and smaller slower).
            // (`EDDY_MOE_DOWN_F32=1` keeps the MoE down projection's x in float32: comparisons.)
            let int8 = !(moe_down && std::env::var_os("EDDY_MOE_DOWN_F32").is_some())
                && rows.saturating_mul(stage_cols) >= self.tuning.int8_min_weights && matches!(dtype, DType::Q4_0 | DType::Q4_1 | DType::Q8_0 | DType::Q6K);
            key = key.define(if int8 { "I8X" } else { "XSHARED" });
            key.xs4 = (stage_cols / 4) as u32;
        }
        let units = m_units(dtype, cols, shape);
        let key = key.matvec_shape(shape.wg, shape.lanes);
        let key = if shape.rows > 1 { key.define("ROWS").constant("RG", shape.rows) } else { key };
        match units {
            Some(ul) => key.constant("UL", ul),
            None => key,
        }
    }

    /// The mat-vec for `outputs` outputs of `m` (pairs of rows with `pairs`):
    /// x in registers where the matrix allows, else the reference kernel
    /// (`stage`: x may be staged in workgroup memory). Returns the kernel and
    /// its workgroup count.
    /// `xr`: the x-in-registers kernel may serve where x is not staged (it
    /// measured slower for the MoE down projections' short rows).
    #[allow(clippy::too_many_arguments)]
    fn mv_plan(&self, m: &GpuMatrix, x_stride: u64, defines: &[&'static str], outputs: u64, pairs: bool, stage: bool, xr: bool) -> (KernelKey, Count) {
        let stage = stage && self.stages_x(m.cols());
        let tuning = self.tuning_for(defines);
        // Bytes of one 32-column chunk of a row, scales included.
        let chunk_bytes = (32 * m.dtype().block_bytes() / m.dtype().block_elems()).max(1) as u32;
        let rows = (tuning.xr_bytes / chunk_bytes).clamp(tuning.xr_min_rows.clamp(1, 8), 8);
        let rows = if pairs { (rows / 2).max(1) } else { rows };
        if let Some(xr) = XrShape::new(m.cols(), x_stride, rows, tuning).filter(|_| (xr && !stage) || self.tuning.xr_always) {
            let mut key = KernelKey::new("matvec_xr.wgsl").weight(m.dtype()).define("DOT");
            for d in defines {
                key = key.define(d);
            }
            if dot_unit(m.dtype()) == 8 {
                key = key.define("QU8");
            }
            let (sg_min, sg_max) = (self.gpu.subgroup_min_size, self.gpu.info.subgroup_max_size);
            if self.gpu.subgroups && xr.lanes <= sg_min {
                key = key.define("SUBGROUP_REDUCE");
            } else if self.gpu.subgroups && sg_min == sg_max && sg_min >= 8 && xr.lanes % sg_min == 0 && xr.wg / sg_min <= 32 {
                key = key.define("SUBGROUPS");
            }
            key = key.constant("WG", xr.wg).constant("T", xr.lanes).constant("R", xr.rows).constant("XC", xr.chunks_per_lane);
            return (key, xr.groups(outputs));
        }
        let units = m.cols() / dot_unit(m.dtype());
        let rows = tuning.rows_for(m.dtype(), defines.contains(&"MOE"));
        // The MoE gate/up's workgroups also span the token's k slots (LFM2's 4).
        let per_token = if defines.contains(&"MOE_GATE_UP") { outputs * 4 } else { outputs };
        let shape = MatvecShape::new(units, per_token, rows, tuning);
        let key = self.matvec_key(m.dtype(), defines, shape, if stage { m.cols() } else { 0 }, m.cols(), m.rows);
        (key, shape.groups(outputs))
    }

    /// The tuning a mat-vec with `defines` runs with: the MoE experts' own
    /// lanes per output (`Tuning::moe_lanes`).
    fn tuning_for(&self, defines: &[&str]) -> Tuning {
        if defines.contains(&"MOE") { Tuning { matvec_lanes: self.tuning.moe_lanes, ..self.tuning } } else { self.tuning }
    }

    /// The prefill mat-mat kernel for `m` with `defines` (a mode, GROUPED),
    /// and the rows its tiles hold: the matrix units where `coop_matmul`
    /// allows, else the SIMT kernel (`EDDY_MATMUL=64`: its 64-row variant,
    /// which has no GROUPED).
    fn matmul_key(&self, m: &GpuMatrix, wide: bool, x_stride: u64, defines: &[&'static str]) -> (KernelKey, u32, u32) {
        let grouped = defines.contains(&"GROUPED");
        let (file, rows) = if self.coop_matmul(m, x_stride) {
            ("matmul_coop.wgsl", 128)
        } else if !grouped && std::env::var("EDDY_MATMUL").is_ok_and(|v| v == "64") {
            ("matmul64.wgsl", 64)
        } else {
            ("matmul.wgsl", 128)
        };
        let mut key = KernelKey::new(file).weight(m.dtype());
        for d in defines {
            key = key.define(d);
        }
        let mut tokens = 64;
        if file == "matmul_coop.wgsl" {
            if self.coop_bk64(m, grouped) {
                key = key.define("BK64");
            }
            if wide && !grouped {
                key = key.define("BM128");
                tokens = 128;
            }
            // Diagnostics for benchmarks (wrong results): `nomma` / `nostage`
            // time the staging or the products alone.
            match std::env::var("EDDY_COOP_VARIANT").as_deref() {
                Ok("nomma") => key = key.define("NOMMA"),
                Ok("nostage") => key = key.define("NOSTAGE"),
                _ => {}
            }
        }
        (key, rows, tokens)
    }

    /// Whether a dense prefill mat-mat over `rows` rows may take 128-token
    /// tiles on the matrix units (Tuning::coop_wide_rows), where its
    /// workgroup memory fits the device.
    fn coop_wide(&self, m: &GpuMatrix, rows: u64, x_stride: u64) -> bool {
        let bk = if self.coop_bk64(m, false) { 64 } else { 32 };
        self.coop_matmul(m, x_stride) && rows >= self.tuning.coop_wide_rows && coop_workgroup_bytes(128, bk) <= self.gpu.limits.max_compute_workgroup_storage_size
    }

    /// Whether a prefill mat-mat runs on the matrix units (matmul_coop.wgsl,
    /// same tiles and parameters as matmul.wgsl): the device has them, x and
    /// the columns come in the kernel's whole steps (32 columns, vec4 rows),
    /// and the weights lose nothing that matters as f16: F16 and BF16 are
    /// exact there, the quantized types' rounding is far below their
    /// quantization error; F32 weights (the reference models' files) would
    /// lose 13 bits and stay on the SIMT kernel, in f32 throughout.
    /// `EDDY_NO_COOP=1` keeps the SIMT kernel (benchmarks, comparisons).
    fn coop_matmul(&self, m: &GpuMatrix, x_stride: u64) -> bool {
        self.gpu.coop_matrix && m.dtype() != DType::F32 && m.cols() % 32 == 0 && x_stride % 4 == 0 && std::env::var_os("EDDY_NO_COOP").is_none()
    }

    /// matmul_coop.wgsl with 64 columns per step instead of 32: on the H200 3-5%
    /// faster for the dense mat-mats, 10% slower for the grouped MoE ones.
    /// `EDDY_COOP_BK=32` or `=64` overrides (benchmarks).
    fn coop_bk64(&self, m: &GpuMatrix, grouped: bool) -> bool {
        let wanted = match std::env::var("EDDY_COOP_BK").as_deref() {
            Ok("32") => false,
            Ok("64") => true,
            _ => !grouped,
        };
        wanted && m.cols() % 64 == 0 && coop_workgroup_bytes(64, 64) <= self.gpu.limits.max_compute_workgroup_storage_size
    }

    fn dispatch(&self, key: KernelKey, params: Option<&[u8]>, buffers: &[&wgpu::Buffer], groups: [Count; 2], label: impl Into<String>) -> Dispatch {
        let label = label.into();
        let kernel = self.kernels.get(self.gpu, &key);
        let params_buf = params.map(|p| uniform_bytes(self.gpu, &label, p));
        let mut all: Vec<&wgpu::Buffer> = Vec::with_capacity(buffers.len() + 2);
        if let Some(p) = &params_buf {
            all.push(p);
        }
        all.push(self.step);
        all.extend_from_slice(buffers);
        Dispatch::new(self.gpu, kernel, &all, groups, label)
    }

    /// y[row] = w * x[row] / rms(x[row]) over rows of `n`; with `last_only`,
    /// just the pass's last row, into row 0.
    pub fn rmsnorm(&self, x: &wgpu::Buffer, w: &wgpu::Buffer, y: &wgpu::Buffer, n: u32, eps: f32, last_only: bool) -> Dispatch {
        let p = RmsnormParams { n, eps, last_only: last_only as u32, _pad: 0 };
        let groups = if last_only { Count::Fixed(1) } else { Count::tokens() };
        self.dispatch(KernelKey::new("rmsnorm.wgsl"), Some(bytemuck::bytes_of(&p)), &[x, w, y], [groups, Count::Fixed(1)], "rmsnorm")
    }

    /// x[row] += w * t[row] / rms(t[row]): a sublayer's output normed into
    /// the residual stream (Gemma's post-norms).
    pub fn rmsnorm_add(&self, t: &wgpu::Buffer, w: &wgpu::Buffer, x: &wgpu::Buffer, n: u32, eps: f32) -> Dispatch {
        let p = RmsnormParams { n, eps, last_only: 0, _pad: 0 };
        let key = KernelKey::new("rmsnorm.wgsl").define("ADD");
        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[t, w, x], [Count::tokens(), Count::Fixed(1)], "rmsnorm+add")
    }

    /// y[t, out_first + row] (+)= W · x[t] for every part of `m`, over `tokens` tokens.
    #[allow(clippy::too_many_arguments)]
    pub fn linear(&self, product: Product, m: &GpuMatrix, x: &wgpu::Buffer, x_stride: u64, y: &wgpu::Buffer, y_stride: u64, out_first: u64, ep: Epilogue, tokens: Count) -> Vec<Dispatch> {
        let define = match ep {
            Epilogue::Store => "STORE",
            Epilogue::Add => "ADD",
        };
        let mut out = Vec::new();
        for (i, part) in m.parts.iter().enumerate() {
            let g = geom(m, i);
            let first = (out_first + part.first_row) as u32;
            let dispatch = match product {
                Product::MatVec => {
                    let units = m.cols() / dot_unit(m.dtype());
                    let p = MatvecParams { geom: g, units: units as u32, n_out: part.rows as u32, out_first: first, out_stride: y_stride as u32, x_stride: x_stride as u32, cols: m.cols() as u32, ..Default::default() };
                    let (key, gx) = self.mv_plan(m, x_stride, &[define], part.rows, false, x_stride == m.cols(), true);
                    let groups = [gx, tokens];
                    self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, x, y], groups, format!("matvec {} {}x{}", m.dtype(), part.rows, m.cols()))
                }
                Product::MatMul => {
                    let p = MatmulParams { geom: g, k: m.cols() as u32, n_out: part.rows as u32, out_first: first, out_stride: y_stride as u32, x_stride: x_stride as u32, ..Default::default() };
                    let label = format!("matmul {} {}x{}", m.dtype(), part.rows, m.cols());
                    let (key, tile_rows, tile_tokens) = self.matmul_key(m, false, x_stride, &[define]);
                    let row_tiles = Count::Fixed((part.rows as u32).div_ceil(tile_rows));
                    if self.coop_wide(m, part.rows, x_stride) {
                        // Passes of WIDE_FROM tokens and more take 128-token
                        // tiles, shorter ones (whose last tile would be mostly
                        // empty) 64-token ones: one of the two runs.
                        let (wide_key, _, wide_tokens) = self.matmul_key(m, true, x_stride, &[define]);
                        out.push(self.dispatch(wide_key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, x, y], [row_tiles, Count::TokensWithin { div: wide_tokens, from: WIDE_FROM, below: u32::MAX }], format!("{label} wide")));
                        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, x, y], [row_tiles, Count::TokensWithin { div: tile_tokens, from: 0, below: WIDE_FROM }], label)
                    } else {
                        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, x, y], [row_tiles, Count::Tokens { per: 1, div: tile_tokens }], label)
                    }
                }
            };
            out.push(dispatch);
        }
        out
    }

    /// y[t, out_first + row] = W · rmsnorm(x[t]) (decode): the norm fused into the mat-vec.
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_norm(&self, m: &GpuMatrix, x: &wgpu::Buffer, gain: &wgpu::Buffer, eps: f32, y: &wgpu::Buffer, y_stride: u64, out_first: u64, tokens: Count) -> Vec<Dispatch> {
        let units = m.cols() / dot_unit(m.dtype());
        m.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let g = geom(m, i);
                let first = (out_first + part.first_row) as u32;
                let p = MatvecParams { geom: g, units: units as u32, n_out: part.rows as u32, out_first: first, out_stride: y_stride as u32, x_stride: m.cols() as u32, norm_eps: eps, cols: m.cols() as u32, ..Default::default() };
                let (key, gx) = self.mv_plan(m, m.cols(), &["STORE", "NORM"], part.rows, false, true, true);
                self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, x, y, gain], [gx, tokens], format!("matvec+norm {} {}x{}", m.dtype(), part.rows, m.cols()))
            })
            .collect()
    }

    /// y[t, p] = silu(gate_p · x[t]) * (up_p · x[t]) over a gate/up matrix
    /// interleaved in tiles of `tile` (decode).
    #[allow(clippy::too_many_arguments)]
    pub fn swiglu_matvec(&self, m: &GpuMatrix, tile: u64, x: &wgpu::Buffer, norm: Norm<'_>, y: &wgpu::Buffer, width: u64, act: Activation) -> Vec<Dispatch> {
        let units = m.cols() / dot_unit(m.dtype());
        let eps = norm.map_or(0.0, |n| n.1);
        m.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let g = geom(m, i);
                let pairs = part.rows / 2;
                let p = MatvecParams { geom: g, units: units as u32, n_out: pairs as u32, out_first: (part.first_row / 2) as u32, out_stride: width as u32, x_stride: m.cols() as u32, tile: tile as u32, norm_eps: eps, cols: m.cols() as u32, ..Default::default() };
                let mut defines: Vec<&'static str> = vec!["SWIGLU"];
                if norm.is_some() {
                    defines.push("NORM");
                }
                if act == Activation::GeluTanh {
                    defines.push("GELU");
                }
                let (key, gx) = self.mv_plan(m, m.cols(), &defines, pairs, true, true, true);
                let mut buffers = vec![&part.buffer, x, y];
                if let Some((gain, _)) = norm {
                    buffers.push(gain);
                }
                let groups = [gx, Count::tokens()];
                self.dispatch(key, Some(bytemuck::bytes_of(&p)), &buffers, groups, format!("swiglu-matvec{} {} {}x{}", if norm.is_some() { "+norm" } else { "" }, m.dtype(), part.rows, m.cols()))
            })
            .collect()
    }

    /// a[t, p] = act(z[t, gate_p]) * z[t, up_p] with z rows of 2 * width
    /// (SwiGLU, or GeGLU with [`Activation::GeluTanh`]).
    pub fn swiglu(&self, z: &wgpu::Buffer, a: &wgpu::Buffer, width: u64, tile: u64, act: Activation) -> Dispatch {
        let p = SwigluParams { width: width as u32, tile: tile as u32, z_stride: (2 * width) as u32, _pad: 0 };
        let groups = [Count::Fixed((width as u32).div_ceil(64)), Count::tokens()];
        let mut key = KernelKey::new("swiglu.wgsl");
        if act == Activation::GeluTanh {
            key = key.define("GELU");
        }
        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[z, a], groups, "swiglu")
    }

    /// The rows of a pass's token slots through SwiGLU: a[r, p] for
    /// `rows` rows (the batched MoE prefill: one row per (token, slot)).
    pub fn swiglu_rows(&self, z: &wgpu::Buffer, a: &wgpu::Buffer, width: u64, tile: u64, rows: Count) -> Dispatch {
        let p = SwigluParams { width: width as u32, tile: tile as u32, z_stride: (2 * width) as u32, _pad: 0 };
        let groups = [Count::Fixed((width as u32).div_ceil(64)), rows];
        let key = KernelKey::new("swiglu.wgsl").define("ROWS");
        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[z, a], groups, "swiglu")
    }

    /// Sorts the pass's (token, slot) pairs by expert into `plan` (moe_plan.wgsl).
    pub fn moe_plan(&self, n_experts: u32, top_k: u32, sel: &wgpu::Buffer, plan: &wgpu::Buffer, order_off: u32) -> Dispatch {
        let p = MoePlanParams { n_experts, k: top_k, order_off, _pad: 0 };
        self.dispatch(KernelKey::new("moe_plan.wgsl"), Some(bytemuck::bytes_of(&p)), &[sel, plan], [Count::Fixed(1), Count::Fixed(1)], "moe-plan")
    }

    /// y[slot] = expert(slot) · x[slot / x_row_div] for every planned slot, as
    /// tiled mat-mats over each expert's slots (the batched MoE prefill).
    #[allow(clippy::too_many_arguments)]
    pub fn moe_grouped(&self, m: &GpuMatrix, rows_per_expert: u64, x: &wgpu::Buffer, x_stride: u64, x_row_div: u32, y: &wgpu::Buffer, plan: &wgpu::Buffer, order_off: u32, tiles: Count) -> Vec<Dispatch> {
        m.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let g = geom(m, i);
                let e_lo = part.first_row / rows_per_expert;
                let e_hi = e_lo + part.rows / rows_per_expert;
                let p = MatmulParams { geom: g, k: m.cols() as u32, n_out: rows_per_expert as u32, out_first: 0, out_stride: rows_per_expert as u32, x_stride: x_stride as u32, e_lo: e_lo as u32, e_hi: e_hi as u32, rows_per_expert: rows_per_expert as u32, x_row_div, order_off, ..Default::default() };
                let (key, _, _) = self.matmul_key(m, false, x_stride, &["STORE", "GROUPED"]);
                let groups = [Count::Fixed((rows_per_expert as u32).div_ceil(128)), tiles];
                self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, x, y, plan], groups, format!("moe-matmul {} {}x{}", m.dtype(), part.rows, m.cols()))
            })
            .collect()
    }

    /// x[t] += Σ_s weight[t, s] * y[t * k + s] (the batched MoE prefill's outputs).
    pub fn moe_combine(&self, y: &wgpu::Buffer, sel_w: &wgpu::Buffer, x: &wgpu::Buffer, dim: u64, top_k: u32) -> Dispatch {
        let p = MoeCombineParams { dim: dim as u32, k: top_k, ..Default::default() };
        self.dispatch(KernelKey::new("moe_combine.wgsl"), Some(bytemuck::bytes_of(&p)), &[y, sel_w, x], [Count::Fixed((dim as u32).div_ceil(256)), Count::tokens()], "moe-combine")
    }

    /// x[t] = scale * row tokens[t] of `m`.
    pub fn embed(&self, m: &GpuMatrix, tokens: &wgpu::Buffer, x: &wgpu::Buffer, scale: f32) -> Vec<Dispatch> {
        let groups8 = (m.cols() / 8) as u32;
        m.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let g = geom(m, i);
                let p = EmbedParams { geom: g, first_row: part.first_row as u32, groups: groups8, dim: m.cols() as u32, scale };
                let key = KernelKey::new("embed.wgsl").weight(m.dtype());
                self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, tokens, x], [Count::Fixed(groups8.div_ceil(64)), Count::tokens()], format!("embed {}", m.dtype()))
            })
            .collect()
    }

    /// Marks the pass's tokens in the repetition-penalty bitset.
    pub fn mark_seen(&self, tokens: &wgpu::Buffer, seen: &wgpu::Buffer) -> Dispatch {
        self.dispatch(KernelKey::new("mark_seen.wgsl"), None, &[tokens, seen], [Count::Tokens { per: 1, div: 64 }, Count::Fixed(1)], "mark-seen")
    }

    /// LFM2's gated short conv over z = [B | C | x] rows of 3 * dim.
    pub fn shortconv(&self, z: &wgpu::Buffer, taps: &wgpu::Buffer, state: &wgpu::Buffer, y: &wgpu::Buffer, dim: u32) -> Dispatch {
        let p = ShortconvParams { dim, ..Default::default() };
        self.dispatch(KernelKey::new("shortconv.wgsl"), Some(bytemuck::bytes_of(&p)), &[z, taps, state, y], [Count::Fixed(dim.div_ceil(64)), Count::Fixed(1)], "shortconv")
    }

    /// QK norm (when `norms` is given), RoPE, and the KV-cache write.
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        shape: HeadShape,
        qkv: &wgpu::Buffer,
        norms: Option<(&wgpu::Buffer, &wgpu::Buffer, f32)>,
        neox: bool,
        table: &wgpu::Buffer,
        q: &wgpu::Buffer,
        kv: (&wgpu::Buffer, &wgpu::Buffer),
        kv_f16: bool,
    ) -> Dispatch {
        let stride = (shape.n_heads + 2 * shape.n_kv_heads) * shape.head_dim;
        let (qn, kn, eps) = norms.unwrap_or((table, table, 0.0));
        let p = RopeParams { n_heads: shape.n_heads, n_kv_heads: shape.n_kv_heads, head_dim: shape.head_dim, qkv_stride: stride, capacity: shape.capacity, has_norm: norms.is_some() as u32, neox: neox as u32, eps };
        let mut key = KernelKey::new("rope.wgsl");
        if kv_f16 {
            key = key.define("KV_F16");
        }
        let slots = shape.n_heads + 2 * shape.n_kv_heads;
        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[qkv, qn, kn, table, q, kv.0, kv.1], [Count::Fixed(slots), Count::tokens()], "rope")
    }

    /// Causal attention of the pass's queries over the cache.
    pub fn attention(&self, shape: HeadShape, q: &wgpu::Buffer, kv: (&wgpu::Buffer, &wgpu::Buffer), out: &wgpu::Buffer, kv_f16: bool) -> Dispatch {
        let p = AttentionParams { n_heads: shape.n_heads, n_kv_heads: shape.n_kv_heads, head_dim: shape.head_dim, capacity: shape.capacity, scale: shape.scale, window: shape.window, ..Default::default() };
        let mut key = KernelKey::new("attention.wgsl");
        if kv_f16 {
            key = key.define("KV_F16");
        }
        if shape.window != 0 {
            key = key.define("WINDOW");
        }
        self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[q, kv.0, kv.1, out], [Count::Fixed(shape.n_heads), Count::tokens()], "attention")
    }

    /// Decode attention split over tiles of 64 keys, then merged: many
    /// workgroups for long contexts. `partial` holds n_heads × max_splits × (head_dim + 2) floats.
    pub fn attention_decode(&self, shape: HeadShape, q: &wgpu::Buffer, kv: (&wgpu::Buffer, &wgpu::Buffer), partial: &wgpu::Buffer, out: &wgpu::Buffer, kv_f16: bool) -> [Dispatch; 2] {
        let max_splits = shape.capacity.div_ceil(64);
        // Query heads per workgroup: the most of one GQA group that fit its
        // workgroup memory (8 heads, 1024 query values).
        let group = shape.n_heads / shape.n_kv_heads;
        let per_chunk = (1..=group.min(8)).rev().find(|c| group % c == 0 && c * shape.head_dim <= 1024).unwrap_or(1);
        let p = AttentionParams { n_heads: shape.n_heads, n_kv_heads: shape.n_kv_heads, head_dim: shape.head_dim, capacity: shape.capacity, scale: shape.scale, max_splits, heads_per_chunk: per_chunk, window: shape.window };
        let mut key = KernelKey::new("attention_split.wgsl");
        if kv_f16 {
            key = key.define("KV_F16");
        }
        // Only sliding-window layers pay for the window's tests.
        if shape.window != 0 {
            key = key.define("WINDOW");
        }
        let chunks = shape.n_heads / per_chunk;
        let split = self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[q, kv.0, kv.1, partial], [Count::Fixed(chunks), Count::Keys { div: 64 }], "attention-split");
        let p = AttentionMergeParams { n_heads: shape.n_heads, head_dim: shape.head_dim, max_splits, _pad: 0 };
        let merge = self.dispatch(KernelKey::new("attention_merge.wgsl"), Some(bytemuck::bytes_of(&p)), &[partial, out], [Count::Fixed(shape.n_heads), Count::Fixed(1)], "attention-merge");
        [split, merge]
    }

    /// Top-k routing from router logits into (expert ids, weights).
    pub fn moe_route(&self, r: Routing, logits: &wgpu::Buffer, bias: &wgpu::Buffer, sel: &wgpu::Buffer, sel_w: &wgpu::Buffer) -> Dispatch {
        let p = MoeRouteParams { n_experts: r.n_experts, k: r.top_k, norm: r.norm_topk as u32, scale: r.scale };
        self.dispatch(KernelKey::new("moe_route.wgsl"), Some(bytemuck::bytes_of(&p)), &[logits, bias, sel, sel_w], [Count::tokens(), Count::Fixed(1)], "moe-route")
    }

    /// act[t*k + s] = SwiGLU of the expert chosen in slot s, for each token.
    /// With `route` (the routing and its logits and bias) the kernel chooses
    /// the experts itself and writes them and their weights to `sel`/`sel_w`
    /// (as [`Ops::moe_route`] would); otherwise it reads them there.
    #[allow(clippy::too_many_arguments)]
    pub fn moe_gate_up(&self, m: &GpuMatrix, tile: u64, expert_ffn: u64, top_k: u32, x: &wgpu::Buffer, norm: Norm<'_>, act: &wgpu::Buffer, sel: &wgpu::Buffer, sel_w: &wgpu::Buffer, route: Option<RouteInput<'_>>) -> Vec<Dispatch> {
        let (fe, d) = (expert_ffn, m.cols());
        let units = d / dot_unit(m.dtype());
        let eps = norm.map_or(0.0, |n| n.1);
        m.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let g = geom(m, i);
                let e_lo = part.first_row / (2 * fe);
                let e_hi = e_lo + part.rows / (2 * fe);
                let p = MatvecParams { geom: g, units: units as u32, n_out: fe as u32, out_first: 0, out_stride: fe as u32, x_stride: d as u32, tile: tile as u32, e_lo: e_lo as u32, e_hi: e_hi as u32, k: top_k, rows_per_expert: (2 * fe) as u32, norm_eps: eps, cols: d as u32 };
                let mut defines: Vec<&'static str> = vec!["MOE", "MOE_GATE_UP"];
                if norm.is_some() {
                    defines.push("NORM");
                }
                if route.is_some() {
                    defines.push("ROUTE");
                }
                let (mut key, gx) = self.mv_plan(m, d, &defines, fe, true, true, true);
                let mut buffers = vec![&part.buffer, x, act, sel, sel_w];
                if let Some((gain, _)) = norm {
                    buffers.push(gain);
                }
                if let Some(r) = &route {
                    assert!(r.routing.n_experts <= 256 && r.routing.top_k <= 8, "routing inside the gate/up mat-vec takes up to 256 experts and 8 slots");
                    key = key.constant("NE", r.routing.n_experts).constant("ROUTE_NORM", r.routing.norm_topk as u32).constant("ROUTE_SCALE", r.routing.scale.to_bits());
                    buffers.extend([r.logits, r.bias]);
                }
                let groups = [gx, Count::Tokens { per: top_k, div: 1 }];
                let what = format!("{}{}", if route.is_some() { "+route" } else { "" }, if norm.is_some() { "+norm" } else { "" });
                self.dispatch(key, Some(bytemuck::bytes_of(&p)), &buffers, groups, format!("moe-gate-up{what} {} {}x{}", m.dtype(), part.rows, m.cols()))
            })
            .collect()
    }

    /// x[t] += Σ_s weight_s * down_{expert_s} · act[t*k + s], for stacked
    /// down matrices of `hidden` rows per expert.
    pub fn moe_down(&self, m: &GpuMatrix, hidden: u64, top_k: u32, act: &wgpu::Buffer, x: &wgpu::Buffer, sel: &wgpu::Buffer, sel_w: &wgpu::Buffer) -> Vec<Dispatch> {
        let fe = m.cols();
        let units = fe / dot_unit(m.dtype());
        m.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let g = geom(m, i);
                let e_lo = part.first_row / hidden;
                let e_hi = e_lo + part.rows / hidden;
                let p = MatvecParams { geom: g, units: units as u32, n_out: hidden as u32, out_first: 0, out_stride: hidden as u32, x_stride: fe as u32, tile: 0, e_lo: e_lo as u32, e_hi: e_hi as u32, k: top_k, rows_per_expert: hidden as u32, norm_eps: 0.0, cols: fe as u32 };
                let (key, gx) = if self.tuning.xr_always || std::env::var_os("EDDY_MOE_X_GLOBAL").is_some() {
                    self.mv_plan(m, fe, &["MOE", "MOE_DOWN"], hidden, false, false, false)
                } else {
                    // The token's k slots of x staged together (XSHARED) where they fit.
                    let tuning = self.tuning_for(&["MOE"]);
                    // Each workgroup's outputs sum all k slots: k times the work of a dense output.
                    let shape = MatvecShape::new(units, hidden * u64::from(top_k), tuning.rows_for(m.dtype(), true), tuning);
                    let stage_cols = if fe % 4 == 0 { u64::from(top_k) * fe } else { 0 };
                    (self.matvec_key(m.dtype(), &["MOE", "MOE_DOWN"], shape, stage_cols, fe, part.rows), shape.groups(hidden))
                };
                let key = key.constant("KS", top_k);
                let groups = [gx, Count::tokens()];
                self.dispatch(key, Some(bytemuck::bytes_of(&p)), &[&part.buffer, act, x, sel, sel_w], groups, format!("moe-down {} {}x{}", m.dtype(), part.rows, m.cols()))
            })
            .collect()
    }

    /// Samples the next token from `logits` among the `allowed` ones (a bit
    /// per token; see shaders/sample.wgsl).
    #[allow(clippy::too_many_arguments)]
    pub fn sample(&self, sampler: &wgpu::Buffer, logits: &wgpu::Buffer, seen: &wgpu::Buffer, tokens: &wgpu::Buffer, out_ids: &wgpu::Buffer, allowed: &wgpu::Buffer) -> Dispatch {
        let kernel = self.kernels.get(self.gpu, &KernelKey::new("sample.wgsl"));
        Dispatch::new(self.gpu, kernel, &[sampler, self.step, logits, seen, tokens, out_ids, allowed], [Count::Fixed(1), Count::Fixed(1)], "sample")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes the default tuning gives LFM2's staged mat-vecs (units of
    /// 32 columns; F32 units of 8), as measured best on the H200.
    #[test]
    fn default_matvec_shapes() {
        let t = Tuning::DEFAULT;
        let shape = |units, outputs, rows| {
            let s = MatvecShape::new(units, outputs, rows, t);
            (s.lanes, s.rows, s.workgroups(outputs))
        };
        // 1.2B gate/up (8192 pairs): two outputs per group, 256 workgroups.
        assert_eq!(shape(64, 8192, 2), (16, 2, 256));
        // 2048² and 6144-row in_proj: one output per group.
        assert_eq!(shape(64, 2048, 2), (16, 1, 128));
        assert_eq!(shape(64, 6144, 2), (16, 1, 384));
        // The 32-row F32 router (256 units of 8): widened to whole workgroups.
        assert_eq!(shape(256, 32, 1), (256, 1, 32));
        // A 4-unit row cannot widen past its units.
        assert_eq!(shape(4, 8, 1).0, 4);
        // The CPU tuning never changes the shape.
        let c = MatvecShape::new(64, 32, 1, Tuning::CPU);
        assert_eq!((c.lanes, c.rows), (4, 1));
    }
}

/// Workgroup memory matmul_coop.wgsl takes with `bm` tokens and `bk`
/// columns per step: x and weight tiles of f16 rows padded by 8, and the
/// 8 KiB of f32 for checked stores (128 tokens with 64 columns: 44 KiB, over
/// WebGPU's 16 KiB default and some GPUs' 32 KiB).
pub fn coop_workgroup_bytes(bm: u32, bk: u32) -> u32 {
    (bm + 128) * (bk + 8) * 2 + 8192
}

/// Prefill passes of at least this many tokens take matmul_coop.wgsl's
/// 128-token tiles where a mat-mat may (on the H200 a 48-token prompt ran
/// 11-13% slower with them, a 100-token one 2-5%, a 512-token one 3-20%
/// faster).
pub const WIDE_FROM: u32 = 256;
