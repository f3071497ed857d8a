//! Any bytes as the start of a safetensors file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engine::fuzz::safetensors(data);
});
