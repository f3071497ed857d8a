//! Every kernel against a CPU reference on random inputs (the way ggml's
//! test-backend-ops checks its backends), on a device with `shader-f16` and on
//! one without. Matrices are split across several bindings on purpose.

mod common;

use engine::{
    formats::{quant, DType},
    model::Activation,
    gpu::{read_buffer, Gpu, GpuOptions},
    runtime::{
        kernels::{uniform, Count, Dispatch, Kernels},
        ops::{Epilogue, HeadShape, Ops, Product, RouteInput, Routing, Tuning},
        weights::{upload_matrix, GpuMatrix},
    },
};
use half::{bf16, f16};
use wgpu::util::DeviceExt;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.f(lo, hi)).collect()
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 32) as u8
    }
}

/// Random GGML bytes of `rows` × `cols` values, with sane scales.
fn random_weights(rng: &mut Rng, dtype: DType, rows: u64, cols: u64) -> Vec<u8> {
    let blocks = rows * cols / dtype.block_elems();
    let mut out = Vec::new();
    for _ in 0..blocks {
        let mut b: Vec<u8> = (0..dtype.block_bytes()).map(|_| rng.byte()).collect();
        let h = |v: f32| f16::from_f32(v).to_le_bytes();
        match dtype {
            DType::F32 => b.copy_from_slice(&rng.f(-1.0, 1.0).to_le_bytes()),
            DType::F16 => b.copy_from_slice(&h(rng.f(-1.0, 1.0))),
            DType::BF16 => b.copy_from_slice(&bf16::from_f32(rng.f(-1.0, 1.0)).to_le_bytes()),
            DType::Q8_0 | DType::Q4_0 | DType::Q5_0 => b[0..2].copy_from_slice(&h(rng.f(-0.05, 0.05))),
            DType::Q4_1 | DType::Q5_1 => {
                b[0..2].copy_from_slice(&h(rng.f(-0.05, 0.05)));
                b[2..4].copy_from_slice(&h(rng.f(-0.3, 0.3)));
            }
            DType::Q4K | DType::Q5K => {
                b[0..2].copy_from_slice(&h(rng.f(0.0, 0.002)));
                b[2..4].copy_from_slice(&h(rng.f(0.0, 0.002)));
            }
            DType::Q6K => b[208..210].copy_from_slice(&h(rng.f(0.0, 0.002))),
            DType::Q2K => {
                b[80..82].copy_from_slice(&h(rng.f(0.0, 0.002)));
                b[82..84].copy_from_slice(&h(rng.f(0.0, 0.002)));
            }
            DType::Q3K => b[108..110].copy_from_slice(&h(rng.f(0.0, 0.002))),
            DType::IQ4NL => b[0..2].copy_from_slice(&h(rng.f(-0.005, 0.005))),
        }
        out.extend(b);
    }
    out
}

struct Harness {
    gpu: Gpu,
    kernels: Kernels,
    step: wgpu::Buffer,
    tuning: std::cell::Cell<Tuning>,
}

impl Harness {
    fn new(f16: bool) -> Self {
        Self::with(f16, true)
    }

    fn with(f16: bool, subgroups: bool) -> Self {
        let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: f16, allow_subgroups: subgroups, ..Default::default() })).expect("a Vulkan adapter");
        assert_eq!(gpu.f16, f16 && gpu.adapter_features.contains(wgpu::Features::SHADER_F16));
        assert_eq!(gpu.subgroups, subgroups && gpu.adapter_features.contains(wgpu::Features::SUBGROUP));
        let step = uniform(&gpu, "step", &[0; 4]);
        Self { gpu, kernels: Kernels::new(), step, tuning: std::cell::Cell::new(Tuning::default()) }
    }

    fn ops(&self) -> Ops<'_> {
        Ops { gpu: &self.gpu, kernels: &self.kernels, step: &self.step, tuning: self.tuning.get() }
    }

    fn buffer(&self, bytes: &[u8]) -> wgpu::Buffer {
        let mut data = bytes.to_vec();
        data.resize(data.len().max(16).div_ceil(4) * 4, 0);
        self.gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: &data,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    fn f32s(&self, v: &[f32]) -> wgpu::Buffer {
        self.buffer(bytemuck::cast_slice(v))
    }

    fn u32s(&self, v: &[u32]) -> wgpu::Buffer {
        self.buffer(bytemuck::cast_slice(v))
    }

    fn run(&self, dispatches: &[Dispatch], n_tokens: u32, pos0: u32, step: u32) {
        self.gpu.queue.write_buffer(&self.step, 0, bytemuck::cast_slice(&[n_tokens, pos0, step, 0]));
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass, n_tokens, pos0);
            }
        }
        self.gpu.queue.submit([enc.finish()]);
    }

    fn read_f32(&self, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
        let bytes = pollster::block_on(read_buffer(&self.gpu, b, 4 * n as u64)).unwrap();
        bytemuck::cast_slice::<u8, f32>(&bytes)[..n].to_vec()
    }

    fn read_u32(&self, b: &wgpu::Buffer, n: usize) -> Vec<u32> {
        let bytes = pollster::block_on(read_buffer(&self.gpu, b, 4 * n as u64)).unwrap();
        bytemuck::cast_slice::<u8, u32>(&bytes)[..n].to_vec()
    }

    /// A matrix split into parts of about a third each, to cover multi-binding reads.
    fn matrix(&self, dtype: DType, rows: u64, cols: u64, bytes: &[u8], granularity: u64) -> GpuMatrix {
        let row_bytes = engine::runtime::weights::RowLayout::new(dtype, cols).unwrap().gpu_row_bytes();
        let limit = row_bytes * (rows / 3).div_ceil(granularity).max(1) * granularity;
        let m = upload_matrix(&self.gpu, "w", dtype, rows, cols, bytes, limit);
        assert!(m.parts.len() > 1 || rows < 3 * granularity, "the test matrix should span several bindings");
        m
    }
}

/// Every kernel variant the devices can ask for: with and without
/// `shader-f16`, with and without subgroups (the browser has neither today).
fn both_devices(mut f: impl FnMut(&Harness, &str)) {
    for (f16, subgroups) in [(true, true), (false, false), (true, false), (false, true)] {
        let h = Harness::with(f16, subgroups);
        let dev = format!("{} shader-f16, {} subgroups", if f16 { "with" } else { "without" }, if subgroups { "with" } else { "without" });
        f(&h, &dev);
    }
}

fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    common::rel_err(got, want)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cols_for(dtype: DType) -> u64 {
    if dtype.block_elems() == 256 { 512 } else { 96 }
}

#[test]
fn embed_every_type() {
    both_devices(|h, dev| {
        let mut rng = Rng(1);
        for dtype in DType::ALL {
            let (rows, cols) = (37, cols_for(dtype));
            let bytes = random_weights(&mut rng, dtype, rows, cols);
            let m = h.matrix(dtype, rows, cols, &bytes, 1);
            let w = quant::dequantize(dtype, &bytes);
            let tokens = [5u32, 0, 36, 17, 5];
            let tb = h.u32s(&tokens);
            let x = h.f32s(&vec![0.0; tokens.len() * cols as usize]);
            // Gemma scales its embedding by √hidden; the others by 1.
            for scale in [1.0f32, 25.298221] {
                h.run(&h.ops().embed(&m, &tb, &x, scale), tokens.len() as u32, 0, 0);
                let got = h.read_f32(&x, tokens.len() * cols as usize);
                let want: Vec<f32> = tokens.iter().flat_map(|&t| w[(t as u64 * cols) as usize..((t as u64 + 1) * cols) as usize].iter().map(|v| v * scale).collect::<Vec<_>>()).collect();
                assert_eq!(got, want, "embed {dtype} {dev} scale {scale}");
            }
        }
    });
}

