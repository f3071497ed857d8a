// LFM2-MoE routing, one workgroup per token: sigmoid scores, top-k of score +
// bias (the bias only selects), weights = the chosen unbiased scores,
// renormalised (+1e-6) and scaled. Lanes share the experts.
// With ROUTER (decode) the workgroup first computes the router logits itself,
// W·(g ⊙ x) / rms(x) for its token, from the residual stream: one dispatch
// instead of a mat-vec (32 or 64 rows on a handful of workgroups) and then
// this one. The logits are also written to `logits`.
#include "step.wgsl"

override WG: u32 = 64u;

struct Params {
    n_experts: u32,
    k: u32,
    norm: u32,
    scale: f32,
    // ROUTER: x's row length / 4, the router's row stride in vec4s, the norm's epsilon.
    d4: u32,
    row4: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
#if ROUTER
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;   // [t][n_experts]
#else
@group(0) @binding(2) var<storage, read> logits: array<f32>;   // [t][n_experts]
#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> sel: array<u32>;   // [t][k]
@group(0) @binding(5) var<storage, read_write> selw: array<f32>;

var<workgroup> score: array<f32, 256>;    // sigmoid per expert
var<workgroup> key: array<f32, 256>;      // score + bias
var<workgroup> chosen: array<u32, 8>;

#if ROUTER
@group(0) @binding(6) var<storage, read> X: array<vec4<f32>>;      // residual [t][d]
@group(0) @binding(7) var<storage, read> gain: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> RW: array<vec4<f32>>;     // F32 router rows
var<workgroup> xs: array<vec4<f32>, 512>;                            // g ⊙ x (d ≤ 2048)
var<workgroup> red: array<f32, WG>;

// The token's router logits into `score` (before the sigmoid). Lanes in
// groups of WG / n_experts share an expert's row; x ⊙ g is staged once.
fn router_logits(t: u32, lid: u32) {
    var ss = 0.0;
    for (var i = lid; i < P.d4; i += WG) {
        let v = X[t * P.d4 + i];
        ss += dot(v, v);
        xs[i] = v * gain[i];
    }
    red[lid] = ss;
    workgroupBarrier();
    for (var m = WG / 2u; m > 0u; m /= 2u) {
        if (lid < m) {
            red[lid] += red[lid + m];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(red[0] / f32(4u * P.d4) + P.eps);
    workgroupBarrier();
    // n_experts <= WG (checked by the engine): one expert per group.
    let per = WG / P.n_experts;
    let sub = lid % per;
    let e = lid / per;
    var acc = 0.0;
    if (e < P.n_experts) {
        let row = e * P.row4;
        var i = sub;
        for (; i + 3u * per < P.d4; i += 4u * per) {
            acc += (dot(RW[row + i], xs[i]) + dot(RW[row + i + per], xs[i + per]))
                + (dot(RW[row + i + 2u * per], xs[i + 2u * per]) + dot(RW[row + i + 3u * per], xs[i + 3u * per]));
        }
        for (; i < P.d4; i += per) {
            acc += dot(RW[row + i], xs[i]);
        }
    }
    red[lid] = acc;
    workgroupBarrier();
    if (sub == 0u && e < P.n_experts) {
        var sum = 0.0;
        for (var j = 0u; j < per; j++) {
            sum += red[lid + j];
        }
        score[e] = sum * inv;
        logits[t * P.n_experts + e] = sum * inv;
    }
    workgroupBarrier();
}
#endif

// Each expert's rank among the keys (ties to the lower id) decides at once
// whether it is chosen and in which slot: two barriers in all, instead of a
// reduction per slot.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    let e_n = P.n_experts;
#if ROUTER
    router_logits(t, lid);
#endif
    for (var e = lid; e < e_n; e += WG) {
#if ROUTER
        let l = score[e];
#else
        let l = logits[t * e_n + e];
#endif
        let s = 1.0 / (1.0 + exp(-l));
        score[e] = s;
        key[e] = s + bias[e];
    }
    workgroupBarrier();
    for (var e = lid; e < e_n; e += WG) {
        let ke = key[e];
        var rank = 0u;
        for (var o = 0u; o < e_n; o++) {
            let ko = key[o];
            rank += u32(ko > ke || (ko == ke && o < e));
        }
        if (rank < P.k) {
            chosen[rank] = e;
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        var sum = 0.0;
        for (var s = 0u; s < P.k; s++) {
            sum += score[chosen[s]];
        }
        for (var s = 0u; s < P.k; s++) {
            var w = score[chosen[s]];
            if (P.norm != 0u) {
                w = w / (sum + 1e-6);
            }
            sel[t * P.k + s] = chosen[s];
            selw[t * P.k + s] = w * P.scale;
        }
    }
}
