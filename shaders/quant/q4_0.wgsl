// Q4_0: blocks of 32 4-bit values (16 bytes: byte j holds element j in its low
// nibble and element j + 16 in its high nibble), value = (q - 8) * d.
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let sub = g % 4u;          // 0, 1: low nibbles of bytes 0-7, 8-15; 2, 3: high nibbles
    let p = payload_base(row) + blk * 4u + (sub % 2u) * 2u;
    let shift = (sub / 2u) * 4u;
    let d = scale_f16(row, blk);
    let a = nibbles_lo_off(w32(p) >> shift, 8.0) * d;
    let b = nibbles_lo_off(w32(p + 1u) >> shift, 8.0) * d;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if I8X
// Low nibbles are elements 0-15 (x words 0-3), high nibbles 16-31 (words 4-7):
// Σ (n - 8) x = Σ n x - 8 Σ x.
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let w = W[(payload_base(row) + u * 4u) / 4u];
    let x = xq_unit(u);
    let lo = w & vec4<u32>(0x0F0F0F0Fu);
    let hi = (w >> vec4<u32>(4u)) & vec4<u32>(0x0F0F0F0Fu);
    let i = dot16(lo, x.a0, x.b0) + dot16(hi, x.a1, x.b1);
    return (dq2(i, x.d) - 8.0 * x.d.z) * scale_f16(row, u);
}
#else
#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let w = W[(payload_base(row) + u * 4u) / 4u];
    let acc = dot(nibbles_lo_off(w.x, 8.0), xv4(t4, c4)) + dot(nibbles_lo_off(w.y, 8.0), xv4(t4, c4 + 1u))
        + dot(nibbles_lo_off(w.z, 8.0), xv4(t4, c4 + 2u)) + dot(nibbles_lo_off(w.w, 8.0), xv4(t4, c4 + 3u))
        + dot(nibbles_hi_off(w.x, 8.0), xv4(t4, c4 + 4u)) + dot(nibbles_hi_off(w.y, 8.0), xv4(t4, c4 + 5u))
        + dot(nibbles_hi_off(w.z, 8.0), xv4(t4, c4 + 6u)) + dot(nibbles_hi_off(w.w, 8.0), xv4(t4, c4 + 7u));
    return acc * scale_f16(row, u);
}
#endif
#endif
