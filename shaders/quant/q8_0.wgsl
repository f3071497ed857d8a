// Q8_0: blocks of 32 signed bytes (8 payload words) and one f16 scale.
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let p = payload_base(row) + blk * 8u + (g % 4u) * 2u;
    let d = scale_f16(row, blk);
    let a = W[p];
    let b = W[p + 1u];
    var r: array<f32, 8>;
    for (var i = 0u; i < 4u; i++) {
        r[i] = f32(sbyte_of(a, i)) * d;
        r[i + 4u] = f32(sbyte_of(b, i)) * d;
    }
    return r;
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let p = payload_base(row) + u * 8u;
    var acc = 0.0;
    for (var k = 0u; k < 8u; k++) {
        let w = W[p + k];
        let q = vec4<f32>(f32(sbyte_of(w, 0u)), f32(sbyte_of(w, 1u)), f32(sbyte_of(w, 2u)), f32(sbyte_of(w, 3u)));
        acc += dot(q, (*x)[k]);
    }
    return acc * scale_f16(row, u);
}
#endif
