// x[t] += Σ_s weight[t, s] * y[t * k + s]: the experts' outputs of the batched
// MoE prefill, added to the residual stream in slot order (deterministic).
#include "step.wgsl"

struct Params {
    dim: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> selw: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if (i >= P.dim || t >= S.n_tokens) {
        return;
    }
    var acc = x[t * P.dim + i];
    for (var s = 0u; s < P.k; s++) {
        let slot = t * P.k + s;
        acc += selw[slot] * y[slot * P.dim + i];
    }
    x[t * P.dim + i] = acc;
}
