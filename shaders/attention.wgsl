// Causal attention of the pass's queries over the layer's cache, one workgroup
// per (head, token), with an online softmax over tiles of 64 keys.
// GQA: query head h reads kv head h / (n_heads / n_kv_heads).
#if KV_F16
enable f16;
#endif
#include "step.wgsl"
#include "reduce.wgsl"

struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    capacity: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    window: u32,    // WINDOW: a query sees itself and window - 1 keys before it
}

#if KV_F16
alias kv_t = f16;
alias kv4 = vec4<f16>;
#else
alias kv_t = f32;
alias kv4 = vec4<f32>;
#endif

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<kv4>;
@group(0) @binding(4) var<storage, read> v_cache: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const TILE: u32 = 64u;
var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> ps: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = wid.y;
    let hd = P.head_dim;
    let live = t < S.n_tokens;
    let n_keys = select(0u, S.pos0 + t + 1u, live);
#if WINDOW
    // The first key the sliding window lets this query see.
    let lo = n_keys - min(n_keys, P.window);
#else
    // Every key (the tests against it fold away).
    const lo = 0u;
#endif
    let g = h / (P.n_heads / P.n_kv_heads);
    let kv_base = g * P.capacity * hd;
    let hd4 = hd / 4u;
    for (var i = lid; i < hd4; i += 64u) {
        let b = (t * P.n_heads + h) * hd + 4u * i;
        qs[i] = select(vec4<f32>(0.0), vec4<f32>(q[b], q[b + 1u], q[b + 2u], q[b + 3u]), live);
    }
    workgroupBarrier();

    var m = -3.0e38;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    // Every lane runs the same number of tiles (barriers in uniform control flow).
    let n_tiles = (S.pos0 + S.n_tokens + TILE - 1u) / TILE;
    // (lo is the same for the whole workgroup: one query token.)
    for (var tile = lo / TILE; tile < n_tiles; tile++) {
        let j = tile * TILE + lid;
        let seen = j < n_keys && j >= lo;
        var s = -3.0e38;
        if (seen) {
            // Four vector loads in flight per step (head_dim is a multiple of 16).
            var d0 = vec4<f32>(0.0);
            var d1 = vec4<f32>(0.0);
            let kb = (kv_base + j * hd) / 4u;
            for (var i = 0u; i < hd4; i += 4u) {
                let k0 = vec4<f32>(k_cache[kb + i]);
                let k1 = vec4<f32>(k_cache[kb + i + 1u]);
                let k2 = vec4<f32>(k_cache[kb + i + 2u]);
                let k3 = vec4<f32>(k_cache[kb + i + 3u]);
                d0 = fma(qs[i], k0, d0);
                d1 = fma(qs[i + 1u], k1, d1);
                d0 = fma(qs[i + 2u], k2, d0);
                d1 = fma(qs[i + 3u], k3, d1);
            }
            let d = d0 + d1;
            s = (d.x + d.y + d.z + d.w) * P.scale;
        }
        let m_tile = group_max(s, lid, 64u);
        let m_new = max(m, m_tile);
        var p = 0.0;
        if (seen) {
            p = exp(s - m_new);
        }
        ps[lid] = p;
        let p_sum = group_sum(p, lid, 64u);
        let c = exp(m - m_new);
        l = l * c + p_sum;
        m = m_new;
        // The whole tile, eight loads in flight per step: probabilities past
        // the keys are 0 and their values masked.
        let n_here = min(TILE, n_keys - min(n_keys, tile * TILE));
        let last = max(n_here, 1u) - 1u;
        for (var r = 0u; r < 4u; r++) {
            let dim = lid + r * 64u;
            if (dim < hd) {
                var a = acc[r] * c;
                let vb = kv_base + tile * TILE * hd + dim;
                for (var i = 0u; i < TILE; i += 8u) {
                    var v8: array<f32, 8>;
                    for (var q = 0u; q < 8u; q++) {
                        v8[q] = select(0.0, f32(v_cache[vb + min(i + q, last) * hd]), i + q < n_here);
                    }
                    for (var q = 0u; q < 8u; q++) {
                        a = fma(ps[i + q], v8[q], a);
                    }
                }
                acc[r] = a;
            }
        }
        workgroupBarrier();
    }
    if (!live) {
        return;
    }
    for (var r = 0u; r < 4u; r++) {
        let dim = lid + r * 64u;
        if (dim < hd) {
            out[(t * P.n_heads + h) * hd + dim] = acc[r] / l;
        }
    }
}
