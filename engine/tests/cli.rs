//! The `eddy` binary: `generate` (text, ids, chat, JSON) and `bench`.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn eddy(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_eddy")).args(args).output().unwrap();
    assert!(out.status.success(), "eddy {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("eddy {args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn generate_prompt_ids_json_matches_the_reference() {
    let dir = models_dir().join("tiny-lfm2");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let prompt = &r["prompts"][1];
    let ids: Vec<String> = u32s(&prompt["input_ids"]).iter().map(u32::to_string).collect();
    let model = dir.join("tiny-lfm2-f32.gguf");
    let out = eddy(&["generate", "--model", model.to_str().unwrap(), "--prompt-ids", &ids.join(","), "--max-tokens", "20", "--dump-logits", "--json"]);
    assert_eq!(u32s(&out["prompt_ids"]), u32s(&prompt["input_ids"]), "prompt ids used exactly as given");
    assert_eq!(u32s(&out["generated_ids"]), u32s(&prompt["greedy_ids"]));
    let logits: Vec<f32> = out["last_logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let want: Vec<f32> = prompt["last_logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert!(rel_err(&logits, &want) < 1e-3);
    for key in ["prefill_tokens_per_s", "decode_tokens_per_s", "load_seconds"] {
        assert!(out[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(!out["adapter"].as_str().unwrap().is_empty());
}

#[test]
fn generate_text_and_chat_tokenize_as_the_model_says() {
    let dir = models_dir().join("tiny-lfm2");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let (plain, chat) = (&r["prompts"][0], &r["prompts"][2]);
    // Plain text gets BOS (the GGUF says add_bos_token).
    let out = eddy(&["generate", "--model", dir.join("tiny-lfm2-q8_0.gguf").to_str().unwrap(), "--prompt", plain["text"].as_str().unwrap(), "--max-tokens", "3", "--json"]);
    assert_eq!(u32s(&out["prompt_ids"]), u32s(&plain["input_ids"]));
    // --chat with --system renders the template: the reference's chat prompt.
    let messages = chat["messages"].as_array().unwrap();
    let out = eddy(&[
        "generate", "--model", dir.to_str().unwrap(), "--chat",
        "--system", messages[0]["content"].as_str().unwrap(),
        "--prompt", messages[1]["content"].as_str().unwrap(),
        "--max-tokens", "20", "--json",
    ]);
    assert_eq!(u32s(&out["prompt_ids"]), u32s(&chat["input_ids"]));
    assert_eq!(u32s(&out["generated_ids"]), u32s(&chat["greedy_ids"]));
    // Sampling with a seed is repeatable.
    let sample = |seed: &str| {
        eddy(&["generate", "--model", dir.to_str().unwrap(), "--prompt", "Once upon a time", "--max-tokens", "12",
            "--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "--min-p", "0.02", "--repeat-penalty", "1.1", "--seed", seed, "--json"])
    };
    assert_eq!(sample("7")["generated_ids"], sample("7")["generated_ids"]);
    assert_ne!(sample("7")["generated_ids"], sample("8")["generated_ids"]);
}

#[test]
fn bench_reports_speeds() {
    let model = models_dir().join("tiny-lfm2-moe/tiny-lfm2-moe-q8_0.gguf");
    let out = eddy(&["bench", "--model", model.to_str().unwrap(), "--prompt-len", "64", "--gen-len", "8", "--repeat", "1", "--json"]);
    for key in ["prefill_tokens_per_s", "decode_tokens_per_s", "roofline_tokens_per_s"] {
        assert!(out[key].as_f64().unwrap() > 0.0, "{key}: {out}");
    }
    assert_eq!(out["prompt_len"], 64);
}

#[test]
fn bad_model_path_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_eddy")).args(["generate", "--model", "/nonexistent.gguf", "--prompt", "hi"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.gguf") && err.contains("No such file"), "{err}");
}
