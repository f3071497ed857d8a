// Picks the next token on the GPU, so a decode step reads back only its id.
// One workgroup of 256 lanes. In HF's order: repetition penalty over every
// token seen in the context, temperature, top-k, top-p, min-p, then a draw
// from the rest with a counter-based RNG (seed, step). Temperature 0 is greedy
// (the first index of the largest logit).
// Top-k and top-p find their thresholds by radix selection on order-preserving
// 32-bit keys of the logits: four passes of 8 bits, histograms in workgroup
// memory (top-p sums fixed-point probability mass instead of counts).
#include "step.wgsl"

struct Params {
    vocab: u32,
    top_k: u32,
    seed: u32,
    greedy: u32,
    inv_temperature: f32,
    top_p: f32,
    min_p: f32,
    penalty: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> S: Step;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
// Bit per token id, set by mark_seen.wgsl in an earlier dispatch for every
// token the model has consumed (so plain loads suffice: an atomic load per
// logit made the penalised sampler several times slower). The choice is not
// marked here: the next step's mark-seen does that when it consumes it, and a
// choice never consumed (after a stop) must not count as seen.
@group(0) @binding(3) var<storage, read> seen: array<u32>;
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;         // [0]: the next input
@group(0) @binding(5) var<storage, read_write> out_ids: array<u32>;        // [step]: the choice
// Bit per token id: the tokens a constraint (a JSON schema, a grammar)
// allows for this choice, written by the CPU before the step's sampler runs;
// every bit set when the reply is unconstrained.
@group(0) @binding(6) var<storage, read> allowed: array<u32>;

const WG: u32 = 256u;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> fred: array<f32, 256>;
var<workgroup> ured: array<u32, 256>;
var<workgroup> chosen_digit: u32;
var<workgroup> carry: u32;
var<workgroup> pick: atomic<u32>;
var<workgroup> lane_at: atomic<u32>;
var<workgroup> last_j: atomic<u32>;
var<workgroup> scan: array<f32, 256>;
var<workgroup> scan_total: f32;

// Inclusive prefix sum of v over the workgroup's lanes (Hillis-Steele);
// scan_total gets the sum of all. Call from uniform control flow.
fn scan_sum(v: f32, lid: u32) -> f32 {
    scan[lid] = v;
    workgroupBarrier();
    for (var d = 1u; d < WG; d *= 2u) {
        var x = scan[lid];
        if (lid >= d) { x += scan[lid - d]; }
        workgroupBarrier();
        scan[lid] = x;
        workgroupBarrier();
    }
    if (lid == WG - 1u) { scan_total = scan[lid]; }
    let r = scan[lid];
    workgroupBarrier();
    return r;
}

// The logit of token i after the repetition penalty, NONE where the
// constraint rules it out (it then weighs exp(NONE) = 0 and loses every
// comparison). Branch-free: a load under a condition cannot be issued ahead of
// it, and these loops need many loads in flight.
fn adjusted(i: u32) -> f32 {
    let l = logits[i];
    let seen_bit = (seen[i / 32u] >> (i % 32u)) & 1u;
    let allowed_bit = (allowed[i / 32u] >> (i % 32u)) & 1u;
    let penalised = select(l * P.penalty, l / P.penalty, l > 0.0);
    let v = select(l, penalised, (P.penalty != 1.0) & (seen_bit != 0u));
    return select(NONE, v, allowed_bit != 0u);
}

// The adjusted logits of tokens b, b + WG, ..., b + 7 WG (-3.4e38 past the
// vocabulary): eight independent loads at once, where a loop of one load per
// step waits for each in turn.
const NONE: f32 = -3.4e38;
fn adjusted8(b: u32) -> array<f32, 8> {
    var l: array<f32, 8>;
    for (var q = 0u; q < 8u; q++) {
        let i = b + q * WG;
        l[q] = select(NONE, adjusted(min(i, P.vocab - 1u)), i < P.vocab);
    }
    return l;
}

fn key_of(f: f32) -> u32 {
    let b = bitcast<u32>(f);
    return select(~b, b | 0x80000000u, (b & 0x80000000u) == 0u);
}

fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336953u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

fn sum_f(v: f32, lid: u32) -> f32 {
    fred[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) { fred[lid] += fred[lid + s]; }
        workgroupBarrier();
    }
    let r = fred[0];
    workgroupBarrier();
    return r;
}

