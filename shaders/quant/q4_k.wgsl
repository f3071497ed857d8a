// Q4_K: super-blocks of 256 values in 36 words: d|dmin, 12 scale bytes, 128
// bytes of nibbles. Sub-block j (32 values) takes the low (even j) or high (odd
// j) nibbles of bytes 32*(j/2)..; value = d*sc*q - dmin*m.
#include "quant/kquant.wgsl"
const QU: u32 = 32u;
const K_WORDS: u32 = 36u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 32u;
    let j = (g % 32u) / 4u;
    let p = payload_base(row) + blk * K_WORDS;
    let dd = unpack2x16float(W[p]);
    let sm = k4_scale_min(p, j);
    let d = dd.x * sm.x;
    let m = dd.y * sm.y;
    let q = p + 4u + (j / 2u) * 8u + (g % 4u) * 2u;
    let shift = (j % 2u) * 4u;
    var r: array<f32, 8>;
    for (var i = 0u; i < 4u; i++) {
        r[i] = d * f32((byte_of(W[q], i) >> shift) & 15u) - m;
        r[i + 4u] = d * f32((byte_of(W[q + 1u], i) >> shift) & 15u) - m;
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
    let q = p + 4u + (j / 2u) * 8u;
    let shift = (j % 2u) * 4u;
    var acc = 0.0;
    var xsum = 0.0;
    for (var k = 0u; k < 8u; k++) {
        let w = W[q + k] >> shift;
        let v = vec4<f32>(vec4<u32>(w & 15u, (w >> 8u) & 15u, (w >> 16u) & 15u, (w >> 24u) & 15u));
        acc += dot(v, (*x)[k]);
        xsum += dot((*x)[k], vec4<f32>(1.0));
    }
    return dd.x * sm.x * acc - dd.y * sm.y * xsum;
}
#endif
