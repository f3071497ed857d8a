const QU: u32 = 8u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let p = (payload_base(row) + 8u * g) / 4u;
    let a = bitcast<vec4<f32>>(W[p]);
    let b = bitcast<vec4<f32>>(W[p + 1u]);
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if DOT
// x4: index (in vec4s) of the unit's first 4 x values.
fn dq_dot(row: u32, u: u32, x4: u32) -> f32 {
    let p = (payload_base(row) + 8u * u) / 4u;
    return dot(bitcast<vec4<f32>>(W[p]), xv4(x4)) + dot(bitcast<vec4<f32>>(W[p + 1u]), xv4(x4 + 1u));
}
#endif
