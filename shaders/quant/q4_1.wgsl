// Q4_1: like Q4_0 without the offset, value = q * d + m; d and m are one scale word.
const QU: u32 = 32u;

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let sub = g % 4u;
    let p = payload_base(row) + blk * 4u + (sub % 2u) * 2u;
    let shift = (sub / 2u) * 4u;
    let dm = unpack2x16float(scale_word(row, blk));
    let a = nibbles_lo(w32(p) >> shift) * dm.x + dm.y;
    let b = nibbles_lo(w32(p + 1u) >> shift) * dm.x + dm.y;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if I8X
// value = d·n + m: Σ = d Σ n x + m Σ x.
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let w = W[(payload_base(row) + u * 4u) / 4u];
    let x = xq_unit(u);
    let lo = w & vec4<u32>(0x0F0F0F0Fu);
    let hi = (w >> vec4<u32>(4u)) & vec4<u32>(0x0F0F0F0Fu);
    let i = dot16(lo, x.a0, x.b0) + dot16(hi, x.a1, x.b1);
    let dm = unpack2x16float(scale_word(row, u));
    return dq2(i, x.d) * dm.x + x.d.z * dm.y;
}
#else
#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let w = W[(payload_base(row) + u * 4u) / 4u];
    let x = x8(t4, c4);
    let acc = dot(nibbles_lo(w.x), x[0]) + dot(nibbles_lo(w.y), x[1]) + dot(nibbles_lo(w.z), x[2]) + dot(nibbles_lo(w.w), x[3])
        + dot(nibbles_hi(w.x), x[4]) + dot(nibbles_hi(w.y), x[5]) + dot(nibbles_hi(w.z), x[6]) + dot(nibbles_hi(w.w), x[7]);
    let xsum = sum8(x);
    let dm = unpack2x16float(scale_word(row, u));
    return acc * dm.x + xsum * dm.y;
}
#endif
#endif
