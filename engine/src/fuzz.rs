//! Entry points that run the readers of untrusted files on arbitrary bytes,
//! for the coverage-guided fuzzers (`fuzz/`, cargo-fuzz) and the mutation
//! harness the tests run (`tests/fuzz_headers.rs`). Each returns normally for
//! any input: errors are expected, panics, hangs and unbounded allocations
//! are the bugs.

use crate::{
    formats::{gguf, safetensors},
    model::{spec::expected_weights, ModelConfig, ModelSpec},
    runtime::model::Requirements,
};

/// GGUF: the header, the checks against the file, the configuration, the
/// model description and what it needs from a GPU.
pub fn gguf(data: &[u8]) {
    let Ok(file) = gguf::parse(data) else { return };
    let _ = file.validate(data.len() as u64);
    if let Ok(config) = ModelConfig::from_gguf(&file) {
        let _ = expected_weights(&config);
        let _ = config.parameter_count();
    }
    // A file "longer" than the input, so that the description is built too.
    if let Ok(spec) = ModelSpec::from_gguf(&file, "fuzz.gguf", u64::MAX >> 8) {
        let _ = Requirements::of(&spec);
        let _ = spec.stop_ids();
    }
}

/// safetensors: the header and its checks.
pub fn safetensors(data: &[u8]) {
    if let Ok(file) = safetensors::parse(data) {
        let _ = file.validate(data.len() as u64);
        let _ = file.validate(u64::MAX);
    }
}

/// A Hugging Face config.json.
pub fn hf_config(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(config) = ModelConfig::from_hf(&json) {
        let _ = expected_weights(&config);
        let _ = config.parameter_count();
    }
}
