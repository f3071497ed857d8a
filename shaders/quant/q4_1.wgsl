// Q4_1: like Q4_0 without the offset, value = q * d + m; d and m are one scale word.
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let sub = g % 4u;
    let p = payload_base(row) + blk * 4u + (sub % 2u) * 2u;
    let shift = (sub / 2u) * 4u;
    let dm = unpack2x16float(scale_word(row, blk));
    let a = W[p];
    let b = W[p + 1u];
    var r: array<f32, 8>;
    for (var i = 0u; i < 4u; i++) {
        r[i] = f32((byte_of(a, i) >> shift) & 15u) * dm.x + dm.y;
        r[i + 4u] = f32((byte_of(b, i) >> shift) & 15u) * dm.x + dm.y;
    }
    return r;
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let p = payload_base(row) + u * 4u;
    var acc = 0.0;
    var xsum = 0.0;
    for (var k = 0u; k < 4u; k++) {
        let w = W[p + k];
        let lo = vec4<f32>(vec4<u32>(w & 15u, (w >> 8u) & 15u, (w >> 16u) & 15u, (w >> 24u) & 15u));
        let hi = vec4<f32>(vec4<u32>((w >> 4u) & 15u, (w >> 12u) & 15u, (w >> 20u) & 15u, (w >> 28u) & 15u));
        acc += dot(lo, (*x)[k]) + dot(hi, (*x)[4u + k]);
        xsum += dot((*x)[k] + (*x)[4u + k], vec4<f32>(1.0));
    }
    let dm = unpack2x16float(scale_word(row, u));
    return acc * dm.x + xsum * dm.y;
}
#endif
