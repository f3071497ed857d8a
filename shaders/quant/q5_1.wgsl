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
    let s = q5_unit(row, u, t4, 0.0);
    let dm = unpack2x16float(scale_word(row, u));
    return s.x * dm.x + s.y * dm.y;
}
#endif
