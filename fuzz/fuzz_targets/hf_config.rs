//! Any bytes as a Hugging Face config.json.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engine::fuzz::hf_config(data);
});
