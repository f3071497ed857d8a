// LFM2's gated short convolution, one lane per channel c, the pass's tokens in
// order: u = B*x; v = w0*u[t-2] + w1*u[t-1] + w2*u (taps stored [c][3], tap 2 the
// current token); y = C*v. The state keeps the last two u of each channel
// across passes.
#include "step.wgsl"

struct Params {
    dim: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> z: array<f32>;      // [t][B | C | x]
@group(0) @binding(3) var<storage, read> taps: array<f32>;   // [c][3]
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [c][2]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let d = P.dim;
    if (c >= d) {
        return;
    }
    let w0 = taps[3u * c];
    let w1 = taps[3u * c + 1u];
    let w2 = taps[3u * c + 2u];
    var s0 = state[2u * c];
    var s1 = state[2u * c + 1u];
    for (var t = 0u; t < S.n_tokens; t++) {
        let row = t * 3u * d;
        let u = z[row + c] * z[row + 2u * d + c];
        let v = w0 * s0 + w1 * s1 + w2 * u;
        y[t * d + c] = z[row + d + c] * v;
        s0 = s1;
        s1 = u;
    }
    state[2u * c] = s0;
    state[2u * c + 1u] = s1;
}
