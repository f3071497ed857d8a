// a[t, p] = silu(z[t, gate_p]) * z[t, up_p] (GELU: gelu_tanh, GeGLU), where gate and up rows were
// interleaved in tiles of `tile` (the gate/up matrix's layout). Prefill only:
// decode fuses this into the mat-vec.
#include "step.wgsl"
#include "gelu.wgsl"

struct Params {
    width: u32,   // pairs per token
    tile: u32,
    z_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> a: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    let t = gid.y;
#if ROWS
    // One row per (token, expert slot): the grid has exactly that many rows.
    if (p >= P.width) {
#else
    if (p >= P.width || t >= S.n_tokens) {
#endif
        return;
    }
    let gate = (p / P.tile) * 2u * P.tile + p % P.tile;
    let g = z[t * P.z_stride + gate];
    let u = z[t * P.z_stride + gate + P.tile];
#if GELU
    a[t * P.width + p] = gelu_tanh(g) * u;
#else
    a[t * P.width + p] = g / (1.0 + exp(-g)) * u;
#endif
}
