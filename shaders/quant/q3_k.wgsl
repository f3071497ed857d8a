// Q3_K: super-blocks of 256 values in 27 words: 32 bytes of high-bit mask,
// 64 bytes of 2-bit values (as in Q2_K), 12 bytes of 6-bit scales; d in the
// scale region. Value v: half h = v/128, shift s = (v%128)/32, l = v%32: low
// bits 2s of byte 32h + l, high bit 4h + s of mask byte l (clear: minus 4);
// value = d * (scale - 32) * q, sub-block v/16. Blocks are not 16-byte
// aligned (27 words), so every load is a word.
const QU: u32 = 32u;
const K_WORDS: u32 = 27u;

// Byte i of the scale bytes (words 24..26).
fn q3_sbyte(p: u32, i: u32) -> u32 { return byte_of(w32(p + 24u + i / 4u), i % 4u); }

// The signed scale of sub-block j: low nibble from bytes 0..7 (j < 8) or
// their high nibbles (j >= 8), two high bits from byte 8 + j%4.
fn q3_scale(p: u32, j: u32) -> f32 {
    var lo = q3_sbyte(p, j % 8u);
    if (j >= 8u) {
        lo = lo >> 4u;
    }
    let hi = (q3_sbyte(p, 8u + j % 4u) >> (2u * (j / 4u))) & 3u;
    return f32(i32((lo & 15u) | (hi << 4u)) - 32);
}

// The four 3-bit values (0..7, before the offset of 4) of low-bit word qw and
// mask word hw.
fn q3_bits(qw: u32, hw: u32, s2: u32, hs: u32) -> vec4<f32> {
    return ubytes(((qw >> s2) & 0x03030303u) | (((hw >> hs) & 0x01010101u) << 2u));
}

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 32u;
    let e0 = (g % 32u) * 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let h = e0 / 128u;
    let s = (e0 % 128u) / 32u;
    let l0 = e0 % 32u;
    let q = p + 8u + (32u * h + l0) / 4u;
    let m = p + l0 / 4u;
    let dl = scale_f16(row, blk) * q3_scale(p, e0 / 16u);
    let a = (q3_bits(w32(q), w32(m), 2u * s, 4u * h + s) - 4.0) * dl;
    let b = (q3_bits(w32(q + 1u), w32(m + 1u), 2u * s, 4u * h + s) - 4.0) * dl;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if DOT
// Dot unit u: the 32 values of one (half, shift), two sub-blocks of 16:
// Σ (q - 4) x = Σ q x - 4 Σ x per sub-block.
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let h = (u % 8u) / 4u;
    let s = u % 4u;
    let p = payload_base(row) + (u / 8u) * K_WORDS;
    let q = p + 8u + 8u * h;
    let s2 = 2u * s;
    let hs = 4u * h + s;
    let x = x8(t4, c4);
    let acc0 = dot(q3_bits(w32(q), w32(p), s2, hs), x[0]) + dot(q3_bits(w32(q + 1u), w32(p + 1u), s2, hs), x[1])
        + dot(q3_bits(w32(q + 2u), w32(p + 2u), s2, hs), x[2]) + dot(q3_bits(w32(q + 3u), w32(p + 3u), s2, hs), x[3]);
    let acc1 = dot(q3_bits(w32(q + 4u), w32(p + 4u), s2, hs), x[4]) + dot(q3_bits(w32(q + 5u), w32(p + 5u), s2, hs), x[5])
        + dot(q3_bits(w32(q + 6u), w32(p + 6u), s2, hs), x[6]) + dot(q3_bits(w32(q + 7u), w32(p + 7u), s2, hs), x[7]);
    let one = vec4<f32>(1.0);
    let xs0 = dot(x[0] + x[1] + x[2] + x[3], one);
    let xs1 = dot(x[4] + x[5] + x[6] + x[7], one);
    let j0 = 8u * h + 2u * s;
    return scale_f16(row, u / 8u) * (q3_scale(p, j0) * (acc0 - 4.0 * xs0) + q3_scale(p, j0 + 1u) * (acc1 - 4.0 * xs1));
}
#endif
