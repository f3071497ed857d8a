const QU: u32 = 8u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let w = W[(payload_base(row) + 4u * g) / 4u];
    let a = unpack2x16float(w.x);
    let b = unpack2x16float(w.y);
    let c = unpack2x16float(w.z);
    let d = unpack2x16float(w.w);
    return array<f32, 8>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
}

#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let w = W[(payload_base(row) + 4u * u) / 4u];
    let w0 = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
    let w1 = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
    return dot(w0, xv4(t4, c4)) + dot(w1, xv4(t4, c4 + 1u));
}
#endif
