// matmul.wgsl's product on the GPU's matrix units (tensor cores), natively
// where wgpu offers cooperative matrices of 16×16×16 f16 with f32 sums (the
// browser's WebGPU has none yet: it keeps matmul.wgsl). Same tiles, same
// parameters, same MODE (STORE, ADD) and GROUPED gather/scatter.
//
// A workgroup of 8 subgroups of 32 lanes makes 64 tokens × 128 rows. Each K
// step stages 32 columns of x and of the dequantized weights as f16 in
// workgroup memory (x rounded to f16 there: 11 significant bits, the f32 sums
// keep the rest); subgroup s then multiplies its 32 tokens × 32 rows (2 × 2
// tiles of 16 × 16) with four matrix multiply-adds per 16 columns.
// The four sums are four named matrices, not an array: 128-token tiles with
// an array of eight ran at 0.6× the speed of this on the H200 (2026-12-01).
// Full tiles store straight to Y (ADD loads Y as the starting sums); partial
// and grouped tiles go through workgroup memory, one 16 × 16 tile per
// subgroup at a time, so every store is checked and may be scattered.
enable f16;
enable wgpu_cooperative_matrix;
#include "step.wgsl"

#if BM128
// 128 tokens per tile (dense only, no GROUPED): each subgroup makes 64 tokens
// × 32 rows, so a step's staged weights feed twice the products.
const BM: u32 = 128u;
#else
const BM: u32 = 64u;    // tokens per tile
#endif
const BN: u32 = 128u;   // rows per tile
#if BK64
const BK: u32 = 64u;    // columns per step
#else
const BK: u32 = 32u;
#endif
// Row stride of the staged tiles in f16: BK + 8 keeps every row 16-byte
// aligned (the matrix loads need it) and moves consecutive rows 4 banks on.
const SK: u32 = BK + 8u;
const XC: u32 = BK / 4u;   // vec4s of x per token per step

#include "matmul_tile.wgsl"

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

fn wg() -> WeightGeom { return P.geom; }
#include "quant/common.wgsl"
#include "quant/{{WTYPE}}.wgsl"

var<workgroup> xs: array<f16, BM * SK>;   // token-major (A, row-major)
var<workgroup> ws: array<f16, BN * SK>;   // row-major W = column-major B
var<workgroup> cs: array<f32, 2048>;   // one 16 × 16 tile per subgroup

// One step's staging of a lane: its vec4s of x (lanes XC·i .. XC·i + XC-1
// read token i's BK columns, coalesced; 256 / XC tokens per pass) and its
// dequantized weights (row lid % 128, columns (BK/2)(lid/128) .. + BK/2).
const XH: u32 = BM * XC / 256u;
const WH: u32 = BK / 16u;
struct Stage {
    x: array<vec4<f32>, XH>,
    w: array<array<f32, 8>, WH>,
}

fn stage_load(k0: u32, t0: u32, n_tok: u32, n0: u32, w_row0: u32, lid: u32) -> Stage {
    var s: Stage;
    let xc4 = lid % XC;
    let xt = lid / XC;
    for (var h = 0u; h < XH; h++) {
        let t = t0 + xt + h * (256u / XC);
#if GROUPED
        let xrow = slots[min(t, n_tok - 1u)] / P.x_row_div;
#else
        let xrow = min(t, n_tok - 1u);
#endif
        s.x[h] = select(vec4<f32>(0.0), X[(xrow * P.x_stride + k0) / 4u + xc4], t < n_tok);
    }
    let n = n0 + lid % BN;
    let wh = (lid / BN) * (BK / 2u);
    for (var h = 0u; h < WH; h++) {
        s.w[h] = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        if (n < P.n_out) {
            s.w[h] = dq8(w_row0 + n, (k0 + wh + h * 8u) / 8u);
        }
    }
    return s;
}

