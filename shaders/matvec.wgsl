// y = W·x for a few tokens at a time (decode), reading each weight once per token.
// A workgroup of WG lanes is split into groups of TPR lanes, RG consecutive
// outputs per group; a group's lanes share the outputs' columns, four dot units
// at a time (RG = 1) or one unit of every output's row at a time (RG > 1: the
// unit's x is read from workgroup memory once for all RG rows, and the staging
// is shared by RG times more outputs), so that each lane has several 128-bit
// weight loads in flight, then sum by subgroup shuffles (SUBGROUP_REDUCE) or
// in workgroup memory.
// With NORM, x is the residual stream and RMSNorm is applied on the way in:
// W·(g ⊙ x) / rms(x) (saving a dispatch and a pass over x per norm).
// MODE (set by the engine):
//   STORE       Y[t, out_first + r]  = row r · x[t]
//   ADD         Y[t, out_first + r] += row r · x[t]               (residual add)
//   SWIGLU      Y[t, out_first + p]  = gate_act(gate_p · x) * (up_p · x), gate and up
//               rows interleaved in tiles of `tile` rows
//   MOE_GATE_UP as SWIGLU for the expert chosen in slot s of token t (y = t*k + s)
//   MOE_DOWN    Y[t, r] += Σ_s weight_s * (row r of expert_s · a[t*k + s])
// With XSHARED, the workgroup first copies the token's x (normed when NORM;
// MOE_DOWN: its KS slots' x, one after another) into workgroup memory, so its
// groups read x from there: the x traffic is once per workgroup instead of
// once per output.
// (Naga takes subgroup built-ins without `enable subgroups;` when the device
// has the feature, and rejects the directive.)
#include "step.wgsl"

override WG: u32 = 128u;
override TPR: u32 = 32u;
// XSHARED: the columns / 4 (x as vec4s in workgroup memory).
override XS4: u32 = 4u;
// MOE_DOWN: experts per token, as a constant so the slot loop unrolls and the
// slots' weight loads are in flight together.
override KS: u32 = 1u;
// Units per lane when every lane has the same number (at most 8), else 0: a
// constant trip count lets the loop unroll, so all of a lane's weight loads
// (both rows' with SWIGLU) are issued before any is used.
override UL: u32 = 0u;
// Outputs per lane group (at most 8; SWIGLU: pairs, so 16 row dots). The
// engine sets ROWS where RG > 1, so that one-output kernels are compiled
// without that code (CPU adapters' compilers do not remove it).
override RG: u32 = 1u;

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

#if SUBGROUPS
// This lane's subgroup, their count, and its index in the subgroup.
var<private> sg_id: u32;
var<private> n_sg: u32;
var<private> sg_lane: u32;
#endif

#if I8X
// x staged as two int8 levels per 32-column unit u: x ≈ d1·q1 + d2·q2, q1 the
// rounding of x / d1 (d1 = max |x| / 127) and q2 that of the remainder in
// steps of d1 / 254, so about 16 bits of each value survive (a single int8
// level, as llama.cpp's activations, keeps 8 and visibly moves small models'
// outputs). The dot units then multiply 4 bytes at a time (dot4I8Packed, one
// instruction where the GPU has packed dot products) instead of converting
// every weight to a float. Transposed by unit like the float staging:
// xq[k * units + u] holds q1 words 0-3 (k 0), 4-7 (k 1), then q2's (k 2, 3);
// xd[u] = (d1, d2, Σ x, Σ of the first 16 x).
var<workgroup> xq: array<vec4<u32>, XS4 / 2u>;
var<workgroup> xd: array<vec4<f32>, XS4 / 8u>;
var<workgroup> wsum: array<f32, WG>;

fn pack4(v: vec4<f32>) -> u32 {
    let q = vec4<i32>(round(v));
    return (u32(q.x) & 0xFFu) | ((u32(q.y) & 0xFFu) << 8u) | ((u32(q.z) & 0xFFu) << 16u) | (u32(q.w) << 24u);
}

