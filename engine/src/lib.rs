//! Eddy's inference core. Platform-neutral: the same code runs natively (the
//! `eddy` CLI, tests, benchmarks) and in the browser (wasm32 + WebGPU).

pub mod formats;
pub mod gpu;
pub mod shaders;
