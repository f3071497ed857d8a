// What the prefill mat-mats (matmul.wgsl, matmul64.wgsl, matmul_coop.wgsl)
// share: their parameters and, with GROUPED (the batched MoE prefill),
// reading one tile of moe_plan.wgsl's plan: up to 64 (token, slot) pairs
// routed to one expert.

struct Params {
    geom: WeightGeom,
    k: u32,               // columns
    n_out: u32,           // rows of this part
    out_first: u32,
    out_stride: u32,
    x_stride: u32,
    e_lo: u32,            // GROUPED: this part holds experts e_lo..e_hi,
    e_hi: u32,
    rows_per_expert: u32, // n_out rows each
    x_row_div: u32,
    order_off: u32,
    _pad0: u32,
    _pad1: u32,
}

#if GROUPED
@group(0) @binding(5) var<storage, read> plan: array<u32>;
var<workgroup> tile_info: vec4<u32>;
var<workgroup> slots: array<u32, 64>;

// Tile i of the plan as (expert, first position, rows, lives in this part),
// the same in every lane, so that a tile of another part can return at once.
fn plan_tile(i: u32, lid: u32) -> vec4<u32> {
    if (lid == 0u) {
        var info = vec4<u32>(0u);
        if (i < plan[0]) {
            info = vec4<u32>(plan[4u + 4u * i], plan[5u + 4u * i], plan[6u + 4u * i], 1u);
            info.w = u32(info.x >= P.e_lo && info.x < P.e_hi);
        }
        tile_info = info;
    }
    return workgroupUniformLoad(&tile_info);
}

// The tile's (token, slot) positions into slots (the last one repeated up to 64).
fn load_slots(info: vec4<u32>, lid: u32) {
    if (lid < 64u) {
        slots[lid] = plan[P.order_off + info.y + min(lid, info.z - 1u)];
    }
    workgroupBarrier();
}
#endif
