// Shared by Q5_0 and Q5_1: blocks of 32 values whose payload is 5 words, the
// fifth bits qh (bit j for value j) and then 16 bytes of nibbles as in Q4_0
// (byte j: value j low, value j + 16 high).

// Bits start .. start+3 of h as bit 4 of four bytes: the fifth bits of four
// consecutive values, to OR onto their nibbles.
fn q5_hbytes(h: u32, start: u32) -> u32 {
    let b = h >> start;
    return ((b & 1u) | ((b & 2u) << 7u) | ((b & 4u) << 14u) | ((b & 8u) << 21u)) << 4u;
}

// The four 5-bit values of bytes v, minus `off`.
fn q5_vals4(v: u32, off: f32) -> vec4<f32> {
    return bitcast<vec4<f32>>(byte_bits(v)) - (MAGIC_F + off);
}

// Values 8g .. 8g+7 of the row, minus `off`, unscaled (block g / 4).
fn q5_group(row: u32, g: u32, off: f32) -> array<f32, 8> {
    let blk = g / 4u;
    let sub = g % 4u;          // 0, 1: low nibbles of bytes 0-7, 8-15; 2, 3: high nibbles
    let base = payload_base(row) + blk * 5u;
    let qh = w32(base);
    let p = base + 1u + (sub % 2u) * 2u;
    let shift = (sub / 2u) * 4u;
    let e = sub * 8u;          // the group's first value in the block
    let a = q5_vals4(((w32(p) >> shift) & 0x0F0F0F0Fu) | q5_hbytes(qh, e), off);
    let b = q5_vals4(((w32(p + 1u) >> shift) & 0x0F0F0F0Fu) | q5_hbytes(qh, e + 4u), off);
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}