// Quantizes x[t] (times the gains with NORM) into xq/xd, one unit per lane
// at a time; returns Σx² (NORM).
fn stage_x(t: u32, lid: u32) -> f32 {
    var ss = 0.0;
    let units = XS4 / 8u;
    for (var u = lid; u < units; u += WG) {
        var v: array<vec4<f32>, 8>;
        var m = vec4<f32>(0.0);
        var s = vec4<f32>(0.0);
        var s16 = vec4<f32>(0.0);
        for (var j = 0u; j < 8u; j++) {
            let r = X[t * XS4 + u * 8u + j];
#if NORM
            ss += dot(r, r);
            v[j] = r * gain[u * 8u + j];
#else
            v[j] = r;
#endif
            m = max(m, abs(v[j]));
            s += v[j];
            if (j == 3u) { s16 = s; }
        }
        let d1 = max(max(m.x, m.y), max(m.z, m.w)) / 127.0;
        let d2 = d1 / 254.0;
        let i1 = select(0.0, 1.0 / d1, d1 > 0.0);
        let i2 = select(0.0, 1.0 / d2, d2 > 0.0);
        var a: array<u32, 8>;
        var b: array<u32, 8>;
        for (var j = 0u; j < 8u; j++) {
            let q1 = clamp(round(v[j] * i1), vec4<f32>(-127.0), vec4<f32>(127.0));
            a[j] = pack4(q1);
            b[j] = pack4(clamp((v[j] - q1 * d1) * i2, vec4<f32>(-127.0), vec4<f32>(127.0)));
        }
        xq[u] = vec4<u32>(a[0], a[1], a[2], a[3]);
        xq[units + u] = vec4<u32>(a[4], a[5], a[6], a[7]);
        xq[2u * units + u] = vec4<u32>(b[0], b[1], b[2], b[3]);
        xq[3u * units + u] = vec4<u32>(b[4], b[5], b[6], b[7]);
        xd[u] = vec4<f32>(d1, d2, dot(s, vec4<f32>(1.0)), dot(s16, vec4<f32>(1.0)));
    }
#if NORM
    return wg_total(ss, lid);
#else
    workgroupBarrier();
    return 0.0;
#endif
}

// The int8 x of unit u: (q1 words 0-3, 4-7, q2 words 0-3, 4-7) and its scales.
struct XQ {
    a0: vec4<u32>,
    a1: vec4<u32>,
    b0: vec4<u32>,
    b1: vec4<u32>,
    d: vec4<f32>,
}

// The unit where the row's x starts in the staged block (MOE_DOWN: its slot's).
var<private> xq_base: u32;

fn xq_unit(u: u32) -> XQ {
    let units = XS4 / 8u;
    let v = xq_base + u;
    return XQ(xq[v], xq[units + v], xq[2u * units + v], xq[3u * units + v], xd[v]);
}

// Σ w·x over 16 bytes of weights against 16 of x, both levels.
fn dot16(w: vec4<u32>, a: vec4<u32>, b: vec4<u32>) -> vec2<i32> {
    let i1 = (dot4I8Packed(w.x, a.x) + dot4I8Packed(w.y, a.y)) + (dot4I8Packed(w.z, a.z) + dot4I8Packed(w.w, a.w));
    let i2 = (dot4I8Packed(w.x, b.x) + dot4I8Packed(w.y, b.y)) + (dot4I8Packed(w.z, b.z) + dot4I8Packed(w.w, b.w));
    return vec2<i32>(i1, i2);
}

// The float value of integer sums (i1, i2) with the unit's scales.
fn dq2(i: vec2<i32>, d: vec4<f32>) -> f32 {
    return d.x * f32(i.x) + d.y * f32(i.y);
}

fn xv4(t4: u32, c4: u32) -> vec4<f32> {
    return vec4<f32>(0.0);
}
#else
#if XSHARED
var<workgroup> xs: array<vec4<f32>, XS4>;
var<workgroup> wsum: array<f32, WG>;

// x is staged transposed by dot unit: vec4 j of unit u sits at xs[j * units + u].
// A group's lanes read consecutive units at the same time, so they hit
// consecutive 16-byte slots; in x's own order they were a unit (128 bytes for
// the 32-weight units) apart, all on the same banks: a 32-way conflict that
// made the quantized mat-vecs run at a tenth of the memory bandwidth.
const XV: u32 = QU / 4u;

