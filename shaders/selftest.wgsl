// GPU self-test: y = W·x for a row-major f32 matrix, one workgroup per row,
// reduced through workgroup memory. It exercises what every LLM kernel needs:
// storage buffers, uniforms, workgroup memory and barriers.

struct Dims { rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x;
    var acc = 0.0;
    for (var c = lid; c < dims.cols; c += WG) {
        acc += w[row * dims.cols + c] * x[c];
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u && row < dims.rows) {
        y[row] = partial[0];
    }
}
