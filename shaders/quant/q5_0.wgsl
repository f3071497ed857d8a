// Q5_0: value = (q - 16) * d, q of 5 bits (quant/q5.wgsl); d is the scale word's f16.
#include "quant/q5.wgsl"
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    var v = q5_group(row, g, 16.0);
    let d = scale_f16(row, g / 4u);
    for (var i = 0u; i < 8u; i++) {
        v[i] *= d;
    }
    return v;
}

#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    return q5_unit(row, u, t4, 16.0).x * scale_f16(row, u);
}
#endif