fn check_linear(h: &Harness, pass: Product, dtype: DType, tokens: usize, ep: Epilogue, dev: &str) {
    check_linear_strided(h, pass, dtype, tokens, ep, 0, dev);
}

/// `x_pad`: extra columns between tokens' x rows (mat-vecs then read x from
/// global memory instead of staging it).
fn check_linear_strided(h: &Harness, pass: Product, dtype: DType, tokens: usize, ep: Epilogue, x_pad: u64, dev: &str) {
    let mut rng = Rng(7 + dtype.ggml_id() as u64);
    let (rows, cols) = (70u64, cols_for(dtype));
    let bytes = random_weights(&mut rng, dtype, rows, cols);
    let m = h.matrix(dtype, rows, cols, &bytes, 1);
    let w = quant::dequantize(dtype, &bytes);
    let x_stride = cols + x_pad;
    let x = rng.vec(tokens * x_stride as usize, -1.0, 1.0);
    let out_stride = rows + 5;
    let y0 = rng.vec(tokens * out_stride as usize, -1.0, 1.0);
    let (xb, yb) = (h.f32s(&x), h.f32s(&y0));
    h.run(&h.ops().linear(pass, &m, &xb, x_stride, &yb, out_stride, 3, ep, Count::tokens()), tokens as u32, 0, 0);
    let got = h.read_f32(&yb, y0.len());
    let mut want = y0.clone();
    for t in 0..tokens {
        for r in 0..rows as usize {
            let xt = &x[t * x_stride as usize..][..cols as usize];
            let v = dot(&w[r * cols as usize..(r + 1) * cols as usize], xt);
            let o = t * out_stride as usize + 3 + r;
            want[o] = if ep == Epilogue::Add { want[o] + v } else { v };
        }
    }
    let e = rel_err(&got, &want);
    let tol = if pass == Product::MatMul { prefill_tolerance(h, dtype) } else { 1e-4 };
    assert!(e < tol, "{pass:?} {ep:?} {dtype} over {tokens} tokens {dev}: relative error {e:.2e}");
}

/// Prefill mat-mats on the matrix units (matmul_coop.wgsl) multiply x and the
/// weights rounded to f16 (11 significant bits) with f32 sums; the SIMT
/// kernels multiply in f32 (as the matrix-unit kernel does for F32 weights).
fn prefill_tolerance(h: &Harness, dtype: DType) -> f32 {
    if h.gpu.coop_matrix && dtype != DType::F32 { 3e-3 } else { 1e-4 }
}

/// Mat-mats over whole 64-token × 128-row tiles (which the matrix-unit kernel
/// stores straight to Y, ADD starting from Y) and a partial tile after them;
/// on the matrix units also with 128-token tiles (Tuning::coop_wide_rows,
/// over passes of WIDE_FROM tokens and more).
#[test]
fn matmul_whole_and_partial_tiles() {
    both_devices(|h, dev| {
        let wide: &[u64] = if h.gpu.coop_matrix { &[u64::MAX, 0] } else { &[u64::MAX] };
        for (dtype, &coop_wide_rows) in [DType::Q4_0, DType::F16, DType::Q6K].into_iter().flat_map(|d| wide.iter().map(move |w| (d, w))) {
            h.tuning.set(Tuning { coop_wide_rows, ..Tuning::DEFAULT });
            for ep in [Epilogue::Store, Epilogue::Add] {
                let mut rng = Rng(41 + dtype.ggml_id() as u64);
                // 128-token tiles serve passes of WIDE_FROM tokens and more: two whole ones and a partial one.
                let tokens = if coop_wide_rows == 0 { engine::runtime::ops::WIDE_FROM as usize + 5 } else { 133 };
                let (rows, cols) = (768u64, if dtype.block_elems() == 256 { 256 } else { 64 });
                let bytes = random_weights(&mut rng, dtype, rows, cols);
                // Parts of 256 rows: two whole row tiles each.
                let m = h.matrix(dtype, rows, cols, &bytes, 256);
                assert!(m.parts.iter().all(|p| p.rows % 128 == 0), "whole row tiles");
                let w = quant::dequantize(dtype, &bytes);
                let x = rng.vec(tokens * cols as usize, -1.0, 1.0);
                let out_stride = rows + 4;
                let y0 = rng.vec(tokens * out_stride as usize, -1.0, 1.0);
                let (xb, yb) = (h.f32s(&x), h.f32s(&y0));
                h.run(&h.ops().linear(Product::MatMul, &m, &xb, cols, &yb, out_stride, 4, ep, Count::tokens()), tokens as u32, 0, 0);
                let got = h.read_f32(&yb, y0.len());
                let mut want = y0.clone();
                for t in 0..tokens {
                    for r in 0..rows as usize {
                        let v = dot(&w[r * cols as usize..(r + 1) * cols as usize], &x[t * cols as usize..(t + 1) * cols as usize]);
                        let o = t * out_stride as usize + 4 + r;
                        want[o] = if ep == Epilogue::Add { want[o] + v } else { v };
                    }
                }
                let e = rel_err(&got, &want);
                assert!(e < prefill_tolerance(h, dtype), "{ep:?} {dtype} {rows}x{cols} over {tokens} tokens {dev} (128-token tiles from {coop_wide_rows} rows): relative error {e:.2e}");
            }
        }
    });
}

/// The mat-vec shapes a device may be tuned to: x in registers (several
/// lanes per group, outputs per group, two chunks per lane where lanes are
/// few) and the reference kernel that stages x.
const TUNINGS: [Tuning; 9] = [
    Tuning::DEFAULT,
    Tuning { matvec_xr: true, xr_always: true, ..Tuning::DEFAULT },
    Tuning { matvec_wg: 64, matvec_lanes: 64, matvec_xr: true, xr_always: true, int8_min_weights: u64::MAX, moe_lanes: 64, xr_min_rows: 1, xr_bytes: 60, matvec_rows: 1, moe_rows: 1, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: false, prefill_by_token: 1, coop_wide_rows: u64::MAX },
    Tuning { matvec_wg: 256, matvec_lanes: 16, matvec_xr: true, xr_always: true, int8_min_weights: u64::MAX, moe_lanes: 16, xr_min_rows: 1, xr_bytes: 16, matvec_rows: 1, moe_rows: 1, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: false, prefill_by_token: 1, coop_wide_rows: u64::MAX },
    Tuning { matvec_wg: 128, matvec_lanes: 1, matvec_xr: true, xr_always: true, int8_min_weights: u64::MAX, moe_lanes: 1, xr_min_rows: 1, xr_bytes: 256, matvec_rows: 1, moe_rows: 1, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: false, prefill_by_token: 1, coop_wide_rows: u64::MAX },
    Tuning { matvec_wg: 128, matvec_lanes: 4, matvec_xr: false, xr_always: false, int8_min_weights: u64::MAX, moe_lanes: 4, xr_min_rows: 1, xr_bytes: 128, matvec_rows: 4, moe_rows: 3, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: false, prefill_by_token: 1, coop_wide_rows: u64::MAX },
    Tuning { matvec_wg: 128, matvec_lanes: 16, matvec_xr: false, xr_always: false, int8_min_weights: 0, moe_lanes: 16, xr_min_rows: 1, xr_bytes: 128, matvec_rows: 1, moe_rows: 1, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: false, prefill_by_token: 1, coop_wide_rows: u64::MAX },
    Tuning { matvec_wg: 64, matvec_lanes: 1, matvec_xr: false, xr_always: false, int8_min_weights: u64::MAX, moe_lanes: 1, xr_min_rows: 1, xr_bytes: 128, matvec_rows: 2, moe_rows: 8, rows_min_workgroups: 0, min_workgroups: 0, route_in_gate_up: false, prefill_by_token: 1, coop_wide_rows: u64::MAX },
    Tuning { matvec_wg: 256, matvec_lanes: 32, matvec_xr: false, xr_always: false, int8_min_weights: u64::MAX, moe_lanes: 32, xr_min_rows: 1, xr_bytes: 128, matvec_rows: 3, moe_rows: 2, rows_min_workgroups: 64, min_workgroups: 64, route_in_gate_up: true, prefill_by_token: 1, coop_wide_rows: u64::MAX },
];

