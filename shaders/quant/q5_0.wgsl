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
    let c4 = u * (QU / 4u);
    let base = payload_base(row) + u * 5u;
    let qh = w32(base);
    var acc = 0.0;
    for (var k = 0u; k < 4u; k++) {
        let w = w32(base + 1u + k);
        acc += dot(q5_vals4((w & 0x0F0F0F0Fu) | q5_hbytes(qh, 4u * k), 16.0), xv4(t4, c4 + k))
            + dot(q5_vals4(((w >> 4u) & 0x0F0F0F0Fu) | q5_hbytes(qh, 16u + 4u * k), 16.0), xv4(t4, c4 + 4u + k));
    }
    return acc * scale_f16(row, u);
}
#endif
