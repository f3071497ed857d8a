// LFM2's gated short convolution, one lane per channel c, the pass's tokens in
// order: u = B*x; v = w0*u[t-2] + w1*u[t-1] + w2*u (taps stored [c][3], tap 2 the
// current token); y = C*v. The state keeps each channel's u of the last SLOTS
// positions, slot = position % SLOTS: a pass reads the two before its first
// token and writes its last two, so a decode step run ahead past a stop token
// (Session::generate) overwrites only its own position's slot, and the
// conversation continues from the stop as if that step had never run.
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
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [c][SLOTS]

// Session::CONV_SLOTS: two inputs plus up to two positions run past a stop.
const SLOTS: u32 = 4u;
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
    let base = SLOTS * c;
    var s0 = state[base + (S.pos0 + SLOTS - 2u) % SLOTS];
    var s1 = state[base + (S.pos0 + SLOTS - 1u) % SLOTS];
    for (var t = 0u; t < S.n_tokens; t++) {
        let row = t * 3u * d;
        let u = z[row + c] * z[row + 2u * d + c];
        let v = w0 * s0 + w1 * s1 + w2 * u;
        y[t * d + c] = z[row + d + c] * v;
        s0 = s1;
        s1 = u;
    }
    // With one token, s0 is the slot before it, rewritten unchanged.
    let end = S.pos0 + S.n_tokens;
    state[base + (end + SLOTS - 2u) % SLOTS] = s0;
    state[base + (end + SLOTS - 1u) % SLOTS] = s1;
}