/// Rows as long as real models' (2048 to 8192 columns), where a group spans
/// several subgroups and lanes own one or two chunks each.
#[test]
fn matvec_long_rows() {
    both_devices(|h, dev| {
        let mut rng = Rng(41);
        for (dtype, cols, tuning) in [
            (DType::Q4_0, 2048u64, Tuning { int8_min_weights: 0, ..Tuning::DEFAULT }),
            (DType::Q4_0, 2048u64, Tuning::DEFAULT),
            (DType::Q4_0, 2048u64, Tuning { xr_always: true, matvec_lanes: 64, ..Tuning::DEFAULT }),
            (DType::Q6K, 2048, Tuning { xr_always: true, ..Tuning::DEFAULT }),
            (DType::F16, 8192, Tuning::DEFAULT),
            (DType::Q4_1, 4096, Tuning { xr_always: true, matvec_lanes: 32, ..Tuning::DEFAULT }),
            (DType::Q8_0, 2048, Tuning { xr_always: true, matvec_wg: 64, ..Tuning::DEFAULT }),
            (DType::Q6K, 2048, Tuning { int8_min_weights: 0, ..Tuning::DEFAULT }),
            (DType::Q8_0, 2048, Tuning { int8_min_weights: 0, ..Tuning::DEFAULT }),
            (DType::Q4_1, 4096, Tuning { int8_min_weights: 0, ..Tuning::DEFAULT }),
            (DType::Q6K, 2048, Tuning { int8_min_weights: u64::MAX, ..Tuning::DEFAULT }),
            (DType::Q4_1, 4096, Tuning { int8_min_weights: u64::MAX, ..Tuning::DEFAULT }),
            // Several outputs per lane group: int8 x, float x with a constant unit count and without (4 lanes on 128 units).
            (DType::Q4_0, 2048, Tuning { int8_min_weights: 0, matvec_rows: 4, rows_min_workgroups: 0, min_workgroups: 0, ..Tuning::DEFAULT }),
            (DType::Q6K, 2048, Tuning { int8_min_weights: 0, matvec_rows: 3, rows_min_workgroups: 0, min_workgroups: 0, ..Tuning::DEFAULT }),
            (DType::Q4_1, 4096, Tuning { matvec_lanes: 4, matvec_rows: 4, int8_min_weights: u64::MAX, rows_min_workgroups: 0, min_workgroups: 0, ..Tuning::DEFAULT }),
            (DType::Q4_0, 2048, Tuning { int8_min_weights: u64::MAX, matvec_rows: 8, rows_min_workgroups: 0, min_workgroups: 0, ..Tuning::DEFAULT }),
        ] {
            h.tuning.set(tuning);
            let rows = 45u64;
            let bytes = random_weights(&mut rng, dtype, rows, cols);
            let m = h.matrix(dtype, rows, cols, &bytes, 1);
            let w = quant::dequantize(dtype, &bytes);
            let x = rng.vec(cols as usize, -1.0, 1.0);
            let gain = rng.vec(cols as usize, 0.5, 1.5);
            let y = h.f32s(&vec![0.0; rows as usize]);
            h.run(&h.ops().matvec_norm(&m, &h.f32s(&x), &h.f32s(&gain), 1e-5, &y, rows, 0, Count::tokens()), 1, 0, 0);
            let n = rms_ref(&x, &gain, 1e-5);
            let want: Vec<f32> = (0..rows as usize).map(|r| dot(&w[r * cols as usize..(r + 1) * cols as usize], &n)).collect();
            let e = rel_err(&h.read_f32(&y, want.len()), &want);
            assert!(e < 1e-4, "matvec+norm {dtype} {rows}x{cols} {dev} {tuning:?}: {e:.2e}");
        }
    });
}

#[test]
fn matvec_every_type() {
    both_devices(|h, dev| {
        for tuning in TUNINGS {
            h.tuning.set(tuning);
            for dtype in DType::ALL {
                check_linear(h, Product::MatVec, dtype, 1, Epilogue::Store, &format!("{dev} {tuning:?}"));
                check_linear(h, Product::MatVec, dtype, 3, Epilogue::Add, &format!("{dev} {tuning:?}"));
                check_linear_strided(h, Product::MatVec, dtype, 2, Epilogue::Store, 8, &format!("{dev} {tuning:?} x from global memory"));
            }
        }
    });
}

#[test]
fn matvec_with_fused_rmsnorm() {
    both_devices(|h, dev| {
        let mut rng = Rng(29);
        for tuning in TUNINGS {
            h.tuning.set(tuning);
            for dtype in [DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_1, DType::Q6K] {
                let (rows, cols, tokens) = (37u64, cols_for(dtype), 2usize);
                let bytes = random_weights(&mut rng, dtype, rows, cols);
                let m = h.matrix(dtype, rows, cols, &bytes, 1);
                let w = quant::dequantize(dtype, &bytes);
                let x = rng.vec(tokens * cols as usize, -2.0, 2.0);
                let gain = rng.vec(cols as usize, 0.5, 1.5);
                let y = h.f32s(&vec![0.0; tokens * rows as usize]);
                h.run(&h.ops().matvec_norm(&m, &h.f32s(&x), &h.f32s(&gain), 1e-5, &y, rows, 0, Count::tokens()), tokens as u32, 0, 0);
                let want: Vec<f32> = x
                    .chunks(cols as usize)
                    .flat_map(|xt| {
                        let n = rms_ref(xt, &gain, 1e-5);
                        (0..rows as usize).map(|r| dot(&w[r * cols as usize..(r + 1) * cols as usize], &n)).collect::<Vec<_>>()
                    })
                    .collect();
                let e = rel_err(&h.read_f32(&y, want.len()), &want);
                assert!(e < 1e-4, "matvec+norm {dtype} {dev} {tuning:?}: {e:.2e}");
            }
        }
    });
}

#[test]
fn matmul_every_type() {
    both_devices(|h, dev| {
        for dtype in DType::ALL {
            check_linear(h, Product::MatMul, dtype, 70, Epilogue::Store, dev);
            check_linear(h, Product::MatMul, dtype, 5, Epilogue::Add, dev);
        }
    });
}

fn silu(g: f32) -> f32 {
    g / (1.0 + (-g).exp())
}

/// PyTorch's tanh GELU, in f64 (the reference for shaders/gelu.wgsl).
fn gelu_tanh(g: f32) -> f32 {
    let x = f64::from(g);
    (0.5 * x * (1.0 + (0.7978845608028654 * (x + 0.044715 * x * x * x)).tanh())) as f32
}

/// Gate and up rows interleaved in tiles, as the loader assembles them.
fn interleave(gate: &[u8], up: &[u8], row_bytes: usize, rows: usize, tile: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for t in 0..rows / tile {
        out.extend_from_slice(&gate[t * tile * row_bytes..(t + 1) * tile * row_bytes]);
        out.extend_from_slice(&up[t * tile * row_bytes..(t + 1) * tile * row_bytes]);
    }
    out
}

