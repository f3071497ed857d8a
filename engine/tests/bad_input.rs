//! Bad input gets a clear error that names the problem, never a panic.

mod common;
#[path = "common/gguf_writer.rs"]
mod gguf_writer;

use std::path::PathBuf;

use common::*;
use engine::formats::gguf::Value;

fn tiny_gguf() -> Vec<u8> {
    std::fs::read(models_dir().join("tiny-lfm2/tiny-lfm2-f32.gguf")).unwrap()
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn open_err(name: &str, bytes: &[u8]) -> String {
    let e = open_err_inner(name, bytes);
    eprintln!("{name}: {e}");
    e
}

fn open_err_inner(name: &str, bytes: &[u8]) -> String {
    let path = write_temp(name, bytes);
    match engine::source::open(&path) {
        Ok(local) => match local.load(&gpu(false), &mut |_, _| {}) {
            Ok(_) => panic!("{name} loaded"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_rewriter_round_trips() {
    // Guards the fixtures below: an unedited rewrite has the same header and data, and opens.
    let original = tiny_gguf();
    let copy = gguf_writer::rewrite(&original, |_| {});
    let (a, b) = (engine::formats::gguf::parse(&original).unwrap(), engine::formats::gguf::parse(&copy).unwrap());
    assert!(a.metadata == b.metadata && a.tensors == b.tensors, "headers differ");
    assert!(original[a.data_offset as usize..] == copy[b.data_offset as usize..], "data differs");
    engine::source::open(&write_temp("copy.gguf", &copy)).unwrap();
}

#[test]
fn truncated_gguf() {
    let bytes = tiny_gguf();
    let e = open_err("cut-data.gguf", &bytes[..bytes.len() / 2]);
    assert!(e.contains("runs past the end"), "{e}");
    let e = open_err("cut-header.gguf", &bytes[..300]);
    assert!(e.contains("truncated"), "{e}");
    let e = open_err("empty.gguf", &[]);
    assert!(e.contains("not a GGUF file") || e.contains("truncated"), "{e}");
}

#[test]
fn wrong_tensor_offsets() {
    let bytes = tiny_gguf();
    let misaligned = gguf_writer::rewrite(&bytes, |h| h.tensors[3].offset += 4);
    let e = open_err("misaligned.gguf", &misaligned);
    assert!(e.contains("not a multiple of the alignment") || e.contains("overlap"), "{e}");
    let overlapping = gguf_writer::rewrite(&bytes, |h| h.tensors[3].offset = h.tensors[2].offset);
    let e = open_err("overlap.gguf", &overlapping);
    assert!(e.contains("overlap"), "{e}");
    let beyond = gguf_writer::rewrite(&bytes, |h| h.tensors[5].offset += 1 << 20);
    let e = open_err("beyond.gguf", &beyond);
    assert!(e.contains(&h_name(&bytes, 5)) && e.contains("past the end"), "{e}");
}

fn h_name(bytes: &[u8], i: usize) -> String {
    engine::formats::gguf::parse(bytes).unwrap().tensors[i].name.clone()
}

#[test]
fn unknown_architecture() {
    let bytes = gguf_writer::rewrite(&tiny_gguf(), |h| {
        h.metadata.insert("general.architecture".into(), Value::String("mamba9".into()));
    });
    let e = open_err("arch.gguf", &bytes);
    assert!(e.contains("unsupported architecture \"mamba9\""), "{e}");
}

#[test]
fn unsupported_tensor_type_missing_tensor_and_wrong_shape() {
    let bytes = tiny_gguf();
    // Q5_0 (type 6) has 22-byte blocks of 32: declare a 64×64 f32 tensor as Q5_0 with a fitting size.
    let q5 = gguf_writer::rewrite(&bytes, |h| {
        let t = h.tensors.iter_mut().find(|t| t.name == "blk.0.shortconv.out_proj.weight").unwrap();
        t.ggml_type = 6;
    });
    let e = open_err("q5_0.gguf", &q5);
    assert!(e.contains("Q5_0"), "{e}");
    let missing = gguf_writer::rewrite(&bytes, |h| h.tensors.retain(|t| t.name != "blk.2.attn_k.weight"));
    let e = open_err("missing.gguf", &missing);
    assert!(e.contains("no tensor blk.2.attn_k.weight"), "{e}");
    let reshaped = gguf_writer::rewrite(&bytes, |h| {
        let t = h.tensors.iter_mut().find(|t| t.name == "blk.0.ffn_gate.weight").unwrap();
        t.dims = vec![160, 64];
    });
    let e = open_err("shape.gguf", &reshaped);
    assert!(e.contains("blk.0.ffn_gate.weight") && e.contains("shape"), "{e}");
}

#[test]
fn bad_metadata() {
    let bytes = gguf_writer::rewrite(&tiny_gguf(), |h| {
        h.metadata.remove("lfm2.embedding_length");
    });
    let e = open_err("no-width.gguf", &bytes);
    assert!(e.contains("lfm2.embedding_length"), "{e}");
    let v1 = {
        let mut b = tiny_gguf();
        b[4] = 1;
        b
    };
    let e = open_err("v1.gguf", &v1);
    assert!(e.contains("version 1"), "{e}");
}

#[test]
fn corrupt_safetensors_folder() {
    let src = models_dir().join("tiny-lfm2");
    let dir = std::env::temp_dir().join(format!("eddy-bad-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() - 1000]).unwrap();
    let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("ends at byte"), "{e}");
    std::fs::write(dir.join("model.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00not json").unwrap();
    let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("not a JSON object"), "{e}");
    std::fs::write(dir.join("model.safetensors"), &weights).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"model_type": "gpt_neox"}"#).unwrap();
    let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("unsupported architecture \"gpt_neox\""), "{e}");
}

#[test]
fn prompt_longer_than_the_context() {
    let gpu = gpu(false);
    let model = load(&gpu, &models_dir().join("tiny-lfm2/tiny-lfm2-f32.gguf"));
    let mut s = engine::runtime::session::Session::new(model, engine::runtime::session::SessionOptions { context: 16, ..Default::default() }).unwrap();
    let prompt: Vec<u32> = (0..20).collect();
    let e = pollster::block_on(s.generate(&prompt, 4, &Default::default(), &[], false, &mut |_| true)).unwrap_err();
    assert!(e.to_string().contains("20 tokens but the context holds 16"), "{e}");
    let e = pollster::block_on(s.generate(&[1, 5000], 4, &Default::default(), &[], false, &mut |_| true)).unwrap_err();
    assert!(e.to_string().contains("outside the vocabulary"), "{e}");
    // Filling the context stops generation cleanly.
    let out = pollster::block_on(s.generate(&prompt[..10], 100, &Default::default(), &[], false, &mut |_| true)).unwrap();
    assert_eq!(out.stop, engine::runtime::session::StopReason::ContextFull);
    assert_eq!(s.history().len(), 16);
}
