// Q5_1: value = q * d + m, q of 5 bits (quant/q5.wgsl); d and m are one scale word.
#include "quant/q5.wgsl"
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    var v = q5_group(row, g, 0.0);
    let dm = unpack2x16float(scale_word(row, g / 4u));
    for (var i = 0u; i < 8u; i++) {
        v[i] = v[i] * dm.x + dm.y;
    }
    return v;
}

#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let base = payload_base(row) + u * 5u;
    let qh = w32(base);
    var x = x8(t4, c4);
    var acc = 0.0;
    for (var k = 0u; k < 4u; k++) {
        let w = w32(base + 1u + k);
        acc += dot(q5_vals4((w & 0x0F0F0F0Fu) | q5_hbytes(qh, 4u * k), 0.0), x[k])
            + dot(q5_vals4(((w >> 4u) & 0x0F0F0F0Fu) | q5_hbytes(qh, 16u + 4u * k), 0.0), x[4u + k]);
    }
    let dm = unpack2x16float(scale_word(row, u));
    return acc * dm.x + sum8(x) * dm.y;
}
#endif
