// Shared by every weight type. W is read as vec4<u32>: every dot unit's
// payload is 16-byte aligned (weights.rs lays rows out so), so the hot loads
// are 128-bit; single words (scales) come through w32().
struct WeightGeom {
    row_words: u32,
    scale_words: u32,
    scale_off: u32,
    rows: u32,
}

fn w32(i: u32) -> u32 { return W[i >> 2u][i & 3u]; }

fn payload_base(row: u32) -> u32 { return row * wg().row_words; }

// The i-th f16 of a row's scale region.
fn scale_f16(row: u32, i: u32) -> f32 {
    let word = w32(wg().scale_off + row * wg().scale_words + i / 2u);
    return unpack2x16float(word)[i % 2u];
}

// The i-th 32-bit scale word of a row (Q4_1's d and m).
fn scale_word(row: u32, i: u32) -> u32 {
    return w32(wg().scale_off + row * wg().scale_words + i);
}

fn byte_of(w: u32, i: u32) -> u32 { return (w >> (8u * i)) & 0xFFu; }

// Signed byte i of a word.
fn sbyte_of(w: u32, i: u32) -> i32 { return bitcast<i32>(w << (24u - 8u * i)) >> 24u; }

// Small integers become floats by OR-ing them into the mantissa of 2^23 and
// subtracting 2^23: full-rate integer and float ops instead of conversions,
// which run at a fraction of the rate on many GPUs.
const MAGIC: u32 = 0x4B000000u;
const MAGIC_F: f32 = 8388608.0;

// The four bytes of w, each in the mantissa of 2^23 (as bits). Whole bytes
// (shift, mask 0xFF) so that compilers can use a byte-permute instruction.
fn byte_bits(w: u32) -> vec4<u32> {
    return vec4<u32>(w & 0xFFu, (w >> 8u) & 0xFFu, (w >> 16u) & 0xFFu, w >> 24u) | vec4<u32>(MAGIC);
}

// The four bytes of w as floats (0..255).
fn ubytes(w: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(byte_bits(w)) - MAGIC_F;
}

// The four bytes of w as signed floats (-128..127): flip the sign bit, then
// one subtraction removes both offsets (exact: 2^23 + 128 is a float).
fn sbytes(w: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(byte_bits(w ^ 0x80808080u)) - (MAGIC_F + 128.0);
}

// The low nibbles of the four bytes of w as floats (0..15).
fn nibbles_lo(w: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(byte_bits(w & 0x0F0F0F0Fu)) - MAGIC_F;
}

fn nibbles_hi(w: u32) -> vec4<f32> {
    return nibbles_lo(w >> 4u);
}

// The low nibbles minus `off` (Q4_0's 8), in the same one subtraction.
fn nibbles_lo_off(w: u32, off: f32) -> vec4<f32> {
    return bitcast<vec4<f32>>(byte_bits(w & 0x0F0F0F0Fu)) - (MAGIC_F + off);
}

fn nibbles_hi_off(w: u32, off: f32) -> vec4<f32> {
    return nibbles_lo_off(w >> 4u, off);
}

#if DOT
// The x values a 32-weight dot unit meets (columns 4*c4 .. 4*c4+31), as eight
// vec4s, and their sum (for the types whose dequantization adds an offset).
fn x8(t4: u32, c4: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(xv4(t4, c4), xv4(t4, c4 + 1u), xv4(t4, c4 + 2u), xv4(t4, c4 + 3u),
                               xv4(t4, c4 + 4u), xv4(t4, c4 + 5u), xv4(t4, c4 + 6u), xv4(t4, c4 + 7u));
}

fn sum8(x: array<vec4<f32>, 8>) -> f32 {
    return dot(x[0] + x[1] + x[2] + x[3] + x[4] + x[5] + x[6] + x[7], vec4<f32>(1.0));
}
#endif
