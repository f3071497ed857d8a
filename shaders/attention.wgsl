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
    _pad2: u32,
}

#if KV_F16
alias kv_t = f16;
#else
alias kv_t = f32;
#endif

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<kv_t>;
@group(0) @binding(4) var<storage, read> v_cache: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const TILE: u32 = 64u;
var<workgroup> qs: array<f32, 256>;
var<workgroup> ps: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let t = wid.y;
    let hd = P.head_dim;
    let live = t < S.n_tokens;
    let n_keys = select(0u, S.pos0 + t + 1u, live);
    let g = h / (P.n_heads / P.n_kv_heads);
    let kv_base = g * P.capacity * hd;
    for (var i = lid; i < hd; i += 64u) {
        qs[i] = select(0.0, q[(t * P.n_heads + h) * hd + i], live);
    }
    workgroupBarrier();

    var m = -3.0e38;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    // Every lane runs the same number of tiles (barriers in uniform control flow).
    let n_tiles = (S.pos0 + S.n_tokens + TILE - 1u) / TILE;
    for (var tile = 0u; tile < n_tiles; tile++) {
        let j = tile * TILE + lid;
        var s = -3.0e38;
        if (j < n_keys) {
            var d = 0.0;
            let kb = kv_base + j * hd;
            for (var i = 0u; i < hd; i++) {
                d = fma(qs[i], f32(k_cache[kb + i]), d);
            }
            s = d * P.scale;
        }
        let m_tile = group_max(s, lid, 64u);
        let m_new = max(m, m_tile);
        var p = 0.0;
        if (j < n_keys) {
            p = exp(s - m_new);
        }
        ps[lid] = p;
        let p_sum = group_sum(p, lid, 64u);
        let c = exp(m - m_new);
        l = l * c + p_sum;
        m = m_new;
        let n_here = min(TILE, n_keys - min(n_keys, tile * TILE));
        for (var r = 0u; r < 4u; r++) {
            let dim = lid + r * 64u;
            if (dim < hd) {
                var a = acc[r] * c;
                for (var i = 0u; i < n_here; i++) {
                    a = fma(ps[i], f32(v_cache[kv_base + (tile * TILE + i) * hd + dim]), a);
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
