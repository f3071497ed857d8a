// Y[t, out_first + n] (+)= X[t] · row n of W, tiled for prefill: 64 tokens ×
// 64 rows per workgroup, 32 columns at a time, 4×4 outputs per thread.
// MODE: STORE or ADD.
#include "step.wgsl"

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 32u;

#include "matmul_tile.wgsl"

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

fn wg() -> WeightGeom { return P.geom; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

// Tiles are stored k-major (row c holds the tile's 64 tokens or rows) so the
// inner loop reads 4 consecutive outputs' operands as one vec4, without bank
// conflicts; rows are padded to 68 floats.
const PAD: u32 = 68u;
var<workgroup> xs: array<vec4<f32>, 544>;   // BK × PAD / 4
var<workgroup> ws: array<vec4<f32>, 544>;

fn store_tile_x(c: u32, m: u32, v: f32) {
    let i = c * PAD + m;
    xs[i / 4u][i % 4u] = v;
}

fn store_tile_w(c: u32, n: u32, v: f32) {
    let i = c * PAD + n;
    ws[i / 4u][i % 4u] = v;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t0 = wid.y * BM;
    let n0 = wid.x * BN;
    let n_tok = S.n_tokens;
    let tr = (lid / 16u) * 4u;
    let tc = (lid % 16u) * 4u;
    var acc: array<vec4<f32>, 4>;
    // Loads: thread lid fills 8 consecutive columns of tile row lid / 4.
    let lr = lid / 4u;
    let lc = (lid % 4u) * 8u;
    for (var k0 = 0u; k0 < P.k; k0 += BK) {
        let t = t0 + lr;
        let col = k0 + lc;
        let in_k = col < P.k;
        for (var i = 0u; i < 8u; i++) {
            var v = 0.0;
            if (t < n_tok && in_k) {
                v = X[t * P.x_stride + col + i];
            }
            store_tile_x(lc + i, lr, v);
        }
        let n = n0 + lr;
        var wv = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        if (n < P.n_out && in_k) {
            wv = dq8(n, col / 8u);
        }
        for (var i = 0u; i < 8u; i++) {
            store_tile_w(lc + i, lr, wv[i]);
        }
        workgroupBarrier();
        for (var c = 0u; c < BK; c++) {
            let a = xs[(c * PAD + tr) / 4u];
            let b = ws[(c * PAD + tc) / 4u];
            acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
            acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
            acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
            acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let t = t0 + tr + i;
        if (t >= n_tok) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + tc + j;
            if (n >= P.n_out) { continue; }
            let o = t * P.out_stride + P.out_first + n;
#if ADD
            Y[o] = Y[o] + acc[i][j];
#else
            Y[o] = acc[i][j];
#endif
        }
    }
}
