// Per-submission values, written once before each forward pass.
struct Step {
    // Tokens in this pass (1 when decoding).
    n_tokens: u32,
    // Position of the pass's first token (tokens already in the cache).
    pos0: u32,
    // Sampler state: the generation step, and spare words.
    step: u32,
    _pad: u32,
}
