// Q2_K: super-blocks of 256 values in 20 words: 16 scale bytes (low nibble
// scale, high nibble min, one per 16 values), then 64 bytes of 2-bit values;
// d|dmin in the scale region. Value v: half h = v/128, shift s = (v%128)/32,
// l = v%32: bits 2s of byte 32h + l; value = d*sc*q - dmin*m, sub-block v/16.
const QU: u32 = 32u;
const K_WORDS: u32 = 20u;

// The four 2-bit values at shift `s2` of the bytes of w, as floats.
fn q2_vals(w: u32, s2: u32) -> vec4<f32> { return ubytes((w >> s2) & 0x03030303u); }

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 32u;
    let e0 = (g % 32u) * 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let s2 = 2u * ((e0 % 128u) / 32u);
    let q = p + 4u + (32u * (e0 / 128u) + e0 % 32u) / 4u;
    let j = e0 / 16u;
    let sc = byte_of(w32(p + j / 4u), j % 4u);
    let dm = unpack2x16float(scale_word(row, blk));
    let dl = dm.x * f32(sc & 15u);
    let ml = dm.y * f32(sc >> 4u);
    let a = q2_vals(w32(q), s2) * dl - ml;
    let b = q2_vals(w32(q + 1u), s2) * dl - ml;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if DOT
// Dot unit u: the 32 values of one (half, shift), two sub-blocks of 16.
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let h = (u % 8u) / 4u;
    let s = u % 4u;
    let p = payload_base(row) + (u / 8u) * K_WORDS;
    let qw = (p + 4u + 8u * h) / 4u;
    let a = W[qw];
    let b = W[qw + 1u];
    let s2 = 2u * s;
    let x = x8(t4, c4);
    let acc0 = dot(q2_vals(a.x, s2), x[0]) + dot(q2_vals(a.y, s2), x[1]) + dot(q2_vals(a.z, s2), x[2]) + dot(q2_vals(a.w, s2), x[3]);
    let acc1 = dot(q2_vals(b.x, s2), x[4]) + dot(q2_vals(b.y, s2), x[5]) + dot(q2_vals(b.z, s2), x[6]) + dot(q2_vals(b.w, s2), x[7]);
    let one = vec4<f32>(1.0);
    let xs0 = dot(x[0] + x[1] + x[2] + x[3], one);
    let xs1 = dot(x[4] + x[5] + x[6] + x[7], one);
    let j0 = 8u * h + 2u * s;
    let scw = w32(p + j0 / 4u);
    let sc0 = byte_of(scw, j0 % 4u);
    let sc1 = byte_of(scw, j0 % 4u + 1u);
    let dm = unpack2x16float(scale_word(row, u / 8u));
    return dm.x * (f32(sc0 & 15u) * acc0 + f32(sc1 & 15u) * acc1) - dm.y * (f32(sc0 >> 4u) * xs0 + f32(sc1 >> 4u) * xs1);
}
#endif
