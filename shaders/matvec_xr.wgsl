// y = W·x for a few tokens at a time (decode), each weight read once per token,
// with x held in registers. A workgroup of WG lanes is split into groups of T
// lanes; each group makes R consecutive outputs. Lane `lane` of a group owns
// the 32-column chunks lane, lane + T, ... (at most XC of them): it loads their
// x once (times the norm's gains with NORM) and reuses it for all R rows, so
// its weight loads for the R rows are issued at once, with no workgroup memory
// and no barrier before them; neighbouring lanes read neighbouring 16-byte
// pieces of a row. The group's partial sums are then added across its lanes.
// With NORM, x is the residual stream: W·(g ⊙ x) / rms(x), the 1/rms factor
// summed alongside the dot products.
// MODE (set by the engine):
//   STORE       Y[t, out_first + r]  = row r · x[t]
//   ADD         Y[t, out_first + r] += row r · x[t]               (residual add)
//   SWIGLU      Y[t, out_first + p]  = gate_act(gate_p · x) * (up_p · x), gate and up
//               rows interleaved in tiles of `tile` rows
//   MOE_GATE_UP as SWIGLU for the expert chosen in slot s of token t (y = t*k + s)
//   MOE_DOWN    Y[t, r] += Σ_s weight_s * (row r of expert_s · a[t*k + s])
#include "step.wgsl"

override WG: u32 = 256u;
override T: u32 = 64u;     // lanes per group (a power of two)
override R: u32 = 4u;      // outputs per group
override XC: u32 = 1u;     // 32-column chunks per lane (1 or 2)
override KS: u32 = 1u;     // MOE_DOWN: experts per token (a constant: the slot loop unrolls)

