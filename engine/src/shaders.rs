//! The WGSL sources of `shaders/`, compiled into the engine.

pub const SELFTEST: &str = include_str!("../../shaders/selftest.wgsl");