fn xslot(c4: u32) -> u32 {
    return (c4 % XV) * (XS4 / XV) + c4 / XV;
}

// t4: where the row's x starts in the staged block (0, or MOE_DOWN's slot).
fn xv4(t4: u32, c4: u32) -> vec4<f32> {
    return xs[xslot(t4 + c4)];
}

// Copies x[t] (times the gains with NORM) into xs; returns Σx² (NORM).
// Lane i fills slot i (conflict-free stores) from x's vec4 at unit i % units,
// sub-vector i / units.
fn stage_x(t: u32, lid: u32) -> f32 {
    var ss = 0.0;
    let units = XS4 / XV;
    for (var i = lid; i < XS4; i += WG) {
        let c4 = (i % units) * XV + i / units;
        let v = X[t * XS4 + c4];
#if NORM
        ss += dot(v, v);
        xs[i] = v * gain[c4];
#else
        xs[i] = v;
#endif
    }
#if NORM
    return wg_total(ss, lid);
#else
    workgroupBarrier();
    return 0.0;
#endif
}

#else
// x of the token whose row starts at vec4 t4, at column vec4 c4; with NORM,
// scaled by the norm's gains.
fn xv4(t4: u32, c4: u32) -> vec4<f32> {
#if NORM
    return X[t4 + c4] * gain[c4];
#else
    return X[t4 + c4];
#endif
}
#endif
#endif

#if XSHARED || I8X
#if SUBGROUPS
var<workgroup> sg_part: array<f32, 64>;

// The workgroup's total of v, to every lane: subgroup sums, then one barrier.
// (Also the barrier after the staging stores.)
fn wg_total(v: f32, lid: u32) -> f32 {
    let s = subgroupAdd(v);
    if (sg_lane == 0u) {
        sg_part[sg_id] = s;
    }
    workgroupBarrier();
    var t = 0.0;
    for (var i = 0u; i < n_sg; i++) {
        t += sg_part[i];
    }
    return t;
}
#else
fn wg_total(v: f32, lid: u32) -> f32 {
    wsum[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) {
            wsum[lid] += wsum[lid + s];
        }
        workgroupBarrier();
    }
    return wsum[0];
}
#endif
#endif

#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

// Σ over this lane's units of row · x, four units per step.
fn row_dot(row: u32, xb: u32, lane: u32) -> f32 {
    let t4 = xb / 4u;
#if I8X
    xq_base = xb / QU;
#endif
    var acc = 0.0;
    if (UL > 0u) {
        for (var j = 0u; j < UL; j++) {
            acc += dq_dot(row, lane + j * TPR, t4);
        }
        return acc;
    }
    var u = lane;
    for (; u + 3u * TPR < P.units; u += 4u * TPR) {
        let a = dq_dot(row, u, t4);
        let b = dq_dot(row, u + TPR, t4);
        let c = dq_dot(row, u + 2u * TPR, t4);
        let d = dq_dot(row, u + 3u * TPR, t4);
        acc += (a + b) + (c + d);
    }
    if (u + TPR < P.units) {
        acc += dq_dot(row, u, t4) + dq_dot(row, u + TPR, t4);
        u += 2u * TPR;
    }
    if (u < P.units) {
        acc += dq_dot(row, u, t4);
    }
    return acc;
}

#if ROWS
// RG > 1: the row dots of a group's outputs, rows[i] · x for i < n (n a
// constant: RG, or 2 RG for gate/up pairs), into accs. One unit of every row
// per step, so the unit's x (the same workgroup-memory addresses for every
// row) is read once and every row's weight load is in flight together.
var<private> rows: array<u32, 16>;
var<private> accs: array<f32, 16>;

fn rows_dot(n: u32, xb: u32, lane: u32) {
    let t4 = xb / 4u;
#if I8X
    xq_base = xb / QU;
#endif
    for (var i = 0u; i < n; i++) {
        accs[i] = 0.0;
    }
    if (UL > 0u) {
        for (var j = 0u; j < UL; j++) {
            let u = lane + j * TPR;
            for (var i = 0u; i < n; i++) {
                accs[i] += dq_dot(rows[i], u, t4);
            }
        }
        return;
    }
    for (var u = lane; u < P.units; u += TPR) {
        for (var i = 0u; i < n; i++) {
            accs[i] += dq_dot(rows[i], u, t4);
        }
    }
}

