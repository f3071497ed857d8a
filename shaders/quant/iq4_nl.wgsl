// IQ4_NL: blocks of 32 4-bit indices laid out as Q4_0's nibbles (byte j: value
// j low, value j + 16 high) into 16 non-uniform levels; value = d * level[q].
// The levels are signed bytes packed four to a word, so a lookup is a vector
// element and a byte extract (naga cannot index a constant array at run time).
const QU: u32 = 32u;
const IQ4_LEVELS = vec4<u32>(0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);

fn iq4_level(q: u32) -> f32 { return f32(sbyte_of(IQ4_LEVELS[q / 4u], q % 4u)); }

// The levels of the four nibbles (low, or high with shift 4) of w.
fn iq4_vals(w: u32, shift: u32) -> vec4<f32> {
    let n = (w >> shift) & 0x0F0F0F0Fu;
    return vec4<f32>(iq4_level(n & 15u), iq4_level((n >> 8u) & 15u), iq4_level((n >> 16u) & 15u), iq4_level(n >> 24u));
}

fn dq8(row: u32, g: u32) -> array<f32, 8> {
    let blk = g / 4u;
    let sub = g % 4u;          // 0, 1: low nibbles of bytes 0-7, 8-15; 2, 3: high nibbles
    let p = payload_base(row) + blk * 4u + (sub % 2u) * 2u;
    let shift = (sub / 2u) * 4u;
    let d = scale_f16(row, blk);
    let a = iq4_vals(w32(p), shift) * d;
    let b = iq4_vals(w32(p + 1u), shift) * d;
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

#if DOT
fn dq_dot(row: u32, u: u32, t4: u32) -> f32 {
    let c4 = u * (QU / 4u);
    let w = W[(payload_base(row) + u * 4u) / 4u];
    let acc = dot(iq4_vals(w.x, 0u), xv4(t4, c4)) + dot(iq4_vals(w.y, 0u), xv4(t4, c4 + 1u))
        + dot(iq4_vals(w.z, 0u), xv4(t4, c4 + 2u)) + dot(iq4_vals(w.w, 0u), xv4(t4, c4 + 3u))
        + dot(iq4_vals(w.x, 4u), xv4(t4, c4 + 4u)) + dot(iq4_vals(w.y, 4u), xv4(t4, c4 + 5u))
        + dot(iq4_vals(w.z, 4u), xv4(t4, c4 + 6u)) + dot(iq4_vals(w.w, 4u), xv4(t4, c4 + 7u));
    return acc * scale_f16(row, u);
}
#endif
