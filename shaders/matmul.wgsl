// Y[t, out_first + n] (+)= X[t] · row n of W, tiled for prefill: 64 tokens ×
// 128 rows per workgroup, 32 columns at a time; each of the 256 lanes makes
// 4 tokens × 8 rows (32 sums, 3 vector loads of workgroup memory per 32 fmas).
// MODE: STORE or ADD. GROUPED (the batched MoE prefill): workgroup row y is
// tile y of moe_plan.wgsl's plan: up to 64 (token, slot) pairs routed to one
// expert, gathered (x row = slot / x_row_div) and scattered (y row = slot);
// the weights are that expert's rows of the stacked matrix.
#include "step.wgsl"

const BM: u32 = 64u;    // tokens per tile
const BN: u32 = 128u;   // rows per tile
const BK: u32 = 32u;    // columns per step

#include "matmul_tile.wgsl"

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

fn wg() -> WeightGeom { return P.geom; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

// Tiles are stored k-major (row c holds the tile's tokens or rows), so the
// inner loop reads 4 consecutive outputs' operands as one vec4. Padding the
// rows by 4 floats puts the stores of 8 consecutive columns on distinct banks.
const PM: u32 = 68u;    // BM + 4
const PN: u32 = 132u;   // BN + 4
var<workgroup> xs: array<vec4<f32>, 544>;    // BK × PM / 4
var<workgroup> ws: array<vec4<f32>, 1056>;   // BK × PN / 4

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * BN;
#if GROUPED
    let info = plan_tile(wid.y, lid);
    if (info.w == 0u) {
        return;
    }
    load_slots(info, lid);
    let t0 = 0u;
    let n_tok = info.z;
    let w_row0 = (info.x - P.e_lo) * P.rows_per_expert;
#else
    let t0 = wid.y * BM;
    let n_tok = S.n_tokens;
    let w_row0 = 0u;
#endif
    // Outputs: tokens 4ty..4ty+3, rows 4tx..4tx+3 and 64+4tx..64+4tx+3.
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc0: array<vec4<f32>, 4>;
    var acc1: array<vec4<f32>, 4>;
    // x loads: lane lid reads column lid % 32 of tokens 8(lid/32) .. +7 (coalesced).
    let xc = lid % BK;
    let xm = (lid / BK) * 8u;
    // w loads: lane lid dequantizes row lid % 128, columns 16(lid/128) .. +15.
    let wn = lid % BN;
    let wh = (lid / BN) * 16u;
    for (var k0 = 0u; k0 < P.k; k0 += BK) {
        let col = k0 + xc;
        var xv: array<f32, 8>;
        for (var i = 0u; i < 8u; i++) {
            let t = t0 + xm + i;
#if GROUPED
            let xrow = slots[min(t, n_tok - 1u)] / P.x_row_div;
#else
            let xrow = min(t, n_tok - 1u);
#endif
            xv[i] = select(0.0, X[xrow * P.x_stride + min(col, P.k - 1u)], t < n_tok && col < P.k);
        }
        xs[(xc * PM + xm) / 4u] = vec4<f32>(xv[0], xv[1], xv[2], xv[3]);
        xs[(xc * PM + xm) / 4u + 1u] = vec4<f32>(xv[4], xv[5], xv[6], xv[7]);
        let n = n0 + wn;
        for (var half = 0u; half < 2u; half++) {
            let c = k0 + wh + half * 8u;
            var wv = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            if (n < P.n_out && c < P.k) {
                wv = dq8(w_row0 + n, c / 8u);
            }
            let base = (wh + half * 8u) * PN + wn;
            for (var i = 0u; i < 8u; i++) {
                let at = base + i * PN;
                ws[at / 4u][at % 4u] = wv[i];
            }
        }
        workgroupBarrier();
        // Lanes whose 4 tokens are all past the pass's last skip the products:
        // a short prompt fills a fraction of the 64-token tile, and CPU
        // adapters (whose SIMD groups of 8 lanes share ty) pay for every fma.
        for (var c = 0u; c < select(0u, BK, t0 + 4u * ty < n_tok); c++) {
            let a = xs[(c * PM) / 4u + ty];
            let b0 = ws[(c * PN) / 4u + tx];
            let b1 = ws[(c * PN) / 4u + 16u + tx];
            acc0[0] = fma(vec4<f32>(a.x), b0, acc0[0]);
            acc0[1] = fma(vec4<f32>(a.y), b0, acc0[1]);
            acc0[2] = fma(vec4<f32>(a.z), b0, acc0[2]);
            acc0[3] = fma(vec4<f32>(a.w), b0, acc0[3]);
            acc1[0] = fma(vec4<f32>(a.x), b1, acc1[0]);
            acc1[1] = fma(vec4<f32>(a.y), b1, acc1[1]);
            acc1[2] = fma(vec4<f32>(a.z), b1, acc1[2]);
            acc1[3] = fma(vec4<f32>(a.w), b1, acc1[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let t = t0 + 4u * ty + i;
        if (t >= n_tok) { continue; }
        for (var j = 0u; j < 8u; j++) {
            let n = n0 + select(4u * tx + j, 64u + 4u * tx + (j - 4u), j >= 4u);
            if (n >= P.n_out) { continue; }
            var v: f32;
            if (j < 4u) { v = acc0[i][j]; } else { v = acc1[i][j - 4u]; }
#if GROUPED
            let o = slots[t] * P.out_stride + P.out_first + n;
#else
            let o = t * P.out_stride + P.out_first + n;
#endif
#if ADD
            Y[o] = Y[o] + v;
#else
            Y[o] = v;
#endif
        }
    }
}