fn max_f(v: f32, lid: u32) -> f32 {
    fred[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) { fred[lid] = max(fred[lid], fred[lid + s]); }
        workgroupBarrier();
    }
    let r = fred[0];
    workgroupBarrier();
    return r;
}

fn finish(id: u32, lid: u32) {
    if (lid == 0u) {
        tokens[0] = id;
        out_ids[S.step] = id;
    }
}

// The key of the k-th largest key among those >= floor_key.
fn kth_largest_key(k: u32, floor_key: u32, lid: u32) -> u32 {
    var prefix = 0u;
    var remaining = k;
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        let high_mask = select(0u, 0xFFFFFFFFu << (shift + 8u), round > 0u);
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        for (var i = lid; i < P.vocab; i += WG) {
            let key = key_of(adjusted(i) * P.inv_temperature);
            if (key >= floor_key && (key & high_mask) == (prefix & high_mask)) {
                atomicAdd(&hist[(key >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var acc = 0u;
            var digit = 0u;
            for (var b = 255i; b >= 0i; b--) {
                let c = atomicLoad(&hist[u32(b)]);
                if (acc + c >= remaining) {
                    digit = u32(b);
                    break;
                }
                acc += c;
            }
            chosen_digit = digit;
            carry = remaining - acc;
        }
        workgroupBarrier();
        prefix = prefix | (chosen_digit << shift);
        remaining = carry;
        workgroupBarrier();
    }
    return prefix;
}

// The largest key tau such that the probability mass (relative to `total`,
// over keys >= floor_key) of keys >= tau reaches top_p.
fn top_p_key(floor_key: u32, m: f32, total: f32, lid: u32) -> u32 {
    let scale = 1073741824.0 / total;   // 2^30: fixed-point mass
    var prefix = 0u;
    var goal = u32(P.top_p * 1073741824.0);
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        let high_mask = select(0u, 0xFFFFFFFFu << (shift + 8u), round > 0u);
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        for (var i = lid; i < P.vocab; i += WG) {
            let l = adjusted(i) * P.inv_temperature;
            let key = key_of(l);
            if (key >= floor_key && (key & high_mask) == (prefix & high_mask)) {
                atomicAdd(&hist[(key >> shift) & 255u], u32(exp(l - m) * scale));
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var acc = 0u;
            var digit = 0u;
            for (var b = 255i; b >= 0i; b--) {
                let c = atomicLoad(&hist[u32(b)]);
                digit = u32(b);
                if (acc + c >= goal) {
                    break;
                }
                acc += c;
            }
            chosen_digit = digit;
            carry = select(goal - acc, 0u, acc >= goal);
        }
        workgroupBarrier();
        prefix = prefix | (chosen_digit << shift);
        goal = carry;
        workgroupBarrier();
    }
    return prefix;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let v = P.vocab;
    // Lane l owns the tokens l, l + WG, l + 2 WG, ...: neighbouring lanes read
    // neighbouring logits (coalesced). The draw walks the candidates in that
    // order (lane-major), which is a fixed permutation of the vocabulary: the
    // distribution is the softmax's all the same.

    if (P.greedy != 0u) {
        var best = -3.4e38;
        var best_i = 0xFFFFFFFFu;
        for (var b = lid; b < v; b += 8u * WG) {
            let l = adjusted8(b);
            for (var q = 0u; q < 8u; q++) {
                let i = b + q * WG;
                if (i < v && (l[q] > best || best_i == 0xFFFFFFFFu)) {
                    best = l[q];
                    best_i = i;
                }
            }
        }
        fred[lid] = best;
        ured[lid] = best_i;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s /= 2u) {
            if (lid < s) {
                let ov = fred[lid + s];
                let oi = ured[lid + s];
                if (oi != 0xFFFFFFFFu && (ov > fred[lid] || (ov == fred[lid] && oi < ured[lid]) || ured[lid] == 0xFFFFFFFFu)) {
                    fred[lid] = ov;
                    ured[lid] = oi;
                }
            }
            workgroupBarrier();
        }
        finish(ured[0], lid);
        return;
    }

    var local_max = -3.4e38;
    for (var b = lid; b < v; b += 8u * WG) {
        let l = adjusted8(b);
        for (var q = 0u; q < 8u; q++) {
            local_max = max(local_max, l[q] * P.inv_temperature);
        }
    }
    let m = max_f(local_max, lid);

    var floor_key = 0u;
    if (P.top_k > 0u && P.top_k < v) {
        floor_key = kth_largest_key(P.top_k, 0u, lid);
    }
    if (P.top_p < 1.0) {
        var local_total = 0.0;
        for (var b = lid; b < v; b += 8u * WG) {
            let l8 = adjusted8(b);
            for (var q = 0u; q < 8u; q++) {
                let l = l8[q] * P.inv_temperature;
                if (b + q * WG < v && key_of(l) >= floor_key) { local_total += exp(l - m); }
            }
        }
        let total = sum_f(local_total, lid);
        floor_key = max(floor_key, top_p_key(floor_key, m, total, lid));
    }
    if (P.min_p > 0.0) {
        floor_key = max(floor_key, key_of(m + log(P.min_p)));
    }

    var mass = 0.0;
    for (var b = lid; b < v; b += 8u * WG) {
        let l8 = adjusted8(b);
        for (var q = 0u; q < 8u; q++) {
            let l = l8[q] * P.inv_temperature;
            if (b + q * WG < v && key_of(l) >= floor_key) { mass += exp(l - m); }
        }
    }
    // Exclusive prefix sums of the lanes' masses, in lane order.
    let start = scan_sum(mass, lid) - mass;
    let total = workgroupUniformLoad(&scan_total);
    fred[lid] = start;
    let r = f32(pcg(P.seed ^ pcg(S.step)) >> 8u) / 16777216.0;
    let u = r * total;
    // The lane whose range holds u: the last lane with candidates starting at or before u.
    if (lid == 0u) {
        atomicStore(&pick, 0xFFFFFFFFu);
        atomicStore(&last_j, 0u);
        atomicStore(&lane_at, 0u);
    }
    workgroupBarrier();
    if (mass > 0.0 && start <= u) {
        atomicMax(&lane_at, lid);
    }
    workgroupBarrier();
    if (lid == 0u) {
        chosen_digit = atomicLoad(&lane_at);
    }
    let lane = workgroupUniformLoad(&chosen_digit);
    // All lanes walk that lane's tokens lane + WG j together, WG at a time: a
    // prefix sum of their weights finds the interval holding u (if rounding
    // leaves u past the end, the lane's last candidate wins).
    var before = fred[lane];
    let per = (v - lane + WG - 1u) / WG;
    for (var j0 = 0u; j0 < per; j0 += WG) {
        let j = j0 + lid;
        let i = lane + WG * j;
        var w = 0.0;
        if (j < per) {
            let l = adjusted(i) * P.inv_temperature;
            if (key_of(l) >= floor_key) { w = exp(l - m); }
        }
        let incl = before + scan_sum(w, lid);
        if (w > 0.0) {
            if (incl - w <= u && u < incl) { atomicMin(&pick, j); }
            atomicMax(&last_j, j);
        }
        before = workgroupUniformLoad(&scan_total) + before;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var j = atomicLoad(&pick);
        if (j == 0xFFFFFFFFu) { j = atomicLoad(&last_j); }
        carry = lane + WG * j;
    }
    workgroupBarrier();
    finish(carry, lid);
}
