// RMSNorm over rows of `n`: y = w * (x * rsqrt(mean(x^2) + eps)), in f32.
// One workgroup per row. With `last_only`, only the pass's last row is
// normalized, into row 0 of y (the logits of the last position). With ADD,
// y += the normed row (a sublayer's output normed into the residual stream).
#include "step.wgsl"
#include "reduce.wgsl"

struct Params {
    n: u32,
    eps: f32,
    last_only: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var row = wid.x;
    var out_row = wid.x;
    if (P.last_only != 0u) {
        row = S.n_tokens - 1u;
        out_row = 0u;
    }
    let live = wid.x < S.n_tokens;
    var ss = 0.0;
    if (live) {
        for (var i = lid; i < P.n; i += WG) {
            let v = x[row * P.n + i];
            ss += v * v;
        }
    }
    let total = group_sum(ss, lid, WG);
    if (!live) {
        return;
    }
    let inv = inverseSqrt(total / f32(P.n) + P.eps);
    for (var i = lid; i < P.n; i += WG) {
#if ADD
        y[out_row * P.n + i] += w[i] * (x[row * P.n + i] * inv);
#else
        y[out_row * P.n + i] = w[i] * (x[row * P.n + i] * inv);
#endif
    }
}
