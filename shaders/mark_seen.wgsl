// Marks the pass's input tokens in the repetition-penalty bitset.
#include "step.wgsl"

@group(0) @binding(0) var<uniform> S: Step;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> seen: array<atomic<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t < S.n_tokens) {
        let id = tokens[t];
        atomicOr(&seen[id / 32u], 1u << (id % 32u));
    }
}
