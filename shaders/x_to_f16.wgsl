// A prefill pass's activations as f16 (pairs packed in u32), once per
// mat-mat input instead of once per 128-row tile (matmul_coop_f16.wgsl):
// token t's P.k columns from x's row t (stride P.x_stride) to row t of XH
// (stride P.k). Workgroup: one token, 64 lanes of 4 columns.
#include "step.wgsl"
#include "quant/geom.wgsl"
#include "matmul_tile.wgsl"

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> XH: array<vec2<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.y;
    let c4 = wid.x * 64u + lid;
    if (t >= S.n_tokens || c4 >= P.k / 4u) {
        return;
    }
    let v = X[t * (P.x_stride / 4u) + c4];
    XH[t * (P.k / 4u) + c4] = vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw));
}
