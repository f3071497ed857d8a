// Shared by every weight type.
struct WeightGeom {
    row_words: u32,
    scale_words: u32,
    scale_off: u32,
    rows: u32,
}

fn payload_base(row: u32) -> u32 { return row * wg().row_words; }

// The i-th f16 of a row's scale region.
fn scale_f16(row: u32, i: u32) -> f32 {
    let word = W[wg().scale_off + row * wg().scale_words + i / 2u];
    return unpack2x16float(word)[i % 2u];
}

// The i-th 32-bit scale word of a row (Q4_1's d and m).
fn scale_word(row: u32, i: u32) -> u32 {
    return W[wg().scale_off + row * wg().scale_words + i];
}

fn byte_of(w: u32, i: u32) -> u32 { return (w >> (8u * i)) & 0xFFu; }

// Signed byte i of a word.
fn sbyte_of(w: u32, i: u32) -> i32 { return bitcast<i32>(w << (24u - 8u * i)) >> 24u; }
