// Q6_K: super-blocks of 256 values: 128 bytes of low nibbles (words 0..31), 64
// bytes of 2-bit highs (words 32..47), 16 signed scale bytes (words 48..51), and
// d in the scale region. Value e: half h = e/128, quarter c = (e%128)/32, l = e%32;
// low nibble of ql[64h + l + 32(c&1)] (high nibble when c >= 2), highs
// (qh[32h + l] >> 2c) & 3, scale sc[8h + l/16 + 2c]; value = d * sc * (q - 32).
const QU: u32 = 32u;
const K_WORDS: u32 = 52u;

fn q6_byte(p: u32, i: u32) -> u32 { return byte_of(W[p + i / 4u], i % 4u); }

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 32u;
    let e0 = (g % 32u) * 8u;
    let p = payload_base(row) + blk * K_WORDS;
    let d = scale_f16(row, blk);
    let h = e0 / 128u;
    let c = (e0 % 128u) / 32u;
    let l0 = e0 % 32u;
    let sc = f32(sbyte_of(W[p + 48u + (8u * h + l0 / 16u + 2u * c) / 4u], (8u * h + l0 / 16u + 2u * c) % 4u));
    var r: array<f32, 8>;
    for (var i = 0u; i < 8u; i++) {
        let l = l0 + i;
        let ql = (q6_byte(p, 64u * h + l + 32u * (c & 1u)) >> (4u * (c / 2u))) & 15u;
        let qh = (q6_byte(p + 32u, 32u * h + l) >> (2u * c)) & 3u;
        r[i] = d * sc * f32(i32(ql | (qh << 4u)) - 32);
    }
    return r;
}

#if DOT
fn dq_dot_x(row: u32, u: u32, x: ptr<function, array<vec4<f32>, 8>>) -> f32 {
    let blk = u / 8u;
    let s = u % 8u;
    let h = s / 4u;
    let c = s % 4u;
    let p = payload_base(row) + blk * K_WORDS;
    let d = scale_f16(row, blk);
    let qlw = p + (64u * h + 32u * (c & 1u)) / 4u;
    let qhw = p + 32u + (32u * h) / 4u;
    let lshift = 4u * (c / 2u);
    let hshift = 2u * c;
    var acc0 = 0.0;
    var acc1 = 0.0;
    for (var k = 0u; k < 8u; k++) {
        let lw = W[qlw + k] >> lshift;
        let hw = W[qhw + k] >> hshift;
        let q = vec4<i32>(vec4<u32>((lw & 15u) | ((hw & 3u) << 4u), ((lw >> 8u) & 15u) | (((hw >> 8u) & 3u) << 4u),
                                    ((lw >> 16u) & 15u) | (((hw >> 16u) & 3u) << 4u), ((lw >> 24u) & 15u) | (((hw >> 24u) & 3u) << 4u))) - 32;
        let v = dot(vec4<f32>(q), (*x)[k]);
        if (k < 4u) { acc0 += v; } else { acc1 += v; }
    }
    let si = 8u * h + 2u * c;
    let sc0 = f32(sbyte_of(W[p + 48u + si / 4u], si % 4u));
    let sc1 = f32(sbyte_of(W[p + 48u + (si + 1u) / 4u], (si + 1u) % 4u));
    return d * (sc0 * acc0 + sc1 * acc1);
}
#endif
