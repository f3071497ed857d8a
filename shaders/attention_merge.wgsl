// Combines the splits of attention_split.wgsl: out = Σ_s e^(m_s - M) acc_s / Σ_s e^(m_s - M) l_s.
#include "step.wgsl"

struct Params {
    n_heads: u32,
    head_dim: u32,
    max_splits: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> partial: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let splits = (S.pos0 + 64u) / 64u;
    let stride = P.head_dim + 2u;
    let base = h * P.max_splits * stride;
    var m = -3.0e38;
    for (var s = 0u; s < splits; s++) {
        m = max(m, partial[base + s * stride]);
    }
    var l = 0.0;
    for (var s = 0u; s < splits; s++) {
        l += exp(partial[base + s * stride] - m) * partial[base + s * stride + 1u];
    }
    for (var d = lid; d < P.head_dim; d += 64u) {
        var acc = 0.0;
        for (var s = 0u; s < splits; s++) {
            acc += exp(partial[base + s * stride] - m) * partial[base + s * stride + 2u + d];
        }
        out[h * P.head_dim + d] = acc / l;
    }
}
