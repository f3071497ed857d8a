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
    let dd = unpack2x16float(W[p]);
    let sm = k4_scale_min(p, j);
    let d = dd.x * sm.x;
    let m = dd.y * sm.y;
    let l0 = (g % 4u) * 8u;
    let q = p + 12u + (j / 2u) * 8u + l0 / 4u;
    let h = p + 4u + l0 / 4u;
    let shift = (j % 2u) * 4u;
    var r: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) {
        let lo = (byte_of(W[q + i / 4u], i % 4u) >> shift) & 15u;
        let hi = (byte_of(W[h + i / 4u], i % 4u) >> j) & 1u;
        r[i] = d * f32(lo + 16u * hi) - m;
    }
    return r;
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let blk = u / 8u;
    let j = u % 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let dd = unpack2x16float(W[p]);
    let sm = k4_scale_min(p, j);
    let q = p + 12u + (j / 2u) * 8u;
    let shift = (j % 2u) * 4u;
    var acc = 0.0;
    var xsum = 0.0;
    for (var k = 0u; k < 8u; k++) {
        let w = W[q + k] >> shift;
        let hb = W[p + 4u + k] >> j;
        let v = vec4<f32>(vec4<u32>((w & 15u) | ((hb & 1u) << 4u), ((w >> 8u) & 15u) | (((hb >> 8u) & 1u) << 4u),
                                    ((w >> 16u) & 15u) | (((hb >> 16u) & 1u) << 4u), ((w >> 24u) & 15u) | (((hb >> 24u) & 1u) << 4u)));
        acc += dot(v, (*x)[k]);
        xsum += dot((*x)[k], vec4<f32>(1.0));
    }
    return dd.x * sm.x * acc - dd.y * sm.y * xsum;
}
#endif
