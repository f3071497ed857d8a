// Shared by Q4_K and Q5_K: the 6-bit scale and min of sub-block j, from the
// 12 scale bytes in words 1..3 of the block at payload word p.
fn k4_scale_min(p: u32, j: u32) -> vec2<f32> {
    let s = vec3<u32>(w32(p + 1u), w32(p + 2u), w32(p + 3u));
    var sc: u32;
    var m: u32;
    if (j < 4u) {
        sc = byte_of(s[j / 4u], j % 4u) & 63u;
        m = byte_of(s[(j + 4u) / 4u], (j + 4u) % 4u) & 63u;
    } else {
        let bj4 = byte_of(s[(j + 4u) / 4u], (j + 4u) % 4u);
        let bjm4 = byte_of(s[(j - 4u) / 4u], (j - 4u) % 4u);
        let bj = byte_of(s[j / 4u], j % 4u);
        sc = (bj4 & 15u) | ((bjm4 >> 6u) << 4u);
        m = (bj4 >> 4u) | ((bj >> 6u) << 4u);
    }
    return vec2<f32>(f32(sc), f32(m));
}
