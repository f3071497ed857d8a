// Q4_0: blocks of 32 4-bit values (16 bytes: byte j holds element j in its low
// nibble and element j + 16 in its high nibble), value = (q - 8) * d.
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let sub = g % 4u;          // 0, 1: low nibbles of bytes 0-7, 8-15; 2, 3: high nibbles
    let p = payload_base(row) + blk * 4u + (sub % 2u) * 2u;
    let shift = (sub / 2u) * 4u;
    let d = scale_f16(row, blk);
    let a = W[p];
    let b = W[p + 1u];
    var r: array<f32, 8>;
    for (var i = 0u; i < 4u; i++) {
        r[i] = (f32((byte_of(a, i) >> shift) & 15u) - 8.0) * d;
        r[i + 4u] = (f32((byte_of(b, i) >> shift) & 15u) - 8.0) * d;
    }
    return r;
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let p = payload_base(row) + u * 4u;
    var acc = 0.0;
    for (var k = 0u; k < 4u; k++) {
        let w = W[p + k];
        let lo = vec4<f32>(vec4<u32>(w & 15u, (w >> 8u) & 15u, (w >> 16u) & 15u, (w >> 24u) & 15u)) - 8.0;
        let hi = vec4<f32>(vec4<u32>((w >> 4u) & 15u, (w >> 12u) & 15u, (w >> 20u) & 15u, (w >> 28u) & 15u)) - 8.0;
        acc += dot(lo, (*x)[k]) + dot(hi, (*x)[4u + k]);
    }
    return acc * scale_f16(row, u);
}
#endif
