// LFM2-MoE routing, one lane per token: sigmoid scores, top-k of score + bias
// (the bias only selects), weights = the chosen unbiased scores, renormalised
// (+1e-6) and scaled.
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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= S.n_tokens) {
        return;
    }
    let e_n = P.n_experts;
    var chosen: array<u32, 8>;
    var weights: array<f32, 8>;
    var sum = 0.0;
    for (var s = 0u; s < P.k; s++) {
        var best = 0u;
        var best_v = -3.0e38;
        for (var e = 0u; e < e_n; e++) {
            var taken = false;
            for (var p = 0u; p < s; p++) {
                taken = taken || chosen[p] == e;
            }
            let score = 1.0 / (1.0 + exp(-logits[t * e_n + e]));
            let v = score + bias[e];
            if (!taken && v > best_v) {
                best_v = v;
                best = e;
            }
        }
        chosen[s] = best;
        weights[s] = 1.0 / (1.0 + exp(-logits[t * e_n + best]));
        sum += weights[s];
    }
    for (var s = 0u; s < P.k; s++) {
        var w = weights[s];
        if (P.norm != 0u) {
            w = w / (sum + 1e-6);
        }
        sel[t * P.k + s] = chosen[s];
        selw[t * P.k + s] = w * P.scale;
    }
}
