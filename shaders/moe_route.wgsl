// LFM2-MoE routing, one workgroup per token: sigmoid scores, top-k of score +
// bias (the bias only selects), weights = the chosen unbiased scores,
// renormalised (+1e-6) and scaled. Lanes share the experts.
#include "step.wgsl"

struct Params {
    n_experts: u32,
    k: u32,
    norm: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;   // [t][n_experts]
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> sel: array<u32>;   // [t][k]
@group(0) @binding(5) var<storage, read_write> selw: array<f32>;

var<workgroup> score: array<f32, 256>;    // sigmoid per expert
var<workgroup> key: array<f32, 256>;      // score + bias
var<workgroup> chosen: array<u32, 8>;

// Each expert's rank among the keys (ties to the lower id) decides at once
// whether it is chosen and in which slot: two barriers in all, instead of a
// reduction per slot.
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    let e_n = P.n_experts;
    for (var e = lid; e < e_n; e += 64u) {
        let s = 1.0 / (1.0 + exp(-logits[t * e_n + e]));
        score[e] = s;
        key[e] = s + bias[e];
    }
    workgroupBarrier();
    for (var e = lid; e < e_n; e += 64u) {
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
