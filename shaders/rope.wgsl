// Attention input: per-head RMSNorm of q and k (LFM2), RoPE, and the new keys
// and values written into the layer's cache at positions pos0 + t.
// One workgroup per (head slot, token); slots are the q heads, then the k
// heads, then the v heads of the fused q|k|v row.
#if KV_F16
enable f16;
#endif
#include "step.wgsl"
#include "reduce.wgsl"

struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    qkv_stride: u32,
    capacity: u32,   // cache positions
    has_norm: u32,
    neox: u32,       // 1: rotate halves; 0: rotate adjacent pairs
    eps: f32,
}

#if KV_F16
alias kv_t = f16;
#else
alias kv_t = f32;
#endif

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> qn: array<f32>;
@group(0) @binding(4) var<storage, read> kn: array<f32>;
@group(0) @binding(5) var<storage, read> rope_cs: array<vec2<f32>>;  // [position][head_dim / 2] (cos, sin)
@group(0) @binding(6) var<storage, read_write> q_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> k_cache: array<kv_t>;
@group(0) @binding(8) var<storage, read_write> v_cache: array<kv_t>;

var<workgroup> vals: array<f32, 256>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let slot = wid.x;
    let t = wid.y;
    let hd = P.head_dim;
    let pos = S.pos0 + t;
    let src = t * P.qkv_stride + slot * hd;
    let is_q = slot < P.n_heads;
    let is_v = slot >= P.n_heads + P.n_kv_heads;
    let live = t < S.n_tokens;

    var ss = 0.0;
    for (var i = lid; i < hd; i += 64u) {
        var v = 0.0;
        if (live) { v = qkv[src + i]; }
        vals[i] = v;
        ss += v * v;
    }
    let total = group_sum(ss, lid, 64u);
    if (!live) {
        return;
    }
    if (is_v) {
        let g = slot - P.n_heads - P.n_kv_heads;
        let dst = (g * P.capacity + pos) * hd;
        for (var i = lid; i < hd; i += 64u) {
            v_cache[dst + i] = kv_t(vals[i]);
        }
        return;
    }
    if (P.has_norm != 0u) {
        let inv = inverseSqrt(total / f32(hd) + P.eps);
        for (var i = lid; i < hd; i += 64u) {
            var w: f32;
            if (is_q) { w = qn[i]; } else { w = kn[i]; }
            vals[i] = w * (vals[i] * inv);
        }
    }
    workgroupBarrier();
    let half = hd / 2u;
    for (var i = lid; i < half; i += 64u) {
        var a: u32;
        var b: u32;
        if (P.neox != 0u) { a = i; b = i + half; } else { a = 2u * i; b = 2u * i + 1u; }
        let cs = rope_cs[pos * half + i];
        let x0 = vals[a];
        let x1 = vals[b];
        let y0 = x0 * cs.x - x1 * cs.y;
        let y1 = x1 * cs.x + x0 * cs.y;
        if (is_q) {
            let dst = (t * P.n_heads + slot) * hd;
            q_out[dst + a] = y0;
            q_out[dst + b] = y1;
        } else {
            let g = slot - P.n_heads;
            let dst = (g * P.capacity + pos) * hd;
            k_cache[dst + a] = kv_t(y0);
            k_cache[dst + b] = kv_t(y1);
        }
    }
}
