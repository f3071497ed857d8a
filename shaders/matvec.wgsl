// y = W·x for a few tokens at a time (decode), reading each weight once per token.
// Lanes are grouped TPR to an output; a workgroup of 64 makes 64/TPR outputs.
// MODE (set by the engine):
//   STORE       Y[t, out_first + r]  = row r · x[t]
//   ADD         Y[t, out_first + r] += row r · x[t]               (residual add)
//   SWIGLU      Y[t, out_first + p]  = silu(gate_p · x) * (up_p · x), gate and up
//               rows interleaved in tiles of `tile` rows
//   MOE_GATE_UP as SWIGLU for the expert chosen in slot s of token t (y = t*k + s)
//   MOE_DOWN    Y[t, r] += Σ_s weight_s * (row r of expert_s · a[t*k + s])
#include "step.wgsl"
#include "reduce.wgsl"

override TPR: u32 = 32u;

struct Params {
    geom: WeightGeom,
    units: u32,       // columns / QU
    n_out: u32,       // outputs (rows, or pairs) this dispatch makes
    out_first: u32,   // index in Y's row of output 0
    out_stride: u32,  // Y's row length
    x_stride: u32,    // x's row length
    tile: u32,        // gate/up interleave tile
    e_lo: u32,        // MoE: experts in this part are e_lo..e_hi
    e_hi: u32,
    k: u32,           // MoE: experts per token
    rows_per_expert: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
#if MOE
@group(0) @binding(5) var<storage, read> sel: array<u32>;
@group(0) @binding(6) var<storage, read> selw: array<f32>;
#endif

fn wg() -> WeightGeom { return P.geom; }
fn xv4(i: u32) -> vec4<f32> { return X[i]; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

fn row_dot(row: u32, xb: u32, lane: u32) -> f32 {
    var acc = 0.0;
    for (var u = lane; u < P.units; u += TPR) {
        acc += dq_dot(row, u, xb + u * QU);
    }
    return acc;
}

fn silu(g: f32) -> f32 {
    return g / (1.0 + exp(-g));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lane = lid % TPR;
    let r = (wid.x + wid.z * nwg.x) * (64u / TPR) + lid / TPR;
    let y = wid.y;
    var valid = r < P.n_out;

#if STORE || ADD
    var acc = 0.0;
    if (valid) {
        acc = row_dot(r, y * P.x_stride, lane);
    }
    let s = group_sum(acc, lid, TPR);
    if (valid && lane == 0u) {
        let o = y * P.out_stride + P.out_first + r;
#if STORE
        Y[o] = s;
#else
        Y[o] = Y[o] + s;
#endif
    }
#endif

#if SWIGLU || MOE_GATE_UP
    var base = 0u;
#if MOE_GATE_UP
    let e = sel[y];
    valid = valid && e >= P.e_lo && e < P.e_hi;
    base = (e - P.e_lo) * P.rows_per_expert;
    let t = y / P.k;
#else
    let t = y;
#endif
    let gate_row = base + (r / P.tile) * 2u * P.tile + r % P.tile;
    var g = 0.0;
    var u = 0.0;
    if (valid) {
        g = row_dot(gate_row, t * P.x_stride, lane);
        u = row_dot(gate_row + P.tile, t * P.x_stride, lane);
    }
    let gs = group_sum(g, lid, TPR);
    let us = group_sum(u, lid, TPR);
    if (valid && lane == 0u) {
        Y[y * P.out_stride + P.out_first + r] = silu(gs) * us;
    }
#endif

#if MOE_DOWN
    var acc = 0.0;
    if (valid) {
        for (var s = 0u; s < P.k; s++) {
            let slot = y * P.k + s;
            let e = sel[slot];
            if (e >= P.e_lo && e < P.e_hi) {
                acc += selw[slot] * row_dot((e - P.e_lo) * P.rows_per_expert + r, slot * P.x_stride, lane);
            }
        }
    }
    let total = group_sum(acc, lid, TPR);
    if (valid && lane == 0u) {
        let o = y * P.out_stride + P.out_first + r;
        Y[o] = Y[o] + total;
    }
#endif
}
