// Q8_0: blocks of 32 signed bytes (8 payload words) and one f16 scale.
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let p = payload_base(row) + blk * 8u + (g % 4u) * 2u;
    let d = scale_f16(row, blk);
    let a = sbytes(w32(p)) * d;
    let b = sbytes(w32(p + 1u)) * d;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if I8X
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let p = (payload_base(row) + u * 8u) / 4u;
    let x = xq_unit(u);
    let i = dot16(W[p], x.a0, x.b0) + dot16(W[p + 1u], x.a1, x.b1);
    return dq2(i, x.d) * scale_f16(row, u);
}
#else
#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let p = (payload_base(row) + u * 8u) / 4u;
    let a = W[p];
    let b = W[p + 1u];
    let acc = dot(sbytes(a.x), xv4(t4, c4)) + dot(sbytes(a.y), xv4(t4, c4 + 1u)) + dot(sbytes(a.z), xv4(t4, c4 + 2u))
        + dot(sbytes(a.w), xv4(t4, c4 + 3u)) + dot(sbytes(b.x), xv4(t4, c4 + 4u)) + dot(sbytes(b.y), xv4(t4, c4 + 5u))
        + dot(sbytes(b.z), xv4(t4, c4 + 6u)) + dot(sbytes(b.w), xv4(t4, c4 + 7u));
    return acc * scale_f16(row, u);
}
#endif
#endif
