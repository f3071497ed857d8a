const QU: u32 = 8u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let p = payload_base(row) + 8u * g;
    var r: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) { r[i] = bitcast<f32>(W[p + i]); }
    return r;
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let p = payload_base(row) + 8u * u;
    let w0 = vec4<f32>(bitcast<f32>(W[p]), bitcast<f32>(W[p + 1u]), bitcast<f32>(W[p + 2u]), bitcast<f32>(W[p + 3u]));
    let w1 = vec4<f32>(bitcast<f32>(W[p + 4u]), bitcast<f32>(W[p + 5u]), bitcast<f32>(W[p + 6u]), bitcast<f32>(W[p + 7u]));
    return dot(w0, (*x)[0]) + dot(w1, (*x)[1]);
}
#endif
