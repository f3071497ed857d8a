//! The GPU runtime: one wgpu device per engine, on WebGPU in the browser and on
//! Vulkan / Metal / DX12 natively.

mod context;
mod readback;
pub mod selftest;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use context::{AdapterReport, Gpu, GpuError, GpuOptions, LimitsReport};
pub use readback::{map_and_read, read_buffer};
