// LFM2-MoE expert choice for one token, by one workgroup (WG lanes): sigmoid
// scores, top-k of score + bias (the bias only selects), weights = the chosen
// unbiased scores, renormalised (+1e-6) and scaled. The including shader
// declares `logits` ([t][n] router logits) and `bias` ([n]).
// Each expert's rank among the keys (ties to the lower id) decides at once
// whether it is chosen and in which slot, instead of a reduction per slot;
// the WG / n lanes of an expert share its comparisons (64 experts on 256
// lanes: 16 each instead of 64 in a row).
var<workgroup> topk_score: array<f32, 256>;   // sigmoid per expert (n <= 256)
var<workgroup> topk_key: array<f32, 256>;     // score + bias
var<workgroup> topk_chosen: array<u32, 8>;    // slot -> expert (k <= 8)
var<workgroup> topk_rank: array<atomic<u32>, 256>;

// Fills topk_chosen[0..k] for token t of n experts. Call from uniform control flow.
fn topk_route(t: u32, lid: u32, n: u32, k: u32) {
    for (var e = lid; e < n; e += WG) {
        let s = 1.0 / (1.0 + exp(-logits[t * n + e]));
        topk_score[e] = s;
        topk_key[e] = s + bias[e];
        atomicStore(&topk_rank[e], 0u);
    }
    workgroupBarrier();
    let per = max(WG / n, 1u);
    for (var i = lid; i < n * per; i += WG) {
        let e = i / per;
        let ke = topk_key[e];
        var rank = 0u;
        for (var o = i % per; o < n; o += per) {
            let ko = topk_key[o];
            rank += u32(ko > ke || (ko == ke && o < e));
        }
        atomicAdd(&topk_rank[e], rank);
    }
    workgroupBarrier();
    for (var e = lid; e < n; e += WG) {
        let rank = atomicLoad(&topk_rank[e]);
        if (rank < k) {
            topk_chosen[rank] = e;
        }
    }
    workgroupBarrier();
}

// The weight of slot s after topk_route.
fn topk_weight(s: u32, k: u32, norm: bool, scale: f32) -> f32 {
    var w = topk_score[topk_chosen[s]];
    if (norm) {
        var sum = 0.0;
        for (var j = 0u; j < k; j++) {
            sum += topk_score[topk_chosen[j]];
        }
        w = w / (sum + 1e-6);
    }
    return w * scale;
}
