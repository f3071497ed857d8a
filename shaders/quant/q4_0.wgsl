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
