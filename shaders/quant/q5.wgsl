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

#if DOT
// Over dot unit u (one block): Σ (q - off)·x and Σ x.
fn q5_unit(row: u32, u: u32, t4: u32, off: f32) -> vec2<f32> {
    let c4 = u * 8u;
    let base = payload_base(row) + u * 5u;
    let qh = w32(base);
    var acc = 0.0;
    var xs = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) {
        let w = w32(base + 1u + k);
        let xa = xv4(t4, c4 + k);
        let xb = xv4(t4, c4 + 4u + k);
        acc += dot(q5_vals4((w & 0x0F0F0F0Fu) | q5_hbytes(qh, 4u * k), off), xa)
            + dot(q5_vals4(((w >> 4u) & 0x0F0F0F0Fu) | q5_hbytes(qh, 16u + 4u * k), off), xb);
        xs += xa + xb;
    }
    return vec2<f32>(acc, dot(xs, vec4<f32>(1.0)));
}
#endif