#endif

// Both rows of a gate/up pair at once (their loads in flight together).
fn row_dot2(row_a: u32, row_b: u32, xb: u32, lane: u32) -> vec2<f32> {
    if (UL > 0u) {
        let t4 = xb / 4u;
        var acc = vec2<f32>(0.0);
        for (var j = 0u; j < UL; j++) {
            let u = lane + j * TPR;
            acc += vec2<f32>(dq_dot(row_a, u, t4), dq_dot(row_b, u, t4));
        }
        return acc;
    }
    return vec2<f32>(row_dot(row_a, xb, lane), row_dot(row_b, xb, lane));
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

// Where token t's x starts for row_dot: in X, or in the staged copy (where
// the workgroup's one token starts at 0).
fn x_at(t: u32) -> u32 {
#if XSHARED || I8X
    return 0u;
#else
    return t * P.x_stride;
#endif
}

// 1 / rms(x[t]) (NORM), or 1. XSHARED: the staging summed x² already;
// otherwise the group's lanes sum it, four loads in flight per lane.
fn inv_rms(t: u32, lane: u32, lid: u32, staged: f32) -> f32 {
#if NORM
#if XSHARED || I8X
    return inverseSqrt(staged / f32(P.x_stride) + P.norm_eps);
#else
    let n4 = P.x_stride / 4u;
    let base = t * n4;
    var ss = 0.0;
    var i = lane;
    for (; i + 3u * TPR < n4; i += 4u * TPR) {
        let a = X[base + i];
        let b = X[base + i + TPR];
        let c = X[base + i + 2u * TPR];
        let d = X[base + i + 3u * TPR];
        ss += dot(a, a) + dot(b, b) + dot(c, c) + dot(d, d);
    }
    for (; i < n4; i += TPR) {
        let v = X[base + i];
        ss += dot(v, v);
    }
    return inverseSqrt(lane_sum(ss, lid) / f32(P.x_stride) + P.norm_eps);
#endif
#else
    return 1.0;
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
#if SUBGROUPS
        , @builtin(subgroup_id) sgi: u32, @builtin(num_subgroups) nsg: u32,
          @builtin(subgroup_invocation_id) sgl: u32
#endif
        ) {
#if SUBGROUPS
    sg_id = sgi;
    n_sg = nsg;
    sg_lane = sgl;
#endif
    let lane = lid % TPR;
    let r = (wid.x + wid.z * nwg.x) * (WG / TPR) + lid / TPR;
    let y = wid.y;
    let valid = r < P.n_out;
    var staged = 0.0;
#if XSHARED || I8X
#if MOE_GATE_UP
    staged = stage_x(y / P.k, lid);
#else
    staged = stage_x(y, lid);
#endif
#endif

#if ROWS
    // RG > 1: this group's outputs are out0 .. out0 + RG - 1; those past the
    // end read the last row and are not stored.
    let out0 = ((wid.x + wid.z * nwg.x) * (WG / TPR) + lid / TPR) * RG;
    let last = P.n_out - 1u;
#endif

#if STORE || ADD
#if ROWS
    if (RG > 1u) {
        for (var i = 0u; i < RG; i++) {
            rows[i] = min(out0 + i, last);
        }
        rows_dot(RG, x_at(y), lane);
        let scale = inv_rms(y, lane, lid, staged);
        for (var i = 0u; i < RG; i++) {
            accs[i] = lane_sum(accs[i], lid) * scale;
        }
        if (lane == 0u) {
            for (var i = 0u; i < RG; i++) {
                if (out0 + i < P.n_out) {
                    let o = y * P.out_stride + P.out_first + out0 + i;
#if STORE
                    Y[o] = accs[i];
#else
                    Y[o] = Y[o] + accs[i];
#endif
                }
            }
        }
        return;
    }
#endif
    var acc = 0.0;
    if (valid) {
        acc = row_dot(r, x_at(y), lane);
    }
    let sum = lane_sum(acc, lid) * inv_rms(y, lane, lid, staged);
    if (valid && lane == 0u) {
        let o = y * P.out_stride + P.out_first + r;
#if STORE
        Y[o] = sum;
#else
        Y[o] = Y[o] + sum;
#endif
    }
#endif

#if SWIGLU || MOE_GATE_UP
    var base = 0u;
    var expert_live = true;
#if MOE_GATE_UP
    let e = slot_expert(y, lid, wid.x == 0u && wid.z == 0u);
    expert_live = e >= P.e_lo && e < P.e_hi;
    base = (e - P.e_lo) * P.rows_per_expert;
    let t = y / P.k;
#else
    let t = y;
#endif
    let live = valid && expert_live;
#if ROWS
    if (RG > 1u) {
        let ok = expert_live;
        if (ok) {
            for (var i = 0u; i < RG; i++) {
                let p = min(out0 + i, last);
                let gate_row = base + (p / P.tile) * 2u * P.tile + p % P.tile;
                rows[2u * i] = gate_row;
                rows[2u * i + 1u] = gate_row + P.tile;
            }
            rows_dot(2u * RG, x_at(t), lane);
        }
        let scale = inv_rms(t, lane, lid, staged);
        for (var i = 0u; i < 2u * RG; i++) {
            accs[i] = lane_sum(accs[i], lid) * scale;
        }
        if (ok && lane == 0u) {
            for (var i = 0u; i < RG; i++) {
                if (out0 + i < P.n_out) {
                    Y[y * P.out_stride + P.out_first + out0 + i] = gate_act(accs[2u * i]) * accs[2u * i + 1u];
                }
            }
        }
        return;
    }
#endif
    var g = 0.0;
    var u = 0.0;
    if (live) {
        let gate_row = base + (r / P.tile) * 2u * P.tile + r % P.tile;
        let gu = row_dot2(gate_row, gate_row + P.tile, x_at(t), lane);
        g = gu.x;
        u = gu.y;
    }
    let scale = inv_rms(t, lane, lid, staged);
    let gs = lane_sum(g, lid) * scale;
    let us = lane_sum(u, lid) * scale;
    if (live && lane == 0u) {
        Y[y * P.out_stride + P.out_first + r] = gate_act(gs) * us;
    }
#endif

#if MOE_DOWN
#if ROWS
    if (RG > 1u) {
        var tot: array<f32, 8>;
        for (var s = 0u; s < KS; s++) {
            let slot = y * KS + s;
            let e = sel[slot];
            let live = e >= P.e_lo && e < P.e_hi;
            let w = select(0.0, selw[slot], live);
            let base = select(0u, e - P.e_lo, live) * P.rows_per_expert;
            for (var i = 0u; i < RG; i++) {
                rows[i] = base + min(out0 + i, last);
            }
            rows_dot(RG, x_at(y * KS) + s * P.x_stride, lane);
            for (var i = 0u; i < RG; i++) {
                tot[i] += w * accs[i];
            }
        }
        for (var i = 0u; i < RG; i++) {
            tot[i] = lane_sum(tot[i], lid);
        }
        if (lane == 0u) {
            for (var i = 0u; i < RG; i++) {
                if (out0 + i < P.n_out) {
                    let o = y * P.out_stride + P.out_first + out0 + i;
                    Y[o] = Y[o] + tot[i];
                }
            }
        }
        return;
    }
#endif
    var acc = 0.0;
    if (valid) {
        for (var s = 0u; s < KS; s++) {
            let slot = y * KS + s;
            let e = sel[slot];
            let live = e >= P.e_lo && e < P.e_hi;
            // Experts outside this part read row r of its first; their weight is 0.
            let w = select(0.0, selw[slot], live);
            // With XSHARED the token's KS slots are staged one after another.
            acc += w * row_dot(select(0u, e - P.e_lo, live) * P.rows_per_expert + r, x_at(y * KS) + s * P.x_stride, lane);
        }
    }
    let total = lane_sum(acc, lid);
    if (valid && lane == 0u) {
        let o = y * P.out_stride + P.out_first + r;
        Y[o] = Y[o] + total;
    }
#endif
}
