// y = W·x for a few tokens at a time (decode), reading each weight once per token.
// A workgroup of 64 lanes is split into groups of TPR lanes; each group makes
// ROWS outputs, its lanes sharing the columns. A lane loads x for one dot unit
// into registers once and multiplies it with all of its group's rows, so x is
// read once per ROWS rows rather than once per row.
// With NORM, x is the residual stream and the kernel applies RMSNorm on the
// way in: W·(g ⊙ x) / rms(x), where every lane group sums x² over the columns
// it reads anyway (saving a dispatch and a pass over x per norm).
// MODE (set by the engine):
//   STORE       Y[t, out_first + r]  = row r · x[t]
//   ADD         Y[t, out_first + r] += row r · x[t]               (residual add)
//   SWIGLU      Y[t, out_first + p]  = silu(gate_p · x) * (up_p · x), gate and up
//               rows interleaved in tiles of `tile` rows
//   MOE_GATE_UP as SWIGLU for the expert chosen in slot s of token t (y = t*k + s)
//   MOE_DOWN    Y[t, r] += Σ_s weight_s * (row r of expert_s · a[t*k + s])
// (Naga takes subgroup built-ins without `enable subgroups;` when the device has
// the feature, and rejects the directive.)
#include "step.wgsl"

override WG: u32 = 64u;
override TPR: u32 = 64u;
override ROWS: u32 = 8u;

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
    norm_eps: f32,    // NORM: epsilon of the RMSNorm
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
#if NORM
#if MOE
@group(0) @binding(7) var<storage, read> gain: array<vec4<f32>>;
#else
@group(0) @binding(5) var<storage, read> gain: array<vec4<f32>>;
#endif
#endif

fn wg() -> WeightGeom { return P.geom; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

// Σx² of the units this lane loads (NORM).
var<private> sumsq: f32;

// x for one dot unit; with NORM, scaled by the norm's gains.
fn load_x(base: u32) -> array<vec4<f32>, 8> {
    var xv: array<vec4<f32>, 8>;
    for (var i = 0u; i < QU / 4u; i++) {
        let v = X[base / 4u + i];
#if NORM
        sumsq += dot(v, v);
        xv[i] = v * gain[(base % P.x_stride) / 4u + i];
#else
        xv[i] = v;
#endif
    }
    return xv;
}

#if SUBGROUP_REDUCE
// A group's lanes are consecutive lanes of one subgroup: butterfly shuffles,
// no barriers. Every lane gets the sum.
fn lane_sum(v: f32, lid: u32) -> f32 {
    var s = v;
    for (var m = TPR / 2u; m > 0u; m /= 2u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
}
#else
var<workgroup> part: array<f32, WG>;

// A tree in workgroup memory; lane 0 of each group gets the sum.
fn lane_sum(v: f32, lid: u32) -> f32 {
    part[lid] = v;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s /= 2u) {
        if ((lid % TPR) < s) {
            part[lid] += part[lid + s];
        }
        workgroupBarrier();
    }
    let r = part[lid];
    workgroupBarrier();
    return r;
}
#endif

// 1 / rms(x) of the group's token (NORM), or 1.
fn inv_rms(lid: u32) -> f32 {
#if NORM
    return inverseSqrt(lane_sum(sumsq, lid) / f32(P.units * QU) + P.norm_eps);
#else
    return 1.0;
#endif
}

fn silu(g: f32) -> f32 {
    return g / (1.0 + exp(-g));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lane = lid % TPR;
    let first = ((wid.x + wid.z * nwg.x) * (WG / TPR) + lid / TPR) * ROWS;
    let y = wid.y;
    var acc: array<f32, 8>;
    sumsq = 0.0;

#if STORE || ADD
    for (var u = lane; u < P.units; u += TPR) {
        var xv = load_x(y * P.x_stride + u * QU);
        for (var r = 0u; r < ROWS; r++) {
            if (first + r < P.n_out) {
                acc[r] += dq_dot_x(first + r, u, &xv);
            }
        }
    }
    let scale = inv_rms(lid);
    for (var r = 0u; r < ROWS; r++) {
        let sum = lane_sum(acc[r], lid);
        if (lane == 0u && first + r < P.n_out) {
            let o = y * P.out_stride + P.out_first + first + r;
#if STORE
            Y[o] = sum * scale;
#else
            Y[o] = Y[o] + sum * scale;
#endif
        }
    }
#endif

#if SWIGLU || MOE_GATE_UP
    var up: array<f32, 8>;
    var base = 0u;
    var live = true;
#if MOE_GATE_UP
    let e = sel[y];
    live = e >= P.e_lo && e < P.e_hi;
    base = (e - P.e_lo) * P.rows_per_expert;
    let t = y / P.k;
#else
    let t = y;
#endif
    if (live) {
        for (var u = lane; u < P.units; u += TPR) {
            var xv = load_x(t * P.x_stride + u * QU);
            for (var r = 0u; r < ROWS; r++) {
                let p = first + r;
                if (p < P.n_out) {
                    let gate_row = base + (p / P.tile) * 2u * P.tile + p % P.tile;
                    acc[r] += dq_dot_x(gate_row, u, &xv);
                    up[r] += dq_dot_x(gate_row + P.tile, u, &xv);
                }
            }
        }
    }
    let scale = inv_rms(lid);
    for (var r = 0u; r < ROWS; r++) {
        let g = lane_sum(acc[r], lid) * scale;
        let u = lane_sum(up[r], lid) * scale;
        if (live && lane == 0u && first + r < P.n_out) {
            Y[y * P.out_stride + P.out_first + first + r] = silu(g) * u;
        }
    }
#endif

#if MOE_DOWN
    for (var s = 0u; s < P.k; s++) {
        let slot = y * P.k + s;
        let e = sel[slot];
        if (e >= P.e_lo && e < P.e_hi) {
            let w = selw[slot];
            let base = (e - P.e_lo) * P.rows_per_expert;
            for (var u = lane; u < P.units; u += TPR) {
                var xv = load_x(slot * P.x_stride + u * QU);
                for (var r = 0u; r < ROWS; r++) {
                    if (first + r < P.n_out) {
                        acc[r] += w * dq_dot_x(base + first + r, u, &xv);
                    }
                }
            }
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let sum = lane_sum(acc[r], lid);
        if (lane == 0u && first + r < P.n_out) {
            let o = y * P.out_stride + P.out_first + first + r;
            Y[o] = Y[o] + sum;
        }
    }
#endif
}
