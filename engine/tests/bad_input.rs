//! Bad input gets a clear error that names the problem, never a panic.

mod common;
#[path = "common/gguf_writer.rs"]
mod gguf_writer;

use std::path::PathBuf;

use common::*;
use engine::{formats::gguf::Value, runtime::session::Generate};

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
    // IQ4_XS (type 23), which Eddy does not read yet, named in the error.
    let iq4 = gguf_writer::rewrite(&bytes, |h| {
        let t = h.tensors.iter_mut().find(|t| t.name == "blk.0.shortconv.out_proj.weight").unwrap();
        t.ggml_type = 23;
    });
    let e = open_err("iq4_xs.gguf", &iq4);
    assert!(e.contains("IQ4_XS"), "{e}");
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
    let e = pollster::block_on(s.generate(Generate::new(&prompt, 4, &Default::default()), &mut |_| true)).unwrap_err();
    assert!(e.to_string().contains("20 tokens but the context holds 16"), "{e}");
    let e = pollster::block_on(s.generate(Generate::new(&[1, 5000], 4, &Default::default()), &mut |_| true)).unwrap_err();
    assert!(e.to_string().contains("outside the vocabulary"), "{e}");
    // Filling the context stops generation cleanly.
    let out = pollster::block_on(s.generate(Generate::new(&prompt[..10], 100, &Default::default()), &mut |_| true)).unwrap();
    assert_eq!(out.stop, engine::runtime::session::StopReason::ContextFull);
    assert_eq!(s.history().len(), 16);
}

// ---------------------------------------------------------------------------------------------
// Hostile files: sizes meant to exhaust memory, duplicates meant to swap weights,
// templates meant to hang. Each gets a named error, quickly.

