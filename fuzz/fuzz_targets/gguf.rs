//! Any bytes as the start of a GGUF file: the header parser, the checks
//! against the file, the configuration and the model description must
//! return an error or a value, never panic, hang or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engine::fuzz::gguf(data);
});