fn stage_store(s: Stage, lid: u32) {
    let xc4 = lid % XC;
    let xt = lid / XC;
    for (var h = 0u; h < XH; h++) {
        let at = (xt + h * (256u / XC)) * SK + xc4 * 4u;
        let v = s.x[h];
        xs[at] = f16(v.x);
        xs[at + 1u] = f16(v.y);
        xs[at + 2u] = f16(v.z);
        xs[at + 3u] = f16(v.w);
    }
    let at = (lid % BN) * SK + (lid / BN) * (BK / 2u);
    for (var h = 0u; h < WH; h++) {
        for (var i = 0u; i < 8u; i++) {
            ws[at + h * 8u + i] = f16(s.w[h][i]);
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) sl: u32) {
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
    let direct = false;
#else
    let t0 = wid.y * BM;
    let n_tok = S.n_tokens;
    let w_row0 = 0u;
    let direct = (t0 + BM <= n_tok) & (n0 + BN <= P.n_out);
#endif
    // Y's row stride, as a named value: naga's SPIR-V writer emits a matrix
    // load's or store's stride and pointer index only if they were evaluated
    // before the call, so every one of them is a `let`.
    let ys = P.out_stride;
    // This subgroup's 32 tokens (tm) and 32 rows (tn) of the tile, and where
    // its four 16 × 16 tiles start in Y (used only by whole tiles).
    let tm = (sg / 4u) * (BM / 2u);
    let tn = (sg % 4u) * 32u;
    let o00 = (t0 + tm) * ys + P.out_first + n0 + tn;
    let o01 = o00 + 16u;
    let o10 = o00 + 16u * ys;
    let o11 = o10 + 16u;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
#if BM128
    let o20 = o10 + 16u * ys;
    let o21 = o20 + 16u;
    let o30 = o20 + 16u * ys;
    let o31 = o30 + 16u;
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
#endif
#if ADD
    if (direct) {
        c00 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o00], ys);
        c01 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o01], ys);
        c10 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o10], ys);
        c11 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o11], ys);
#if BM128
        c20 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o20], ys);
        c21 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o21], ys);
        c30 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o30], ys);
        c31 = coopLoadT<coop_mat16x16<f32, C>>(&Y[o31], ys);
#endif
    }
#endif
#if NOMMA
    var probe = 0.0;
#endif
    for (var k0 = 0u; k0 < P.k; k0 += BK) {
#if NOSTAGE
#else
        stage_store(stage_load(k0, t0, n_tok, n0, w_row0, lid), lid);
#endif
        workgroupBarrier();
#if NOMMA
        probe += f32(xs[lid]) + f32(ws[lid]);
#else
        for (var kk = 0u; kk < BK; kk += 16u) {
            let ia0 = tm * SK + kk;
            let ia1 = ia0 + 16u * SK;
            let ib0 = tn * SK + kk;
            let ib1 = ib0 + 16u * SK;
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[ia0], SK);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[ia1], SK);
            let b0 = coopLoad<coop_mat16x16<f16, B>>(&ws[ib0], SK);
            let b1 = coopLoad<coop_mat16x16<f16, B>>(&ws[ib1], SK);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
#if BM128
            let ia2 = ia1 + 16u * SK;
            let ia3 = ia2 + 16u * SK;
            let a2 = coopLoadT<coop_mat16x16<f16, A>>(&xs[ia2], SK);
            let a3 = coopLoadT<coop_mat16x16<f16, A>>(&xs[ia3], SK);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
#endif
        }
#endif
        workgroupBarrier();
    }
#if NOMMA
    // Diagnostic only (timing the staging alone): keeps the staged values live.
    if (probe == 12345.678) {
        Y[lid] = probe;
    }
#endif
    if (direct) {
        coopStoreT(c00, &Y[o00], ys);
        coopStoreT(c01, &Y[o01], ys);
        coopStoreT(c10, &Y[o10], ys);
        coopStoreT(c11, &Y[o11], ys);
#if BM128
        coopStoreT(c20, &Y[o20], ys);
        coopStoreT(c21, &Y[o21], ys);
        coopStoreT(c30, &Y[o30], ys);
        coopStoreT(c31, &Y[o31], ys);
#endif
        return;
    }
    let cbase = sg * 256u;
    // Checked stores: tile q of this subgroup (q / 2: 16-token tile, q % 2:
    // row half), through its 16 × 16 of cs.
    for (var q = 0u; q < BM / 16u; q++) {
        var c = c00;
        if (q == 1u) { c = c01; }
        if (q == 2u) { c = c10; }
        if (q == 3u) { c = c11; }
#if BM128
        if (q == 4u) { c = c20; }
        if (q == 5u) { c = c21; }
        if (q == 6u) { c = c30; }
        if (q == 7u) { c = c31; }
#endif
        coopStoreT(c, &cs[cbase], 16u);
        workgroupBarrier();
        for (var e = sl; e < 256u; e += 32u) {
            let t = t0 + tm + (q / 2u) * 16u + e / 16u;
            let n = n0 + tn + (q % 2u) * 16u + e % 16u;
            if (t < n_tok && n < P.n_out) {
                let v = cs[cbase + e];
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
        workgroupBarrier();
    }
}
