// Q5_K: super-blocks of 256 values in 44 words: d|dmin, 12 scale bytes, 32
// bytes of high bits (bit j of byte l is the fifth bit of value l of sub-block
// j), 128 bytes of nibbles as in Q4_K; value = d*sc*(q + 16h) - dmin*m.
#include "quant/kquant.wgsl"
const QU: u32 = 32u;
const K_WORDS: u32 = 44u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 32u;
    let j = (g % 32u) / 4u;
    let p = payload_base(row) + blk * K_WORDS;
    let dd = unpack2x16float(w32(p));
    let sm = k4_scale_min(p, j);
    let d = dd.x * sm.x;
    let m = dd.y * sm.y;
    let l0 = (g % 4u) * 8u;
    let q = p + 12u + (j / 2u) * 8u + l0 / 4u;
    let h = p + 4u + l0 / 4u;
    let shift = (j % 2u) * 4u;
    var r: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) {
        let lo = (byte_of(w32(q + i / 4u), i % 4u) >> shift) & 15u;
        let hi = (byte_of(w32(h + i / 4u), i % 4u) >> j) & 1u;
        r[i] = d * f32(lo + 16u * hi) - m;
    }
    return r;
}

#if DOT
fn q5_vals(w: u32, hb: u32) -> vec4<f32> {
    let q = vec4<u32>((w & 15u) | ((hb & 1u) << 4u), ((w >> 8u) & 15u) | (((hb >> 8u) & 1u) << 4u),
                      ((w >> 16u) & 15u) | (((hb >> 16u) & 1u) << 4u), ((w >> 24u) & 15u) | (((hb >> 24u) & 1u) << 4u));
    return bitcast<vec4<f32>>(q | vec4<u32>(MAGIC)) - MAGIC_F;
}

fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let blk = u / 8u;
    let j = u % 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let q = (p + 12u + (j / 2u) * 8u) / 4u;
    let hq = (p + 4u) / 4u;
    let shift = (j % 2u) * 4u;
    let a = W[q] >> vec4<u32>(shift);
    let b = W[q + 1u] >> vec4<u32>(shift);
    let ha = W[hq] >> vec4<u32>(j);
    let hb = W[hq + 1u] >> vec4<u32>(j);
    let x = x8(t4, c4);
    let acc = dot(q5_vals(a.x, ha.x), x[0]) + dot(q5_vals(a.y, ha.y), x[1]) + dot(q5_vals(a.z, ha.z), x[2]) + dot(q5_vals(a.w, ha.w), x[3])
        + dot(q5_vals(b.x, hb.x), x[4]) + dot(q5_vals(b.y, hb.y), x[5]) + dot(q5_vals(b.z, hb.z), x[6]) + dot(q5_vals(b.w, hb.w), x[7]);
    let xsum = sum8(x);
    let dd = unpack2x16float(w32(p));
    let sm = k4_scale_min(p, j);
    return dd.x * sm.x * acc - dd.y * sm.y * xsum;
}
#endif
