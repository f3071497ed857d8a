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
    let dd = unpack2x16float(w32(p));
    let sm = k4_scale_min(p, j);
    let d = dd.x * sm.x;
    let m = dd.y * sm.y;
    let q = p + 4u + (j / 2u) * 8u + (g % 4u) * 2u;
    let shift = (j % 2u) * 4u;
    let a = nibbles_lo(w32(q) >> shift) * d - m;
    let b = nibbles_lo(w32(q + 1u) >> shift) * d - m;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let blk = u / 8u;
    let j = u % 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let q = (p + 4u + (j / 2u) * 8u) / 4u;
    let shift = (j % 2u) * 4u;
    let a = W[q];
    let b = W[q + 1u];
    let x = x8(t4, c4);
    let acc = dot(nibbles_lo(a.x >> shift), x[0]) + dot(nibbles_lo(a.y >> shift), x[1]) + dot(nibbles_lo(a.z >> shift), x[2])
        + dot(nibbles_lo(a.w >> shift), x[3]) + dot(nibbles_lo(b.x >> shift), x[4]) + dot(nibbles_lo(b.y >> shift), x[5])
        + dot(nibbles_lo(b.z >> shift), x[6]) + dot(nibbles_lo(b.w >> shift), x[7]);
    let xsum = sum8(x);
    let dd = unpack2x16float(w32(p));
    let sm = k4_scale_min(p, j);
    return dd.x * sm.x * acc - dd.y * sm.y * xsum;
}
#endif
