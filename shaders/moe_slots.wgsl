// The MoE slots' bindings shared by matvec.wgsl and matvec_xr.wgsl (whose
// Params both have k, the experts per token), included where MOE is defined.
// With ROUTE (MOE_GATE_UP) the kernel chooses the token's experts itself from
// the router logits (moe_topk.wgsl) and writes them and their weights for
// MOE_DOWN: one dispatch per MoE layer fewer than a routing kernel between.
#if ROUTE
@group(0) @binding(5) var<storage, read_write> sel: array<u32>;   // [t][k]
@group(0) @binding(6) var<storage, read_write> selw: array<f32>;
#if NORM
@group(0) @binding(8) var<storage, read> logits: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
#else
@group(0) @binding(7) var<storage, read> logits: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
#endif
override NE: u32 = 32u;                    // experts
override ROUTE_NORM: u32 = 1u;             // renormalise the chosen weights (0: no)
override ROUTE_SCALE: u32 = 0x3f800000u;   // the weights' scale, as f32 bits
#include "moe_topk.wgsl"
#else
@group(0) @binding(5) var<storage, read> sel: array<u32>;
@group(0) @binding(6) var<storage, read> selw: array<f32>;
#endif

// The expert of slot y (= t*k + s). With ROUTE every workgroup ranks the
// token's logits and one per slot (the first along x and z) stores the
// choice. Call from uniform control flow.
fn slot_expert(y: u32, lid: u32, first: bool) -> u32 {
#if ROUTE
    topk_route(y / P.k, lid, NE, P.k);
    let e = topk_chosen[y % P.k];
    if (lid == 0u && first) {
        sel[y] = e;
        selw[y] = topk_weight(y % P.k, P.k, ROUTE_NORM != 0u, bitcast<f32>(ROUTE_SCALE));
    }
    return e;
#else
    return sel[y];
#endif
}
