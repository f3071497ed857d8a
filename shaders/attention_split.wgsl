// Decode attention, split over the keys (flash-decoding): workgroup (h, s)
// handles keys 64s..64s+63 of query head h for the pass's one token, and
// writes its partial softmax (max m, sum l) and unnormalised output; a second
// kernel (attention_merge.wgsl) combines the splits. Spreads a long context
// over many workgroups instead of one per head.
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
    max_splits: u32,
    _pad0: u32,
    _pad1: u32,
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

var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> ps: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let split = wid.y;
    let hd4 = P.head_dim / 4u;
    let n_keys = S.pos0 + 1u;
    let g = h / (P.n_heads / P.n_kv_heads);
    let kv_base = g * P.capacity * hd4;
    if (lid < hd4) {
        qs[lid] = q[h * hd4 + lid];
    }
    workgroupBarrier();
    let j = split * 64u + lid;
    var s = -3.0e38;
    if (j < n_keys) {
        var d = 0.0;
        let kb = kv_base + j * hd4;
        for (var i = 0u; i < hd4; i++) {
            d += dot(qs[i], vec4<f32>(k_cache[kb + i]));
        }
        s = d * P.scale;
    }
    let m = group_max(s, lid, 64u);
    var p = 0.0;
    if (j < n_keys) {
        p = exp(s - m);
    }
    ps[lid] = p;
    let l = group_sum(p, lid, 64u);
    let n_here = min(64u, n_keys - min(n_keys, split * 64u));
    let out = (h * P.max_splits + split) * (P.head_dim + 2u);
    if (lid == 0u) {
        partial[out] = m;
        partial[out + 1u] = l;
    }
    // Lane i accumulates output dims 4i..4i+3.
    if (lid < hd4) {
        var acc = vec4<f32>(0.0);
        for (var i = 0u; i < n_here; i++) {
            acc = fma(vec4<f32>(ps[i]), vec4<f32>(v_cache[kv_base + (split * 64u + i) * hd4 + lid]), acc);
        }
        let o = out + 2u + 4u * lid;
        partial[o] = acc.x;
        partial[o + 1u] = acc.y;
        partial[o + 2u] = acc.z;
        partial[o + 3u] = acc.w;
    }
}
