const QU: u32 = 8u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let p = (payload_base(row) + 8u * g) / 4u;
    let a = bitcast<vec4<f32>>(W[p]);
    let b = bitcast<vec4<f32>>(W[p + 1u]);
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if DOT
// t4: index (in vec4s) of the token's x row; the unit starts at column vec4 c4.
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let p = (payload_base(row) + 8u * u) / 4u;
    return dot(bitcast<vec4<f32>>(W[p]), xv4(t4, c4)) + dot(bitcast<vec4<f32>>(W[p + 1u]), xv4(t4, c4 + 1u));
}
#endif
