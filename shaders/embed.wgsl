// Embedding lookup: out[t] = scale * row tokens[t] of the embedding matrix, for the
// rows this matrix part holds (one dispatch per part).
#include "step.wgsl"

struct Params {
    geom: WeightGeom,
    first_row: u32,
    groups: u32,     // columns / 8
    dim: u32,        // columns
    scale: f32,      // Gemma: √hidden; else 1
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> tokens: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn wg() -> WeightGeom { return P.geom; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = gid.x;
    let t = gid.y;
    if (g >= P.groups || t >= S.n_tokens) {
        return;
    }
    let tok = tokens[t];
    if (tok < P.first_row || tok >= P.first_row + P.geom.rows) {
        return;
    }
    let v = dq8(tok - P.first_row, g);
    let base = t * P.dim + 8u * g;
    for (var i = 0u; i < 8u; i++) {
        out[base + i] = v[i] * P.scale;
    }
}
