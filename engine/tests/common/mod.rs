//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::{path::PathBuf, rc::Rc};

use engine::{
    gpu::{Gpu, GpuOptions},
    runtime::{model::Model, session::{Session, SessionOptions}},
};

/// The tiny test models and their references, in the repository
/// (`fixtures/models/`, made by its make_tiny_models.py).
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models")
}

pub fn gpu(f16: bool) -> Gpu {
    pollster::block_on(Gpu::new(GpuOptions { allow_f16: f16, allow_subgroups: true, ..Default::default() }))
        .expect("a Vulkan adapter (scripts/setup.sh installs Mesa lavapipe)")
}

pub fn load(gpu: &Gpu, path: &std::path::Path) -> Rc<Model> {
    let local = engine::source::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    local.load(gpu, &mut |_, _| {}).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn session(model: &Rc<Model>, all_logits: bool, kv_f16: bool) -> Session {
    Session::new(model.clone(), SessionOptions { context: 512, prefill_chunk: 64, kv_f16, all_logits, ..Default::default() }).unwrap()
}

/// max |a - b| / max |b|.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}
