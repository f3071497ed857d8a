const QU: u32 = 8u;

fn bf16x2(w: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xFFFF0000u));
}

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let p = payload_base(row) + 4u * g;
    let a = bf16x2(W[p]);
    let b = bf16x2(W[p + 1u]);
    let c = bf16x2(W[p + 2u]);
    let d = bf16x2(W[p + 3u]);
    return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let p = payload_base(row) + 4u * u;
    let w0 = vec4<f32>(bf16x2(W[p]), bf16x2(W[p + 1u]));
    let w1 = vec4<f32>(bf16x2(W[p + 2u]), bf16x2(W[p + 3u]));
    return dot(w0, (*x)[0]) + dot(w1, (*x)[1]);
}
#endif
