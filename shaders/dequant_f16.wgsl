// The prefill's weights once per pass as f16 (pairs packed in u32), for
// matmul_coop_f16.wgsl: the staged matrix-unit kernel dequantized every
// weight once per 64-token tile and spent 70-75% of its time staging
// (docs/BENCHMARKS.md, 2026-12-02). Rows of the part, P.k columns; each lane
// makes 8 consecutive weights of one row. Workgroup: 4 rows × 64 units of 8.
#include "step.wgsl"
#include "matmul_tile.wgsl"

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> WH: array<vec4<u32>>;

fn wg() -> WeightGeom { return P.geom; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * 4u + lid / 64u;
    let units = P.k / 8u;
    let unit = wid.x * 64u + lid % 64u;
    if (row >= P.n_out || unit >= units) {
        return;
    }
    let v = dq8(row, unit);
    WH[row * units + unit] = vec4<u32>(pack2x16float(vec2<f32>(v[0], v[1])), pack2x16float(vec2<f32>(v[2], v[3])),
                                       pack2x16float(vec2<f32>(v[4], v[5])), pack2x16float(vec2<f32>(v[6], v[7])));
}
