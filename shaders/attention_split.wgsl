// Decode attention, split over the keys (flash-decoding): workgroup (c, s)
// handles keys 64s..64s+63 for chunk c of the query heads (GQA: the chunk's
// heads share one kv head, so its K and V rows are read once for all of them)
// and writes, per query head, its partial softmax (max m, sum l) and
// unnormalised output; attention_merge.wgsl combines the splits. Spreads a
// long context over many workgroups instead of one per head.
// Scores: one lane per (head, key); the output: lanes own (head, 4 dims) and
// a share of the tile's keys, summed in workgroup memory. Every lane's loop is
// short, so the step's latency is a few memory round trips.
#if KV_F16
enable f16;
#endif
#include "step.wgsl"

struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    capacity: u32,
    scale: f32,
    max_splits: u32,
    heads_per_chunk: u32,   // query heads one workgroup handles (a divisor of the GQA group)
    window: u32,            // WINDOW: the query sees itself and window - 1 keys before it
}

#if KV_F16
alias kv4 = vec4<f16>;
#else
alias kv4 = vec4<f32>;
#endif

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> k_cache: array<kv4>;
@group(0) @binding(4) var<storage, read> v_cache: array<kv4>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;   // [h][split][m, l, acc[head_dim]]

const WG: u32 = 128u;
const TILE: u32 = 64u;
// heads_per_chunk * head_dim <= 1024 and heads_per_chunk <= 8 (ops.rs picks the chunk).
var<workgroup> qs: array<vec4<f32>, 256>;
var<workgroup> ps: array<f32, 512>;        // [head in chunk][key]
var<workgroup> hm: array<f32, 8>;          // per head: the tile's max
var<workgroup> accs: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let hc = P.heads_per_chunk;
    let chunks_per_kv = (P.n_heads / P.n_kv_heads) / hc;
    let g = wid.x / chunks_per_kv;
    let h0 = wid.x * hc;                // first query head of the chunk
    let split = wid.y;
    let hd4 = P.head_dim / 4u;
    let n_keys = S.pos0 + 1u;
    let j0 = split * TILE;
    let n_here = min(TILE, n_keys - min(n_keys, j0));
#if WINDOW
    // Keys of this split before `first` lie outside the sliding window.
    let lo = n_keys - min(n_keys, P.window);
    let first = lo - min(lo, j0);
#else
    // Every key counts (the tests against it fold away).
    const first = 0u;
#endif
    let kv_base = (g * P.capacity + j0) * hd4;

    for (var i = lid; i < hc * hd4; i += WG) {
        qs[i] = q[h0 * hd4 + i];
    }
    workgroupBarrier();
    for (var p = lid; p < hc * TILE; p += WG) {
        let hh = p / TILE;
        let j = p % TILE;
        var s = -3.0e38;
        if (j < n_here && j >= first) {
            // Four loads in flight per step (head_dim is a multiple of 16).
            var d0 = vec4<f32>(0.0);
            var d1 = vec4<f32>(0.0);
            let kb = kv_base + j * hd4;
            let qb = hh * hd4;
            for (var i = 0u; i < hd4; i += 4u) {
                let k0 = vec4<f32>(k_cache[kb + i]);
                let k1 = vec4<f32>(k_cache[kb + i + 1u]);
                let k2 = vec4<f32>(k_cache[kb + i + 2u]);
                let k3 = vec4<f32>(k_cache[kb + i + 3u]);
                d0 = fma(qs[qb + i], k0, d0);
                d1 = fma(qs[qb + i + 1u], k1, d1);
                d0 = fma(qs[qb + i + 2u], k2, d0);
                d1 = fma(qs[qb + i + 3u], k3, d1);
            }
            let d = d0 + d1;
            s = (d.x + d.y + d.z + d.w) * P.scale;
        }
        ps[p] = s;
    }
    workgroupBarrier();
    // Per head: the tile's max and sum of exponentials (64 values: one lane each).
    if (lid < hc) {
        // Four independent chains: the lane's loop is latency-bound.
        var m4 = vec4<f32>(-3.0e38);
        for (var j = 0u; j < n_here; j += 4u) {
            let v = vec4<f32>(ps[lid * TILE + j], ps[lid * TILE + j + 1u], ps[lid * TILE + j + 2u], ps[lid * TILE + j + 3u]);
            let jv = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
            let live = (jv < vec4<u32>(n_here)) & (jv >= vec4<u32>(first));
            m4 = max(m4, select(vec4<f32>(-3.0e38), v, live));
        }
        let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
        var l4 = vec4<f32>(0.0);
        for (var j = 0u; j < n_here; j += 4u) {
            let v = vec4<f32>(ps[lid * TILE + j], ps[lid * TILE + j + 1u], ps[lid * TILE + j + 2u], ps[lid * TILE + j + 3u]);
            let jv = vec4<u32>(j, j + 1u, j + 2u, j + 3u);
            let live = (jv < vec4<u32>(n_here)) & (jv >= vec4<u32>(first));
            l4 += select(vec4<f32>(0.0), exp(v - m), live);
        }
        let l = l4.x + l4.y + l4.z + l4.w;
        hm[lid] = m;
        let out = ((h0 + lid) * P.max_splits + split) * (P.head_dim + 2u);
        partial[out] = m;
        partial[out + 1u] = l;
    }
    workgroupBarrier();
    for (var p = lid; p < hc * TILE; p += WG) {
        ps[p] = select(0.0, exp(ps[p] - hm[p / TILE]), p % TILE < n_here && p % TILE >= first);
    }
    workgroupBarrier();
    // Output vec4s (head, dims 4o..4o+3); `share` lanes split each one's keys.
    let outs = hc * hd4;
    let share = max(1u, WG / outs);
    for (var base = 0u; base < outs; base += WG) {
        let o = base + lid % min(outs, WG);
        let kp = lid / min(outs, WG);
        var acc = vec4<f32>(0.0);
        if (o < outs && kp < share) {
            let hh = o / hd4;
            let d4 = o % hd4;
            // The whole tile (probabilities past n_here are 0, their values
            // masked): a fixed trip count, four loads in flight per step.
            let vb = kv_base + d4;
            for (var j = kp; j < TILE; j += 4u * share) {
                var v4: array<vec4<f32>, 4>;
                for (var q = 0u; q < 4u; q++) {
                    let jj = j + q * share;
                    v4[q] = select(vec4<f32>(0.0), vec4<f32>(v_cache[vb + min(jj, n_here - 1u) * hd4]), jj < n_here);
                }
                for (var q = 0u; q < 4u; q++) {
                    let jj = j + q * share;
                    acc = fma(vec4<f32>(ps[hh * TILE + min(jj, TILE - 1u)]), v4[q], acc);
                }
            }
        }
        accs[lid] = acc;
        workgroupBarrier();
        if (kp == 0u && o < outs) {
            var total = acc;
            for (var r = 1u; r < share; r++) {
                total += accs[lid + r * min(outs, WG)];
            }
            let hh = o / hd4;
            let d4 = o % hd4;
            let dst = ((h0 + hh) * P.max_splits + split) * (P.head_dim + 2u) + 2u + 4u * d4;
            partial[dst] = total.x;
            partial[dst + 1u] = total.y;
            partial[dst + 2u] = total.z;
            partial[dst + 3u] = total.w;
        }
        workgroupBarrier();
    }
}
