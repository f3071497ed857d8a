const QU: u32 = 8u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let p = payload_base(row) + 4u * g;
    let a = unpack2x16float(W[p]);
    let b = unpack2x16float(W[p + 1u]);
    let c = unpack2x16float(W[p + 2u]);
    let d = unpack2x16float(W[p + 3u]);
    return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let p = payload_base(row) + 4u * u;
    let w0 = vec4<f32>(unpack2x16float(W[p]), unpack2x16float(W[p + 1u]));
    let w1 = vec4<f32>(unpack2x16float(W[p + 2u]), unpack2x16float(W[p + 3u]));
    return dot(w0, (*x)[0]) + dot(w1, (*x)[1]);
}
#endif
