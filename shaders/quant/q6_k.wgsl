// Q6_K: super-blocks of 256 values: 128 bytes of low nibbles (words 0..31), 64
// bytes of 2-bit highs (words 32..47), 16 signed scale bytes (words 48..51), and
// d in the scale region. Value e: half h = e/128, quarter c = (e%128)/32, l = e%32;
// low nibble of ql[64h + l + 32(c&1)] (high nibble when c >= 2), highs
// (qh[32h + l] >> 2c) & 3, scale sc[8h + l/16 + 2c]; value = d * sc * (q - 32).
const QU: u32 = 32u;
const K_WORDS: u32 = 52u;

fn q6_byte(p: u32, i: u32) -> u32 { return byte_of(w32(p + i / 4u), i % 4u); }

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 32u;
    let e0 = (g % 32u) * 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let d = scale_f16(row, blk);
    let h = e0 / 128u;
    let c = (e0 % 128u) / 32u;
    let l0 = e0 % 32u;
    let si = 8u * h + l0 / 16u + 2u * c;
    let sc = f32(sbyte_of(w32(p + 48u + si / 4u), si % 4u));
    var r: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) {
        let l = l0 + i;
        let ql = (q6_byte(p, 64u * h + l + 32u * (c & 1u)) >> (4u * (c / 2u))) & 15u;
        let qh = (q6_byte(p + 32u, 32u * h + l) >> (2u * c)) & 3u;
        r[i] = d * sc * f32(i32(ql | (qh << 4u)) - 32);
    }
    return r;
}

#if I8X
// The 6-bit values (0..63) of 16 elements as bytes, from shifted low and high words.
fn q6_bytes(l: vec4<u32>, h: vec4<u32>) -> vec4<u32> {
    return (l & vec4<u32>(0x0F0F0F0Fu)) | ((h & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
}

// Two groups of 16 with their own scales: Σ (q - 32) x = Σ q x - 32 Σ x per group.
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let blk = u / 8u;
    let s = u % 8u;
    let h = s / 4u;
    let c = s % 4u;
    let p = payload_base(row) + blk * K_WORDS;
    let qlw = (p + (64u * h + 32u * (c & 1u)) / 4u) / 4u;
    let qhw = (p + 32u + (32u * h) / 4u) / 4u;
    let ls = vec4<u32>(4u * (c / 2u));
    let hs = vec4<u32>(2u * c);
    let x = xq_unit(u);
    let i0 = dot16(q6_bytes(W[qlw] >> ls, W[qhw] >> hs), x.a0, x.b0);
    let i1 = dot16(q6_bytes(W[qlw + 1u] >> ls, W[qhw + 1u] >> hs), x.a1, x.b1);
    let si = 8u * h + 2u * c;
    let scw = w32(p + 48u + si / 4u);
    let sc0 = f32(sbyte_of(scw, si % 4u));
    let sc1 = f32(sbyte_of(scw, (si + 1u) % 4u));
    let acc0 = dq2(i0, x.d) - 32.0 * x.d.w;
    let acc1 = dq2(i1, x.d) - 32.0 * (x.d.z - x.d.w);
    return scale_f16(row, blk) * (sc0 * acc0 + sc1 * acc1);
}
#else
#if DOT
fn q6_vals(lw: u32, hw: u32) -> vec4<f32> {
    let q = vec4<u32>((lw & 15u) | ((hw & 3u) << 4u), ((lw >> 8u) & 15u) | (((hw >> 8u) & 3u) << 4u),
                      ((lw >> 16u) & 15u) | (((hw >> 16u) & 3u) << 4u), ((lw >> 24u) & 15u) | (((hw >> 24u) & 3u) << 4u));
    return bitcast<vec4<f32>>(q | vec4<u32>(MAGIC)) - (MAGIC_F + 32.0);
}

fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let blk = u / 8u;
    let s = u % 8u;
    let h = s / 4u;
    let c = s % 4u;
    let p = payload_base(row) + blk * K_WORDS;
    let qlw = (p + (64u * h + 32u * (c & 1u)) / 4u) / 4u;
    let qhw = (p + 32u + (32u * h) / 4u) / 4u;
    let l0 = W[qlw] >> vec4<u32>(4u * (c / 2u));
    let l1 = W[qlw + 1u] >> vec4<u32>(4u * (c / 2u));
    let h0 = W[qhw] >> vec4<u32>(2u * c);
    let h1 = W[qhw + 1u] >> vec4<u32>(2u * c);
    let acc0 = dot(q6_vals(l0.x, h0.x), xv4(t4, c4)) + dot(q6_vals(l0.y, h0.y), xv4(t4, c4 + 1u))
        + dot(q6_vals(l0.z, h0.z), xv4(t4, c4 + 2u)) + dot(q6_vals(l0.w, h0.w), xv4(t4, c4 + 3u));
    let acc1 = dot(q6_vals(l1.x, h1.x), xv4(t4, c4 + 4u)) + dot(q6_vals(l1.y, h1.y), xv4(t4, c4 + 5u))
        + dot(q6_vals(l1.z, h1.z), xv4(t4, c4 + 6u)) + dot(q6_vals(l1.w, h1.w), xv4(t4, c4 + 7u));
    let si = 8u * h + 2u * c;
    let scw = w32(p + 48u + si / 4u);
    let sc0 = f32(sbyte_of(scw, si % 4u));
    let sc1 = f32(sbyte_of(scw, (si + 1u) % 4u));
    return scale_f16(row, blk) * (sc0 * acc0 + sc1 * acc1);
}
#endif
#endif
