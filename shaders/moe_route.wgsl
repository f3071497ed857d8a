// LFM2-MoE routing, one workgroup per token (prefill, and decode where the
// engine does not route inside the gate/up mat-vec): see moe_topk.wgsl.
#include "step.wgsl"

override WG: u32 = 64u;

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

#include "moe_topk.wgsl"

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x;
    topk_route(t, lid, P.n_experts, P.k);
    if (lid < P.k) {
        sel[t * P.k + lid] = topk_chosen[lid];
        selw[t * P.k + lid] = topk_weight(lid, P.k, P.norm != 0u, P.scale);
    }
}