struct Params {
    geom: WeightGeom,
    units: u32,       // columns / QU (as the reference kernel counts them)
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
    cols: u32,        // columns
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
#if MOE
#include "moe_slots.wgsl"
#endif
#if NORM
#if MOE
@group(0) @binding(7) var<storage, read> gain: array<vec4<f32>>;
#else
@group(0) @binding(5) var<storage, read> gain: array<vec4<f32>>;
#endif
#endif

fn wg() -> WeightGeom { return P.geom; }

// The x of the chunk being multiplied: the quantized types' dot units read it
// through xv4 (columns 4 * c4 .. 4 * c4 + 3 of the chunk, c4 taken mod 8).
var<private> xcur: array<vec4<f32>, 8>;

fn xv4(t4: u32, c4: u32) -> vec4<f32> {
    return xcur[c4 % 8u];
}

#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

// Row `row` · the chunk in xcur (chunk index ch, 32 columns).
fn chunk_dot(row: u32, ch: u32) -> f32 {
#if QU8
    // Float types: four 8-column units.
    return (dq_dot(row, 4u * ch, 0u) + dq_dot(row, 4u * ch + 1u, 0u)) + (dq_dot(row, 4u * ch + 2u, 0u) + dq_dot(row, 4u * ch + 3u, 0u));
#else
    return dq_dot(row, ch, 0u);
#endif
}

var<private> xr: array<array<vec4<f32>, 8>, 2>;

// Loads this lane's chunks of x row `xbase4` (in vec4s); returns their Σx² (NORM).
// Chunks past the row read its last chunk and are zeroed, so that the dot
// products below need no branch: their loads are unconditional and the
// compiler can issue every row's at once.
fn load_x(xbase4: u32, lane: u32) -> f32 {
    let chunks = P.cols / 32u;
    var ss = 0.0;
    for (var k = 0u; k < XC; k++) {
        let ch = lane + k * T;
        let live = ch < chunks;
        let b = min(ch, chunks - 1u) * 8u;
        for (var j = 0u; j < 8u; j++) {
            let v = select(vec4<f32>(0.0), X[xbase4 + b + j], live);
#if NORM
            ss += dot(v, v);
            xr[k][j] = v * gain[b + j];
#else
            xr[k][j] = v;
#endif
        }
    }
    return ss;
}

// Row `row` · this lane's chunks of x (zero for chunks past the row).
fn lane_dot(row: u32, lane: u32) -> f32 {
    let chunks = P.cols / 32u;
    var acc = 0.0;
    for (var k = 0u; k < XC; k++) {
        xcur = xr[k];
        acc += chunk_dot(row, min(lane + k * T, chunks - 1u));
    }
    return acc;
}

// Sums across the T lanes of each group, R + 1 values per lane (the last is
// Σx² with NORM); every lane of the group gets the totals in red_out.
var<private> vals: array<f32, 17>;
#if SUBGROUP_REDUCE
#else
#if SUBGROUPS
var<workgroup> red: array<f32, 17 * 32>;      // [group][value][subgroup of the group]
#else
var<workgroup> red: array<f32, 17 * WG>;      // [value][lane]
#endif
#endif

// SUBGROUP_REDUCE: a group lies within one subgroup (butterflies over its T
// lanes). SUBGROUPS: subgroup sums, then the group's T / sg_size subgroups in
// workgroup memory (the engine picks this only for a fixed subgroup size that
// divides T, and at most 32 subgroups in the workgroup). Else a tree
// in workgroup memory.
fn group_reduce(n: u32, lid: u32, lane: u32, grp: u32, sg_size: u32, sg_lane: u32) {
#if SUBGROUP_REDUCE
    for (var i = 0u; i < n; i++) {
        var s = vals[i];
        for (var m = T / 2u; m > 0u; m /= 2u) {
            s += subgroupShuffleXor(s, m);
        }
        vals[i] = s;
    }
#else
#if SUBGROUPS
    let per = T / sg_size;
    let sub = lane / sg_size;
    for (var i = 0u; i < n; i++) {
        let s = subgroupAdd(vals[i]);
        if (sg_lane == 0u) {
            red[(grp * n + i) * per + sub] = s;
        }
    }
    workgroupBarrier();
    for (var i = 0u; i < n; i++) {
        var s = 0.0;
        for (var j = 0u; j < per; j++) {
            s += red[(grp * n + i) * per + j];
        }
        vals[i] = s;
    }
#else
    for (var i = 0u; i < n; i++) {
        red[i * WG + lid] = vals[i];
    }
    workgroupBarrier();
    for (var m = T / 2u; m > 0u; m /= 2u) {
        if (lane < m) {
            for (var i = 0u; i < n; i++) {
                red[i * WG + lid] += red[i * WG + lid + m];
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < n; i++) {
        vals[i] = red[i * WG + lid - lane];
    }
#endif
#endif
}

// The gate's activation: SiLU (SwiGLU), or with GELU the tanh GELU (GeGLU).
#if GELU
#include "gelu.wgsl"
fn gate_act(g: f32) -> f32 {
    return gelu_tanh(g);
}
#else
fn gate_act(g: f32) -> f32 {
    return g / (1.0 + exp(-g));
}
#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32
#if SUBGROUPS || SUBGROUP_REDUCE
        , @builtin(subgroup_size) sg_size: u32, @builtin(subgroup_invocation_id) sg_lane: u32
#endif
        ) {
#if SUBGROUPS || SUBGROUP_REDUCE
#else
    let sg_size = 1u;
    let sg_lane = 0u;
#endif
    let lane = lid % T;
    let grp = lid / T;
    let out0 = ((wid.x + wid.z * nwg.x) * (WG / T) + grp) * R;
    let y = wid.y;
    let x4 = P.x_stride / 4u;

#if STORE || ADD
    let ss = load_x(y * x4, lane);
    // Rows past the end read the last row; their sums are not stored.
    let last = P.n_out - 1u;
    for (var i = 0u; i < R; i++) {
        vals[i] = lane_dot(min(out0 + i, last), lane);
    }
    vals[R] = ss;
    group_reduce(R + 1u, lid, lane, grp, sg_size, sg_lane);
    var scale = 1.0;
#if NORM
    scale = inverseSqrt(vals[R] / f32(P.cols) + P.norm_eps);
#endif
    if (lane == 0u) {
        for (var i = 0u; i < R; i++) {
            if (out0 + i < P.n_out) {
                let o = y * P.out_stride + P.out_first + out0 + i;
#if STORE
                Y[o] = vals[i] * scale;
#else
                Y[o] = Y[o] + vals[i] * scale;
#endif
            }
        }
    }
#endif

#if SWIGLU || MOE_GATE_UP
    var base = 0u;
    var live = true;
#if MOE_GATE_UP
    let e = slot_expert(y, lid, wid.x == 0u && wid.z == 0u);
    live = e >= P.e_lo && e < P.e_hi;
    base = select(0u, e - P.e_lo, live) * P.rows_per_expert;
    let t = y / P.k;
#else
    let t = y;
#endif
    let ss = load_x(t * x4, lane);
    // Outputs past the end (or of an expert outside this part) read valid
    // rows; their results are not stored.
    let last = P.n_out - 1u;
    for (var i = 0u; i < R; i++) {
        let r = min(out0 + i, last);
        let gate_row = base + (r / P.tile) * 2u * P.tile + r % P.tile;
        vals[2u * i] = lane_dot(gate_row, lane);
        vals[2u * i + 1u] = lane_dot(gate_row + P.tile, lane);
    }
    vals[2u * R] = ss;
    group_reduce(2u * R + 1u, lid, lane, grp, sg_size, sg_lane);
    var scale = 1.0;
#if NORM
    scale = inverseSqrt(vals[2u * R] / f32(P.cols) + P.norm_eps);
#endif
    if (live && lane == 0u) {
        for (var i = 0u; i < R; i++) {
            if (out0 + i < P.n_out) {
                Y[y * P.out_stride + P.out_first + out0 + i] = gate_act(vals[2u * i] * scale) * (vals[2u * i + 1u] * scale);
            }
        }
    }
#endif

#if MOE_DOWN
    for (var i = 0u; i < R; i++) {
        vals[i] = 0.0;
    }
    for (var s = 0u; s < KS; s++) {
        let slot = y * KS + s;
        let e = sel[slot];
        let live = e >= P.e_lo && e < P.e_hi;
        let w = select(0.0, selw[slot], live);
        let base = select(0u, e - P.e_lo, live) * P.rows_per_expert;
        _ = load_x(slot * x4, lane);
        let last = P.n_out - 1u;
        for (var i = 0u; i < R; i++) {
            vals[i] += w * lane_dot(base + min(out0 + i, last), lane);
        }
    }
    group_reduce(R, lid, lane, grp, sg_size, sg_lane);
    if (lane == 0u) {
        for (var i = 0u; i < R; i++) {
            if (out0 + i < P.n_out) {
                let o = y * P.out_stride + P.out_first + out0 + i;
                Y[o] = Y[o] + vals[i];
            }
        }
    }
#endif
}
