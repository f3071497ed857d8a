//! Eddy's inference core. Platform-neutral: the same code runs natively (the
//! `eddy` CLI, tests, benchmarks) and in the browser (wasm32 + WebGPU).

pub mod chat;
pub mod clock;
pub mod constrain;
pub mod formats;
pub mod fuzz;
pub mod gpu;
pub mod model;
pub mod runtime;
pub mod shaders;
pub mod text;
pub mod tokenizer;
pub mod tools;
#[cfg(not(target_arch = "wasm32"))]
pub mod source;