#[test]
fn swiglu_fused_and_unfused() {
    both_devices(|h, dev| {
        let mut rng = Rng(3);
        for (dtype, act) in [DType::F32, DType::F16, DType::Q4_0, DType::Q4K].into_iter().flat_map(|d| [(d, Activation::Silu), (d, Activation::GeluTanh)]) {
            let gate_act = |g: f32| match act {
                Activation::Silu => silu(g),
                Activation::GeluTanh => gelu_tanh(g),
            };
            let (width, cols, tile) = (48u64, cols_for(dtype), 8u64);
            let row_bytes = (cols / dtype.block_elems() * dtype.block_bytes()) as usize;
            let gate = random_weights(&mut rng, dtype, width, cols);
            let up = random_weights(&mut rng, dtype, width, cols);
            let m = h.matrix(dtype, 2 * width, cols, &interleave(&gate, &up, row_bytes, width as usize, tile as usize), 2 * tile);
            let (gw, uw) = (quant::dequantize(dtype, &gate), quant::dequantize(dtype, &up));
            let tokens = 3usize;
            let x = rng.vec(tokens * cols as usize, -1.0, 1.0);
            let xb = h.f32s(&x);
            // silu(gate · x) * (up · x) per token and output, on the CPU.
            let swiglu_ref = |x: &[f32]| -> Vec<f32> {
                x.chunks(cols as usize)
                    .flat_map(|xt| {
                        (0..width as usize)
                            .map(|p| gate_act(dot(&gw[p * cols as usize..(p + 1) * cols as usize], xt)) * dot(&uw[p * cols as usize..(p + 1) * cols as usize], xt))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            let want = swiglu_ref(&x);
            // Decode: the fused mat-vec, with each tuning.
            for tuning in TUNINGS {
                h.tuning.set(tuning);
                let a = h.f32s(&vec![0.0; want.len()]);
                h.run(&h.ops().swiglu_matvec(&m, tile, &xb, None, &a, width, act), tokens as u32, 0, 0);
                let e = rel_err(&h.read_f32(&a, want.len()), &want);
                assert!(e < 1e-4, "{act:?} mat-vec {dtype} {dev} {tuning:?}: {e:.2e}");
            }
            // With the RMSNorm fused: x is normed by gain first.
            let gain = rng.vec(cols as usize, 0.5, 1.5);
            let normed: Vec<f32> = x.chunks(cols as usize).flat_map(|xt| rms_ref(xt, &gain, 1e-5)).collect();
            let want_normed = swiglu_ref(&normed);
            let a = h.f32s(&vec![0.0; want.len()]);
            h.run(&h.ops().swiglu_matvec(&m, tile, &xb, Some((&h.f32s(&gain), 1e-5)), &a, width, act), tokens as u32, 0, 0);
            let e = rel_err(&h.read_f32(&a, want.len()), &want_normed);
            assert!(e < 1e-4, "{act:?} mat-vec + norm {dtype} {dev}: {e:.2e}");
            // Prefill: the product, then the SwiGLU kernel.
            let z = h.f32s(&vec![0.0; tokens * 2 * width as usize]);
            let a2 = h.f32s(&vec![0.0; want.len()]);
            let mut ds = h.ops().linear(Product::MatMul, &m, &xb, cols, &z, 2 * width, 0, Epilogue::Store, Count::tokens());
            ds.push(h.ops().swiglu(&z, &a2, width, tile, act));
            h.run(&ds, tokens as u32, 0, 0);
            let e = rel_err(&h.read_f32(&a2, want.len()), &want);
            assert!(e < prefill_tolerance(h, dtype), "{act:?} prefill {dtype} {dev}: {e:.2e}");
        }
    });
}

fn rms_ref(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| g * (v * inv)).collect()
}

#[test]
fn rmsnorm_rows_and_last_row() {
    both_devices(|h, dev| {
        let mut rng = Rng(11);
        let (n, rows) = (320usize, 4usize);
        let x = rng.vec(n * rows, -3.0, 3.0);
        let w = rng.vec(n, 0.5, 1.5);
        let want: Vec<f32> = x.chunks(n).flat_map(|r| rms_ref(r, &w, 1e-5)).collect();
        let (xb, wb, yb) = (h.f32s(&x), h.f32s(&w), h.f32s(&vec![0.0; n * rows]));
        h.run(&[h.ops().rmsnorm(&xb, &wb, &yb, n as u32, 1e-5, false)], rows as u32, 0, 0);
        assert!(rel_err(&h.read_f32(&yb, n * rows), &want) < 1e-5, "rmsnorm {dev}");
        let last = h.f32s(&vec![0.0; n]);
        h.run(&[h.ops().rmsnorm(&xb, &wb, &last, n as u32, 1e-5, true)], rows as u32, 0, 0);
        assert!(rel_err(&h.read_f32(&last, n), &want[(rows - 1) * n..]) < 1e-5, "rmsnorm last row {dev}");
        // Normed into a residual stream (Gemma's post-norms): r += rmsnorm(x).
        let r = rng.vec(n * rows, -2.0, 2.0);
        let rb = h.f32s(&r);
        h.run(&[h.ops().rmsnorm_add(&xb, &wb, &rb, n as u32, 1e-5)], rows as u32, 0, 0);
        let want_add: Vec<f32> = r.iter().zip(&want).map(|(a, b)| a + b).collect();
        assert!(rel_err(&h.read_f32(&rb, n * rows), &want_add) < 1e-5, "rmsnorm + add {dev}");
    });
}

#[test]
fn shortconv_carries_state_across_passes() {
    // The state is a ring of the last four positions' u per channel (slot =
    // position % 4): a pass reads the two slots before its first position and
    // writes its last two, so steps run ahead past a stop and then run again
    // from the stop's position see the state as if they had never run.
    both_devices(|h, dev| {
        let mut rng = Rng(5);
        let d = 72usize;
        let taps = rng.vec(3 * d, -1.0, 1.0);
        let (tb, state) = (h.f32s(&taps), h.f32s(&vec![0.0; 4 * d]));
        let reference = |cpu_state: &mut Vec<[f32; 2]>, z: &[f32], t_n: usize| {
            let mut want = vec![0f32; t_n * d];
            for c in 0..d {
                for t in 0..t_n {
                    let row = &z[t * 3 * d..(t + 1) * 3 * d];
                    let u = row[c] * row[2 * d + c];
                    let v = taps[3 * c] * cpu_state[c][0] + taps[3 * c + 1] * cpu_state[c][1] + taps[3 * c + 2] * u;
                    want[t * d + c] = row[d + c] * v;
                    cpu_state[c] = [cpu_state[c][1], u];
                }
            }
            want
        };
        let mut cpu_state = vec![[0f32; 2]; d];
        let mut pos = 0u32;
        for (pass, t_n) in [5usize, 1, 3, 1, 1].into_iter().enumerate() {
            let z = rng.vec(t_n * 3 * d, -2.0, 2.0);
            let y = h.f32s(&vec![0.0; t_n * d]);
            h.run(&[h.ops().shortconv(&h.f32s(&z), &tb, &state, &y, d as u32)], t_n as u32, pos, 0);
            let want = reference(&mut cpu_state, &z, t_n);
            assert!(rel_err(&h.read_f32(&y, t_n * d), &want) < 1e-5, "shortconv pass {pass} {dev}");
            pos += t_n as u32;
            if pass == 2 {
                // Two single-token steps run ahead (at pos and pos + 1) and discarded.
                for ahead in 0..2 {
                    let z = rng.vec(3 * d, -2.0, 2.0);
                    let y = h.f32s(&vec![0.0; d]);
                    h.run(&[h.ops().shortconv(&h.f32s(&z), &tb, &state, &y, d as u32)], 1, pos + ahead, 0);
                }
            }
        }
        let ring = h.read_f32(&state, 4 * d);
        for c in 0..d {
            let last_two = [ring[4 * c + (pos as usize + 2) % 4], ring[4 * c + (pos as usize + 3) % 4]];
            assert!(rel_err(&last_two, &cpu_state[c]) < 1e-6, "shortconv state of channel {c} {dev}");
        }
    });
}

fn rope_table(theta: f32, hd: usize, cap: usize) -> Vec<f32> {
    let half = hd / 2;
    let mut t = Vec::new();
    for pos in 0..cap {
        for i in 0..half {
            let a = pos as f32 * (1.0 / theta.powf((2 * i) as f32 / hd as f32));
            t.push(a.cos());
            t.push(a.sin());
        }
    }
    t
}

fn kv_to_f32(h: &Harness, b: &wgpu::Buffer, n: usize, f16_kv: bool) -> Vec<f32> {
    if f16_kv {
        let bytes = pollster::block_on(read_buffer(&h.gpu, b, (2 * n).div_ceil(4) as u64 * 4)).unwrap();
        bytes.chunks_exact(2).take(n).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
    } else {
        h.read_f32(b, n)
    }
}

fn kv_buffer(h: &Harness, values: &[f32], f16_kv: bool) -> wgpu::Buffer {
    if f16_kv {
        let bytes: Vec<u8> = values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
        h.buffer(&bytes)
    } else {
        h.f32s(values)
    }
}

#[test]
fn rope_norm_and_cache_write() {
    both_devices(|h, dev| {
        let mut rng = Rng(9);
        let (nh, nkv, hd, cap) = (4u32, 2u32, 32u32, 16u32);
        let (t_n, pos0) = (3usize, 5usize);
        let stride = ((nh + 2 * nkv) * hd) as usize;
        let table = rope_table(1e4, hd as usize, cap as usize);
        for (neox, norm) in [(true, true), (false, false), (true, false)] {
            for kv_f16 in [false, h.gpu.f16] {
                let qkv = rng.vec(t_n * stride, -1.0, 1.0);
                let (qn, kn) = (rng.vec(hd as usize, 0.5, 1.5), rng.vec(hd as usize, 0.5, 1.5));
                let shape = HeadShape { n_heads: nh, n_kv_heads: nkv, head_dim: hd, capacity: cap, scale: 1.0 / (hd as f32).sqrt(), window: 0 };
                let (qb, qnb, knb, tb) = (h.f32s(&qkv), h.f32s(&qn), h.f32s(&kn), h.f32s(&table));
                let qout = h.f32s(&vec![0.0; t_n * (nh * hd) as usize]);
                let cache_len = (nkv * cap * hd) as usize;
                let (kc, vc) = (kv_buffer(h, &vec![0.0; cache_len], kv_f16), kv_buffer(h, &vec![0.0; cache_len], kv_f16));
                let norms = norm.then_some((&qnb, &knb, 1e-5f32));
                h.run(&[h.ops().rope(shape, &qb, norms, neox, &tb, &qout, (&kc, &vc), kv_f16)], t_n as u32, pos0 as u32, 0);
                let (hd_u, half) = (hd as usize, hd as usize / 2);
                let rot = |v: &[f32], pos: usize| -> Vec<f32> {
                    let mut out = v.to_vec();
                    for i in 0..half {
                        let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
                        let (c, s) = (table[2 * (pos * half + i)], table[2 * (pos * half + i) + 1]);
                        out[a] = v[a] * c - v[b] * s;
                        out[b] = v[b] * c + v[a] * s;
                    }
                    out
                };
                let mut want_q = Vec::new();
                let mut want_k = vec![0f32; cache_len];
                let mut want_v = vec![0f32; cache_len];
                for t in 0..t_n {
                    let pos = pos0 + t;
                    for slot in 0..(nh + 2 * nkv) as usize {
                        let v = &qkv[t * stride + slot * hd_u..t * stride + (slot + 1) * hd_u];
                        if slot < nh as usize {
                            let n = if norm { rms_ref(v, &qn, 1e-5) } else { v.to_vec() };
                            want_q.extend(rot(&n, pos));
                        } else if slot < (nh + nkv) as usize {
                            let g = slot - nh as usize;
                            let n = if norm { rms_ref(v, &kn, 1e-5) } else { v.to_vec() };
                            want_k[(g * cap as usize + pos) * hd_u..][..hd_u].copy_from_slice(&rot(&n, pos));
                        } else {
                            let g = slot - (nh + nkv) as usize;
                            want_v[(g * cap as usize + pos) * hd_u..][..hd_u].copy_from_slice(v);
                        }
                    }
                }
                let tol = if kv_f16 { 2e-3 } else { 1e-5 };
                let what = format!("rope neox={neox} norm={norm} kv_f16={kv_f16} {dev}");
                assert!(rel_err(&h.read_f32(&qout, want_q.len()), &want_q) < 1e-5, "{what}: q");
                assert!(rel_err(&kv_to_f32(h, &kc, cache_len, kv_f16), &want_k) < tol, "{what}: k cache");
                assert!(rel_err(&kv_to_f32(h, &vc, cache_len, kv_f16), &want_v) < tol, "{what}: v cache");
            }
        }
    });
}

#[test]
fn attention_causal_gqa() {
    both_devices(|h, dev| {
        let mut rng = Rng(13);
        let (nh, nkv, cap) = (6u32, 2u32, 200u32);
        // Window 0 sees everything; Gemma 3's local layers see a window (5:
        // inside one 64-key tile; 64: across tiles and splits, some wholly
        // outside it), with their own scale (query_pre_attn_scalar).
        let cases = [16u32, 64, 80, 256].into_iter().flat_map(|hd| [0u32, 5, 64].into_iter().filter(move |&w| hd != 256 || w != 5).map(move |w| (hd, w)));
        for (hd, window) in cases {
            for (t_n, pos0) in [(1usize, 150usize), (1, 0), (1, 63), (1, 64), (7, 0), (70, 3)] {
                for kv_f16 in [false, h.gpu.f16] {
                    let hd_u = hd as usize;
                    let q = rng.vec(t_n * (nh * hd) as usize, -1.0, 1.0);
                    let cache_len = (nkv * cap * hd) as usize;
                    let mut k = rng.vec(cache_len, -1.0, 1.0);
                    let mut v = rng.vec(cache_len, -1.0, 1.0);
                    if kv_f16 {
                        for x in k.iter_mut().chain(v.iter_mut()) {
                            *x = f16::from_f32(*x).to_f32();
                        }
                    }
                    let scale = if window == 0 { 1.0 / (hd as f32).sqrt() } else { 0.3 };
                    let shape = HeadShape { n_heads: nh, n_kv_heads: nkv, head_dim: hd, capacity: cap, scale, window };
                    let out = h.f32s(&vec![0.0; q.len()]);
                    let (kb, vb) = (kv_buffer(h, &k, kv_f16), kv_buffer(h, &v, kv_f16));
                    h.run(&[h.ops().attention(shape, &h.f32s(&q), (&kb, &vb), &out, kv_f16)], t_n as u32, pos0 as u32, 0);
                    let mut want = Vec::new();
                    for t in 0..t_n {
                        for head in 0..nh as usize {
                            let g = head / (nh / nkv) as usize;
                            let qv = &q[(t * nh as usize + head) * hd_u..][..hd_u];
                            let n_keys = pos0 + t + 1;
                            let first = if window == 0 { 0 } else { n_keys.saturating_sub(window as usize) };
                            let s: Vec<f32> = (first..n_keys).map(|j| dot(qv, &k[(g * cap as usize + j) * hd_u..][..hd_u]) * scale).collect();
                            let m = s.iter().fold(f32::MIN, |a, &b| a.max(b));
                            let p: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
                            let sum: f32 = p.iter().sum();
                            for dim in 0..hd_u {
                                want.push((first..n_keys).zip(&p).map(|(j, pj)| pj * v[(g * cap as usize + j) * hd_u + dim]).sum::<f32>() / sum);
                            }
                        }
                    }
                    let e = rel_err(&h.read_f32(&out, want.len()), &want);
                    assert!(e < 1e-4, "attention hd={hd} window={window} t={t_n} pos0={pos0} kv_f16={kv_f16} {dev}: {e:.2e}");
                    if t_n == 1 {
                        // The split (flash-decoding) kernels give the same.
                        let partial = h.f32s(&vec![0.0; (nh * cap.div_ceil(64) * (hd + 2)) as usize]);
                        let out2 = h.f32s(&vec![0.0; q.len()]);
                        h.run(&h.ops().attention_decode(shape, &h.f32s(&q), (&kb, &vb), &partial, &out2, kv_f16), 1, pos0 as u32, 0);
                        let e = rel_err(&h.read_f32(&out2, want.len()), &want);
                        assert!(e < 1e-4, "split attention hd={hd} window={window} pos0={pos0} kv_f16={kv_f16} {dev}: {e:.2e}");
                    }
                }
            }
        }
    });
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// (expert ids, weights) per token, as transformers' Lfm2MoeSparseMoeBlock routes.
fn route_ref(logits: &[f32], bias: &[f32], e: usize, k: usize) -> (Vec<u32>, Vec<f32>) {
    let (mut ids, mut ws) = (Vec::new(), Vec::new());
    for row in logits.chunks(e) {
        let s: Vec<f32> = row.iter().map(|&l| sigmoid(l)).collect();
        let mut order: Vec<usize> = (0..e).collect();
        order.sort_by(|&a, &b| (s[b] + bias[b]).partial_cmp(&(s[a] + bias[a])).unwrap());
        let chosen = &order[..k];
        let sum: f32 = chosen.iter().map(|&i| s[i]).sum();
        for &i in chosen {
            ids.push(i as u32);
            ws.push(s[i] / (sum + 1e-6));
        }
    }
    (ids, ws)
}

/// Routing at LFM2-MoE's sizes (32 and 64 experts, 4 slots; ties to the
/// lower id, as the stable sort of the reference) by the routing kernel.
#[test]
fn moe_routing_of_32_and_64_experts() {
    both_devices(|h, dev| {
        let mut rng = Rng(29);
        for (e, k, t_n) in [(32usize, 4usize, 3usize), (64, 4, 2), (256, 8, 1)] {
            let mut logits = rng.vec(t_n * e, -2.0, 2.0);
            let bias = vec![0.0; e];
            // A tie across the top: equal keys go to the lower id.
            logits[3] = 5.0;
            logits[e - 1] = 5.0;
            let (sel, sel_w) = (h.u32s(&vec![0; t_n * k]), h.f32s(&vec![0.0; t_n * k]));
            let routing = Routing { n_experts: e as u32, top_k: k as u32, norm_topk: true, scale: 1.0 };
            h.run(&[h.ops().moe_route(routing, &h.f32s(&logits), &h.f32s(&bias), &sel, &sel_w)], t_n as u32, 0, 0);
            let (want_ids, want_w) = route_ref(&logits, &bias, e, k);
            assert_eq!(h.read_u32(&sel, t_n * k), want_ids, "routing of {e} experts {dev}");
            assert!(rel_err(&h.read_f32(&sel_w, t_n * k), &want_w) < 1e-5, "routing weights of {e} experts {dev}");
        }
    });
}

#[test]
fn moe_routing_and_experts() {
    both_devices(|h, dev| {
        let mut rng = Rng(17);
        let (e, k, d, fe, tile, t_n) = (8usize, 2usize, 64u64, 32u64, 8u64, 3usize);
        // Routing.
        let logits = rng.vec(t_n * e, -2.0, 2.0);
        let bias = rng.vec(e, -0.3, 0.3);
        let (sel, sel_w) = (h.u32s(&vec![0; t_n * k]), h.f32s(&vec![0.0; t_n * k]));
        let routing = Routing { n_experts: e as u32, top_k: k as u32, norm_topk: true, scale: 1.0 };
        h.run(&[h.ops().moe_route(routing, &h.f32s(&logits), &h.f32s(&bias), &sel, &sel_w)], t_n as u32, 0, 0);
        let (want_ids, want_w) = route_ref(&logits, &bias, e, k);
        assert_eq!(h.read_u32(&sel, t_n * k), want_ids, "routing {dev}");
        assert!(rel_err(&h.read_f32(&sel_w, t_n * k), &want_w) < 1e-5, "routing weights {dev}");
        // Experts, with the expert stacks split across bindings at expert boundaries,
        // through both mat-vec kernels.
        for (dtype, tuning) in [DType::F32, DType::Q8_0, DType::Q4K].into_iter().flat_map(|d| {
            [
                (d, Tuning::DEFAULT),
                (d, Tuning { xr_always: true, ..Tuning::DEFAULT }),
                (d, Tuning { moe_rows: 3, int8_min_weights: 0, rows_min_workgroups: 0, min_workgroups: 0, ..Tuning::DEFAULT }),
                (d, Tuning { moe_rows: 2, moe_lanes: 8, min_workgroups: 0, int8_min_weights: u64::MAX, ..Tuning::DEFAULT }),
            ]
        }) {
            h.tuning.set(tuning);
            let cols = if dtype.block_elems() == 256 { 256 } else { d };
            let row_bytes = (cols / dtype.block_elems() * dtype.block_bytes()) as usize;
            let gate = random_weights(&mut rng, dtype, e as u64 * fe, cols);
            let up = random_weights(&mut rng, dtype, e as u64 * fe, cols);
            let gu = h.matrix(dtype, 2 * fe * e as u64, cols, &interleave(&gate, &up, row_bytes, e * fe as usize, tile as usize), 2 * fe);
            let down_cols = fe;
            let down_dtype = if dtype == DType::Q4K { DType::Q8_0 } else { dtype };
            let down = random_weights(&mut rng, down_dtype, e as u64 * cols, down_cols);
            let dn = h.matrix(down_dtype, e as u64 * cols, down_cols, &down, cols);
            let (gw, uw, dw) = (quant::dequantize(dtype, &gate), quant::dequantize(dtype, &up), quant::dequantize(down_dtype, &down));
            let x = rng.vec(t_n * cols as usize, -1.0, 1.0);
            let resid = rng.vec(t_n * cols as usize, -1.0, 1.0);
            let want = moe_ref(&x, &resid, (&want_ids, &want_w), (&gw, &uw, &dw), k, cols as usize, fe as usize);
            // The experts as chosen by the routing kernel above, then chosen
            // inside the gate/up mat-vec (which writes them for the down projection).
            let (logits_b, bias_b) = (h.f32s(&logits), h.f32s(&bias));
            for inside in [false, true] {
                let (xb, act, yb) = (h.f32s(&x), h.f32s(&vec![0.0; t_n * k * fe as usize]), h.f32s(&resid));
                let (sel2, sel_w2) = (h.u32s(&vec![0; t_n * k]), h.f32s(&vec![0.0; t_n * k]));
                let (s_ids, s_w) = if inside { (&sel2, &sel_w2) } else { (&sel, &sel_w) };
                let route = inside.then_some(RouteInput { routing, logits: &logits_b, bias: &bias_b });
                let mut ds = h.ops().moe_gate_up(&gu, tile, fe, k as u32, &xb, None, &act, s_ids, s_w, route);
                ds.extend(h.ops().moe_down(&dn, cols, k as u32, &act, &yb, s_ids, s_w));
                h.run(&ds, t_n as u32, 0, 0);
                let e_ = rel_err(&h.read_f32(&yb, want.len()), &want);
                assert!(e_ < 1e-4, "moe experts {dtype} {dev} {tuning:?} routed inside: {inside}: {e_:.2e}");
                if inside {
                    assert_eq!(h.read_u32(&sel2, t_n * k), want_ids, "experts chosen in the gate/up mat-vec {dev}");
                    assert!(rel_err(&h.read_f32(&sel_w2, t_n * k), &want_w) < 1e-5, "their weights {dev}");
                }
            }
        }
    });
}

/// resid + Σ_s w_s * down_e(SwiGLU_e(x)) per token, on the CPU.
fn moe_ref(x: &[f32], resid: &[f32], routes: (&[u32], &[f32]), w: (&[f32], &[f32], &[f32]), k: usize, c: usize, f: usize) -> Vec<f32> {
    let (ids, ws) = routes;
    let (gw, uw, dw) = w;
    let mut want = resid.to_vec();
    for t in 0..x.len() / c {
        let xt = &x[t * c..(t + 1) * c];
        for s in 0..k {
            let ex = ids[t * k + s] as usize;
            let a: Vec<f32> = (0..f)
                .map(|p| {
                    let r = ex * f + p;
                    silu(dot(&gw[r * c..(r + 1) * c], xt)) * dot(&uw[r * c..(r + 1) * c], xt)
                })
                .collect();
            for r in 0..c {
                let row = ex * c + r;
                want[t * c + r] += ws[t * k + s] * dot(&dw[row * f..(row + 1) * f], &a);
            }
        }
    }
    want
}

/// The batched MoE prefill: (token, slot) pairs grouped by expert, several
/// 64-row tiles per expert, expert stacks split across bindings.
#[test]
fn moe_batched_prefill() {
    both_devices(|h, dev| {
        let mut rng = Rng(19);
        let (e, k, cols, fe, tile, t_n) = (4usize, 2usize, 64u64, 32u64, 8u64, 150usize);
        let logits = rng.vec(t_n * e, -2.0, 2.0);
        let bias = rng.vec(e, -0.3, 0.3);
        let (sel, sel_w) = (h.u32s(&vec![0; t_n * k]), h.f32s(&vec![0.0; t_n * k]));
        let routing = Routing { n_experts: e as u32, top_k: k as u32, norm_topk: true, scale: 1.0 };
        let (ids, ws) = route_ref(&logits, &bias, e, k);
        for dtype in [DType::F32, DType::Q4_0] {
            let row_bytes = (cols / dtype.block_elems() * dtype.block_bytes()) as usize;
            let gate = random_weights(&mut rng, dtype, e as u64 * fe, cols);
            let up = random_weights(&mut rng, dtype, e as u64 * fe, cols);
            let gu = h.matrix(dtype, 2 * fe * e as u64, cols, &interleave(&gate, &up, row_bytes, e * fe as usize, tile as usize), 2 * fe);
            let down = random_weights(&mut rng, dtype, e as u64 * cols, fe);
            let dn = h.matrix(dtype, e as u64 * cols, fe, &down, cols);
            assert!(gu.parts.len() > 1 && dn.parts.len() > 1);
            let (gw, uw, dw) = (quant::dequantize(dtype, &gate), quant::dequantize(dtype, &up), quant::dequantize(dtype, &down));
            let x = rng.vec(t_n * cols as usize, -1.0, 1.0);
            let resid = rng.vec(t_n * cols as usize, -1.0, 1.0);
            let slots = t_n * k;
            let tiles = Count::TokensPlus { per: k as u32, div: 64, plus: e as u32 };
            let order = (4 + 4 * (slots.div_ceil(64) + e)) as u32;
            let plan = h.u32s(&vec![0; order as usize + slots]);
            let (z, act, y) = (h.f32s(&vec![0.0; slots * 2 * fe as usize]), h.f32s(&vec![0.0; slots * fe as usize]), h.f32s(&vec![0.0; slots * cols as usize]));
            let (xb, xr) = (h.f32s(&x), h.f32s(&resid));
            let o = h.ops();
            let mut ds = vec![o.moe_route(routing, &h.f32s(&logits), &h.f32s(&bias), &sel, &sel_w), o.moe_plan(e as u32, k as u32, &sel, &plan, order)];
            ds.extend(o.moe_grouped(&gu, 2 * fe, &xb, cols, k as u32, &z, &plan, order, tiles));
            ds.push(o.swiglu_rows(&z, &act, fe, tile, Count::Tokens { per: k as u32, div: 1 }));
            ds.extend(o.moe_grouped(&dn, cols, &act, fe, 1, &y, &plan, order, tiles));
            ds.push(o.moe_combine(&y, &sel_w, &xr, cols, k as u32));
            h.run(&ds, t_n as u32, 0, 0);
            let counts: Vec<usize> = (0..e).map(|ex| ids.iter().filter(|&&i| i as usize == ex).count()).collect();
            assert!(counts.iter().any(|&c| c > 64), "some expert gets several tiles: {counts:?}");
            let n_tiles = h.read_u32(&plan, 1)[0] as usize;
            assert_eq!(n_tiles, counts.iter().map(|c| c.div_ceil(64)).sum::<usize>(), "tiles {dev}");
            let want = moe_ref(&x, &resid, (&ids, &ws), (&gw, &uw, &dw), k, cols as usize, fe as usize);
            let e_ = rel_err(&h.read_f32(&xr, want.len()), &want);
            assert!(e_ < prefill_tolerance(h, dtype), "batched moe {dtype} {dev}: {e_:.2e}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Sampling

fn pcg(v: u32) -> u32 {
    let s = v.wrapping_mul(747796405).wrapping_add(2891336953);
    let w = ((s >> ((s >> 28) + 4)) ^ s).wrapping_mul(277803737);
    (w >> 22) ^ w
}

struct SampleCase {
    temperature: f32,
    top_k: u32,
    top_p: f32,
    min_p: f32,
    penalty: f32,
}

/// The candidate tokens (in index order) with their unnormalised weights, as
/// transformers' warpers leave them: penalty, temperature, top-k, top-p, min-p.
fn candidates(logits: &[f32], seen: &[bool], c: &SampleCase) -> Vec<(usize, f32)> {
    let l: Vec<f32> = logits
        .iter()
        .zip(seen)
        .map(|(&x, &s)| if s && c.penalty != 1.0 { if x > 0.0 { x / c.penalty } else { x * c.penalty } } else { x } / c.temperature)
        .collect();
    let m = l.iter().fold(f32::MIN, |a, &b| a.max(b));
    let mut keep: Vec<bool> = vec![true; l.len()];
    let mut sorted: Vec<usize> = (0..l.len()).collect();
    sorted.sort_by(|&a, &b| l[b].partial_cmp(&l[a]).unwrap());
    if c.top_k > 0 && (c.top_k as usize) < l.len() {
        let thr = l[sorted[c.top_k as usize - 1]];
        for i in 0..l.len() {
            keep[i] &= l[i] >= thr;
        }
    }
    if c.top_p < 1.0 {
        let total: f32 = (0..l.len()).filter(|&i| keep[i]).map(|i| (l[i] - m).exp()).sum();
        let mut acc = 0.0;
        let mut thr = f32::MIN;
        for &i in sorted.iter().filter(|&&i| keep[i]) {
            acc += (l[i] - m).exp() / total;
            thr = l[i];
            if acc >= c.top_p {
                break;
            }
        }
        for i in 0..l.len() {
            keep[i] &= l[i] >= thr;
        }
    }
    if c.min_p > 0.0 {
        for i in 0..l.len() {
            keep[i] &= l[i] >= m + c.min_p.ln();
        }
    }
    (0..l.len()).filter(|&i| keep[i]).map(|i| (i, (l[i] - m).exp())).collect()
}

#[test]
fn sampling_greedy_and_filters() {
    both_devices(|h, dev| {
        let mut rng = Rng(23);
        let vocab = 3000usize;
        let logits: Vec<f32> = rng.vec(vocab, -4.0, 4.0).iter().map(|x| x * 2.0).collect();
        let seen_ids = [7usize, 100, 2999];
        let mut seen_bits = vec![0u32; vocab.div_ceil(32)];
        let mut seen = vec![false; vocab];
        for &i in &seen_ids {
            seen_bits[i / 32] |= 1 << (i % 32);
            seen[i] = true;
        }
        let cases = [
            SampleCase { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, penalty: 1.0 },
            SampleCase { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, penalty: 1.3 },
            SampleCase { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, penalty: 1.0 },
            SampleCase { temperature: 0.7, top_k: 40, top_p: 1.0, min_p: 0.0, penalty: 1.05 },
            SampleCase { temperature: 1.0, top_k: 0, top_p: 0.9, min_p: 0.0, penalty: 1.0 },
            SampleCase { temperature: 0.3, top_k: 50, top_p: 0.8, min_p: 0.15, penalty: 1.1 },
            SampleCase { temperature: 1.5, top_k: 0, top_p: 1.0, min_p: 0.05, penalty: 1.0 },
        ];
        for (ci, c) in cases.iter().enumerate() {
            let cands = candidates(&logits, &seen, &SampleCase { temperature: c.temperature.max(1e-6), ..*c });
            let total: f32 = cands.iter().map(|x| x.1).sum();
            for seed in 0..12u32 {
                let greedy = c.temperature <= 0.0;
                let words = [
                    vocab as u32, c.top_k, seed, greedy as u32,
                    (if greedy { 1.0 } else { 1.0 / c.temperature }).to_bits(), c.top_p.to_bits(), c.min_p.to_bits(), c.penalty.to_bits(),
                ];
                let sampler = uniform(&h.gpu, "sampler", &words);
                let (lb, sb, tb, ob) = (h.f32s(&logits), h.u32s(&seen_bits), h.u32s(&[0; 4]), h.u32s(&[0; 8]));
                let all = h.u32s(&vec![u32::MAX; seen_bits.len()]);
                let step = seed % 5;
                h.run(&[h.ops().sample(&sampler, &lb, &sb, &tb, &ob, &all)], 1, 0, step);
                let pick = h.read_u32(&ob, 8)[step as usize];
                assert_eq!(h.read_u32(&tb, 1)[0], pick, "the pick is the next input");
                // The next step's mark-seen records the pick when it consumes it: a pick
                // never consumed (a step run past a stop) must not count as seen.
                assert_eq!(h.read_u32(&sb, seen_bits.len()), seen_bits, "the sampler leaves the seen bits alone");
                if greedy {
                    let adj: Vec<f32> = logits.iter().zip(&seen).map(|(&x, &s)| if s && c.penalty != 1.0 { if x > 0.0 { x / c.penalty } else { x * c.penalty } } else { x }).collect();
                    let best = (0..vocab).fold(0, |b, i| if adj[i] > adj[b] { i } else { b });
                    assert_eq!(pick as usize, best, "greedy case {ci} {dev}");
                    continue;
                }
                // The pick is a candidate, and the draw falls in (or at the edge of) its
                // interval, the candidates taken in the sampler's order: lane l of 256
                // owns tokens l, l + 256, ... (lane-major).
                let mut cands = cands.clone();
                cands.sort_by_key(|&(i, _)| (i % 256, i / 256));
                let pos = cands.iter().position(|x| x.0 == pick as usize).unwrap_or_else(|| panic!("case {ci} seed {seed} {dev}: {pick} is not a candidate"));
                let u = (pcg(seed ^ pcg(step)) >> 8) as f32 / 16_777_216.0;
                let lo: f32 = cands[..pos].iter().map(|x| x.1).sum::<f32>() / total;
                let hi = lo + cands[pos].1 / total;
                assert!(u >= lo - 1e-4 && u <= hi + 1e-4, "case {ci} seed {seed} {dev}: u {u} outside [{lo}, {hi}) of token {pick}");
            }
        }
    });
}

#[test]
fn sampling_follows_the_softmax() {
    let h = Harness::new(false);
    let logits = [2.0f32, 1.0, 0.5, 0.0, -1.0, 1.5, -3.0, 0.2];
    let vocab = logits.len();
    let words = [vocab as u32, 0, 99, 0, 1f32.to_bits(), 1f32.to_bits(), 0f32.to_bits(), 1f32.to_bits()];
    let sampler = uniform(&h.gpu, "sampler", &words);
    let (lb, sb, tb) = (h.f32s(&logits), h.u32s(&[0]), h.u32s(&[0; 4]));
    let n = 4000usize;
    let ob = h.u32s(&vec![0; n]);
    let d: Dispatch = h.ops().sample(&sampler, &lb, &sb, &tb, &ob, &h.u32s(&[u32::MAX]));
    for step in 0..n as u32 {
        h.run(std::slice::from_ref(&d), 1, 0, step);
    }
    let picks = h.read_u32(&ob, n);
    let z: f32 = logits.iter().map(|l| l.exp()).sum();
    for (i, l) in logits.iter().enumerate() {
        let p = l.exp() / z;
        let freq = picks.iter().filter(|&&x| x as usize == i).count() as f32 / n as f32;
        let sigma = (p * (1.0 - p) / n as f32).sqrt();
        assert!((freq - p).abs() < 5.0 * sigma + 1e-3, "token {i}: frequency {freq:.4}, softmax {p:.4}");
    }
}

/// A constraint's mask (a bit per allowed token): the sampler draws from the
/// softmax over the allowed tokens only, greedy takes the best allowed one,
/// and top-k counts among the allowed.
#[test]
fn sampling_keeps_to_the_allowed_tokens() {
    let h = Harness::new(false);
    let logits = [2.0f32, 1.0, 0.5, 0.0, -1.0, 1.5, -3.0, 0.2];
    let allowed_ids = [1usize, 2, 4, 6];
    let mask = allowed_ids.iter().fold(0u32, |m, &i| m | 1 << i);
    let n = 3000usize;
    for (name, greedy, top_k) in [("softmax", 0u32, 0u32), ("greedy", 1, 0), ("top-k 2", 0, 2)] {
        let words = [logits.len() as u32, top_k, 5, greedy, 1f32.to_bits(), 1f32.to_bits(), 0f32.to_bits(), 1f32.to_bits()];
        let sampler = uniform(&h.gpu, "sampler", &words);
        let (lb, sb, tb, ob) = (h.f32s(&logits), h.u32s(&[0]), h.u32s(&[0; 4]), h.u32s(&vec![0; n]));
        let d: Dispatch = h.ops().sample(&sampler, &lb, &sb, &tb, &ob, &h.u32s(&[mask]));
        for step in 0..n as u32 {
            h.run(std::slice::from_ref(&d), 1, 0, step);
        }
        let picks = h.read_u32(&ob, n);
        let kept: &[usize] = match (greedy, top_k) {
            (1, _) => &allowed_ids[..1],
            (_, 2) => &allowed_ids[..2],
            _ => &allowed_ids,
        };
        let z: f32 = kept.iter().map(|&i| logits[i].exp()).sum();
        for i in 0..logits.len() {
            let p = if kept.contains(&i) { logits[i].exp() / z } else { 0.0 };
            let freq = picks.iter().filter(|&&x| x as usize == i).count() as f32 / n as f32;
            let sigma = (p * (1.0 - p) / n as f32).sqrt();
            assert!((freq - p).abs() < 5.0 * sigma + 1e-3, "{name}: token {i}: frequency {freq:.4}, expected {p:.4}");
        }
    }
}
