const QU: u32 = 8u;

fn bf16x2(w: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xFFFF0000u));
}

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let w = W[(payload_base(row) + 4u * g) / 4u];
    let a = bf16x2(w.x);
    let b = bf16x2(w.y);
    let c = bf16x2(w.z);
    let d = bf16x2(w.w);
    return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
}

#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let w = W[(payload_base(row) + 4u * u) / 4u];
    let w0 = vec4<f32>(bf16x2(w.x), bf16x2(w.y));
    let w1 = vec4<f32>(bf16x2(w.z), bf16x2(w.w));
    return dot(w0, xv4(t4, c4)) + dot(w1, xv4(t4, c4 + 1u));
}
#endif
