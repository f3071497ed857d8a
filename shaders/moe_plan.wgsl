// Groups the pass's (token, slot) pairs by expert for the batched MoE
// prefill: plan[0] = the number of tiles; tile i at plan[4 + 4i ..] is
// (expert, first position, rows ≤ 64); plan[order_off + pos] = the slot
// (t * k + s) at position pos, positions sorted by expert. One workgroup.
// Within an expert the slots' order depends on atomics; each slot's outputs
// do not (they are computed row by row and combined per token in slot order).
#include "step.wgsl"

struct Params {
    n_experts: u32,
    k: u32,
    order_off: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> sel: array<u32>;
@group(0) @binding(3) var<storage, read_write> plan: array<u32>;

const BM: u32 = 64u;
var<workgroup> count: array<atomic<u32>, 256>;
var<workgroup> cursor: array<atomic<u32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n_slots = S.n_tokens * P.k;
    atomicStore(&count[lid], 0u);
    workgroupBarrier();
    for (var s = lid; s < n_slots; s += 256u) {
        atomicAdd(&count[min(sel[s], 255u)], 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        var off = 0u;
        var tiles = 0u;
        for (var e = 0u; e < P.n_experts; e++) {
            let c = atomicLoad(&count[e]);
            atomicStore(&cursor[e], off);
            for (var t0 = 0u; t0 < c; t0 += BM) {
                plan[4u + 4u * tiles] = e;
                plan[5u + 4u * tiles] = off + t0;
                plan[6u + 4u * tiles] = min(BM, c - t0);
                plan[7u + 4u * tiles] = 0u;
                tiles++;
            }
            off += c;
        }
        plan[0] = tiles;
    }
    workgroupBarrier();
    for (var s = lid; s < n_slots; s += 256u) {
        let pos = atomicAdd(&cursor[min(sel[s], 255u)], 1u);
        plan[P.order_off + pos] = s;
    }
}
