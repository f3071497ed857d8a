// Workgroup reductions over aligned groups of lanes (workgroups of at most 256).
var<workgroup> red: array<f32, 256>;

// The sum of `v` over each aligned group of `width` lanes (a power of two),
// returned to every lane of the group. Call from uniform control flow.
fn group_sum(v: f32, lid: u32, width: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = width / 2u; s > 0u; s /= 2u) {
        if ((lid % width) < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[lid - lid % width];
    workgroupBarrier();
    return r;
}

fn group_max(v: f32, lid: u32, width: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = width / 2u; s > 0u; s /= 2u) {
        if ((lid % width) < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red[lid - lid % width];
    workgroupBarrier();
    return r;
}
