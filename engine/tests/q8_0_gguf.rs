//! The q8_0 GGUFs load, in chunks of any size, and the GPU holds exactly what
//! the `gguf` Python package dequantizes (tests/reference/quant, sha256 of the
//! float32 values of every tensor).

mod common;

use std::rc::Rc;

use common::*;
use engine::runtime::{inspect::weight_values, model::Model, session::Generate};
use sha2::{Digest, Sha256};

fn recorded() -> serde_json::Value {
    serde_json::from_str(include_str!("reference/quant/quant_blocks.json")).unwrap()
}

/// Loads a GGUF by feeding its bytes in chunks of `chunk` bytes.
fn load_chunked(gpu: &engine::gpu::Gpu, path: &std::path::Path, chunk: usize) -> Rc<Model> {
    let local = engine::source::open(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let mut load = Model::begin_load(gpu, local.spec).unwrap();
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        load.feed(0, (i * chunk) as u64, piece).unwrap();
    }
    let (done, total) = load.loader.progress();
    assert_eq!(done, total, "every needed byte was fed");
    load.finish().unwrap()
}

#[test]
fn q8_0_tensors_equal_gguf_py() {
    let gpu = gpu(true);
    let reference = recorded();
    for model_name in ["tiny-lfm2", "tiny-lfm2-moe", "tiny-qwen3"] {
        let file = format!("{model_name}-q8_0.gguf");
        let path = models_dir().join(model_name).join(&file);
        let tensors = reference["tensors"][&file].as_object().unwrap_or_else(|| panic!("no reference for {file}"));
        // Whole-file reads, then odd chunk sizes that split rows and blocks.
        for chunk in [None, Some(1000), Some(4099)] {
            let model = match chunk {
                None => load(&gpu, &path),
                Some(c) => load_chunked(&gpu, &path, c),
            };
            let mut checked = 0;
            for (name, want) in tensors {
                let values = pollster::block_on(weight_values(&model, name)).unwrap();
                let got = hex::encode(Sha256::digest(bytemuck::cast_slice::<f32, u8>(&values)));
                assert_eq!(got, want["sha256"].as_str().unwrap(), "{file} {name} (chunk {chunk:?}): first values {:?}", &values[..4]);
                checked += 1;
            }
            assert_eq!(checked, model.spec.weights.len(), "{file}: every tensor checked");
        }
    }
}

#[test]
fn q8_0_models_generate() {
    let gpu = gpu(true);
    for model_name in ["tiny-lfm2", "tiny-lfm2-moe", "tiny-qwen3"] {
        let model = load(&gpu, &models_dir().join(model_name).join(format!("{model_name}-q8_0.gguf")));
        let mut s = session(&model, false, true);
        let out = pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(&[1, 273, 406, 895], 8, &Default::default()) }, &mut |_| true)).unwrap();
        assert_eq!(out.tokens.len(), 8);
        assert!(out.last_logits.unwrap().iter().all(|v| v.is_finite()));
    }
}