#[test]
fn hostile_gguf_headers() {
    let bytes = tiny_gguf();
    // A layer count that would size vectors of 2^40 entries.
    let huge = gguf_writer::rewrite(&bytes, |h| {
        h.metadata.insert("lfm2.block_count".into(), Value::U64(1 << 40));
    });
    let e = open_err("layers.gguf", &huge);
    assert!(e.contains("block_count") && e.contains("layers"), "{e}");
    // A head size the attention kernels cannot take.
    let hd = gguf_writer::rewrite(&bytes, |h| {
        h.metadata.insert("lfm2.attention.key_length".into(), Value::U32(24));
    });
    let e = open_err("head.gguf", &hd);
    assert!(e.contains("head size 24"), "{e}");
    // A vocabulary far past any model.
    let vocab = gguf_writer::rewrite(&bytes, |h| {
        h.metadata.insert("lfm2.vocab_size".into(), Value::U64(1 << 40));
    });
    let e = open_err("vocab.gguf", &vocab);
    assert!(e.contains("vocabulary"), "{e}");
    // The same tensor twice (the second would silently win).
    let twice = gguf_writer::rewrite(&bytes, |h| {
        let t = h.tensors[4].clone();
        h.tensors[5].name = t.name;
    });
    let e = open_err("twice.gguf", &twice);
    assert!(e.contains("appears twice"), "{e}");
    // An array claiming 2^31 values, and a string of 2^40 bytes: refused before any allocation.
    let mut arr = bytes.clone();
    let header = engine::formats::gguf::parse(&bytes).unwrap();
    let at = find(&arr, b"tokenizer.ggml.tokens").unwrap() + b"tokenizer.ggml.tokens".len() + 8; // type u32, then elem type u32, then count u64
    arr[at..at + 8].copy_from_slice(&(1u64 << 31).to_le_bytes());
    let e = engine::formats::gguf::parse(&arr).unwrap_err().to_string();
    assert!(e.contains("array of 2147483648 values"), "{e}");
    let mut s = bytes.clone();
    let at = find(&s, b"general.architecture").unwrap() + b"general.architecture".len() + 4;
    s[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = engine::formats::gguf::parse(&s).unwrap_err().to_string();
    assert!(e.contains("a string of 1099511627776 bytes"), "{e}");
    assert!(header.tensors.len() > 5);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_hostile_chat_template_stops() {
    // 10^10 loop steps: without a fuel limit this renders for hours.
    let t = engine::chat::ChatTemplate::new("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "<s>", "</s>").unwrap();
    let t0 = std::time::Instant::now();
    let e = t.render(&[engine::chat::ChatMessage::new("user", "hi")], true).unwrap_err().to_string();
    assert!(e.to_lowercase().contains("fuel"), "{e}");
    assert!(t0.elapsed().as_secs() < 20, "took {:?}", t0.elapsed());
}

/// A copy of tiny-lfm2-moe whose safetensors header `edit` changed (the data is unchanged).
fn moe_folder_with(tag: &str, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> PathBuf {
    let src = models_dir().join("tiny-lfm2-moe");
    let dir = std::env::temp_dir().join(format!("eddy-bad-moe-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(&json);
    out.extend(&bytes[8 + n..]);
    std::fs::write(dir.join("model.safetensors"), out).unwrap();
    dir
}

#[test]
fn hostile_safetensors_experts_and_ranges() {
    // experts.2 renamed experts.01: expert 1 twice, expert 2 missing. Both add up to the
    // right byte count, so a check of the total alone loaded expert 1's weights twice.
    let dir = moe_folder_with("dup", |h| {
        let v = h.remove("model.layers.1.feed_forward.experts.2.w1.weight").unwrap();
        h.insert("model.layers.1.feed_forward.experts.01.w1.weight".into(), v);
    });
    let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("repeats expert 1"), "{e}");
    // An expert with more dimensions than the first (a slice past the end).
    let dir = moe_folder_with("dims", |h| {
        h.get_mut("model.layers.1.feed_forward.experts.3.w1.weight").unwrap()["shape"] = serde_json::json!([8, 2, 2, 64]);
    });
    let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("shape"), "{e}");
    // A byte range whose absolute offset overflows.
    let dir = moe_folder_with("range", |h| {
        h.insert("model.extra".into(), serde_json::json!({"dtype": "F32", "shape": [2], "data_offsets": [u64::MAX - 8, u64::MAX]}));
    });
    let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("overflows"), "{e}");
}

#[test]
fn an_index_cannot_point_outside_the_folder() {
    let src = models_dir().join("tiny-lfm2");
    let dir = std::env::temp_dir().join(format!("eddy-bad-index-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    for target in ["../model.safetensors", "/etc/passwd", "sub/../../x.safetensors"] {
        std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({"weight_map": {"a": target}}).to_string()).unwrap();
        let e = engine::source::open(&dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("outside the model folder"), "{target}: {e}");
    }
}

/// LFM2.5-8B-A1B's checkpoint names the routing bias `feed_forward.expert_bias.weight`
/// (transformers: `feed_forward.expert_bias`): both read as the same tensor.
#[test]
fn the_lfm25_expert_bias_name_reads_as_the_bias() {
    let plain = engine::source::open(&models_dir().join("tiny-lfm2-moe")).unwrap().spec;
    let dir = moe_folder_with("bias-name", |h| {
        let keys: Vec<String> = h.keys().filter(|k| k.ends_with("feed_forward.expert_bias")).cloned().collect();
        assert!(!keys.is_empty());
        for k in keys {
            let v = h.remove(&k).unwrap();
            h.insert(format!("{k}.weight"), v);
        }
    });
    let renamed = engine::source::open(&dir).unwrap().spec;
    for layer in 1..6 {
        let name = format!("blk.{layer}.exp_probs_b.bias");
        let (a, b) = (plain.weight(&name).unwrap(), renamed.weight(&name).unwrap());
        assert_eq!((a.dtype, &a.dims, a.pieces.len()), (b.dtype, &b.dims, b.pieces.len()), "{name}");
    }
    assert_eq!(plain.weights.len(), renamed.weights.len());
}
