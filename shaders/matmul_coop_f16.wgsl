// matmul_coop.wgsl's product with nothing staged: the weights and x were
// made f16 once for the pass (dequant_f16.wgsl, x_to_f16.wgsl), so every
// subgroup loads its matrix tiles straight from them (the workgroup's other
// subgroups find them in cache) and the loop has no barrier. The staged
// kernel ran 3.4-4x faster on the H200 with its staging removed
// (docs/BENCHMARKS.md, 2026-12-02). Same tiles (64 tokens x 128 rows, four
// 16 x 16 sums per subgroup), parameters and modes (STORE, ADD); no GROUPED.
// WH holds the part's rows padded to 128 and XH the pass's tokens padded to
// 64, so that whole-tile loads stay inside them; their extra rows only reach
// outputs that are never stored.
enable f16;
enable wgpu_cooperative_matrix;
#include "step.wgsl"
#include "quant/geom.wgsl"

const BM: u32 = 64u;    // tokens per tile
const BN: u32 = 128u;   // rows per tile

#include "matmul_tile.wgsl"

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> WH: array<f16>;
@group(0) @binding(3) var<storage, read> XH: array<f16>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

var<workgroup> cs: array<f32, 2048>;   // one 16 × 16 tile per subgroup

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) sl: u32) {
    let n0 = wid.x * BN;
    let t0 = wid.y * BM;
    let n_tok = S.n_tokens;
    let direct = (t0 + BM <= n_tok) & (n0 + BN <= P.n_out);
    // Every index and stride a matrix load or store takes is a `let` first
    // (naga's SPIR-V writer needs them evaluated before the call).
    let ys = P.out_stride;
    let ks = P.k;
    let tm = (sg / 4u) * 32u;
    let tn = (sg % 4u) * 32u;
    let o00 = (t0 + tm) * ys + P.out_first + n0 + tn;
    let o01 = o00 + 16u;
    let o10 = o00 + 16u * ys;
    let o11 = o10 + 16u;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
#if ADD
    if (direct) {
        c00 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o00], ys);
        c01 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o01], ys);
        c10 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o10], ys);
        c11 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o11], ys);
    }
#endif
    let a_row = (t0 + tm) * ks;
    let b_row = (n0 + tn) * ks;
    for (var k0 = 0u; k0 < ks; k0 += 16u) {
        let ia0 = a_row + k0;
        let ia1 = ia0 + 16u * ks;
        let ib0 = b_row + k0;
        let ib1 = ib0 + 16u * ks;
        let a0 = coopLoadT<coop_mat16x16<f16, A>>(&XH[ia0], ks);
        let a1 = coopLoadT<coop_mat16x16<f16, A>>(&XH[ia1], ks);
        let b0 = coopLoad<coop_mat16x16<f16, B>>(&WH[ib0], ks);
        let b1 = coopLoad<coop_mat16x16<f16, B>>(&WH[ib1], ks);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
    }
    if (direct) {
        coopStoreT(c00, &Y[o00], ys);
        coopStoreT(c01, &Y[o01], ys);
        coopStoreT(c10, &Y[o10], ys);
        coopStoreT(c11, &Y[o11], ys);
        return;
    }
    let cbase = sg * 256u;
    for (var q = 0u; q < 4u; q++) {
        var c = c00;
        if (q == 1u) { c = c01; }
        if (q == 2u) { c = c10; }
        if (q == 3u) { c = c11; }
        coopStoreT(c, &cs[cbase], 16u);
        workgroupBarrier();
        for (var e = sl; e < 256u; e += 32u) {
            let t = t0 + tm + (q / 2u) * 16u + e / 16u;
            let n = n0 + tn + (q % 2u) * 16u + e % 16u;
            if (t < n_tok && n < P.n_out) {
                let o = t * P.out_stride + P.out_first + n;
#if ADD
                Y[o] = Y[o] + cs[cbase + e];
#else
                Y[o] = cs[cbase + e];
#endif
            }
        }
        workgroupBarrier();
    }
}
