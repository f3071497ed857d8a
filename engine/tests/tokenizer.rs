//! Tokenizers and chat templates of the tiny models, from tokenizer.json and
//! from GGUF metadata, against transformers' input ids (reference.json).

mod common;

use common::*;
use engine::{
    chat::{ChatMessage, ChatTemplate},
    tokenizer::{TextStream, Tokenizer},
};
use serde_json::Value;

fn spec(model: &str, source: &str) -> engine::model::ModelSpec {
    engine::source::open(&models_dir().join(model).join(source)).unwrap().spec
}

fn reference(model: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(models_dir().join(model).join("reference.json")).unwrap()).unwrap()
}

/// The folder itself (tokenizer.json) and each GGUF in it.
fn sources(model: &str) -> Vec<String> {
    let mut ggufs: Vec<String> = std::fs::read_dir(models_dir().join(model))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".gguf"))
        .collect();
    ggufs.sort();
    assert!(!ggufs.is_empty(), "no GGUF in {model} (scripts/fetch-models.sh writes tiny-lfm2.5-moe's)");
    std::iter::once(".".to_string()).chain(ggufs).collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn tokenizers_match_transformers() {
    for model in ["tiny-lfm2", "tiny-lfm2-moe", "tiny-qwen3", "tiny-gemma3", "tiny-lfm2.5-moe"] {
        let r = reference(model);
        for source in &sources(model) {
            let spec = spec(model, source);
            let tok = Tokenizer::from_spec(&spec).unwrap();
            for prompt in r["prompts"].as_array().unwrap() {
                let text = prompt["text"].as_str().unwrap();
                let want = ids(&prompt["input_ids"]);
                let got = if prompt.get("messages").is_some() { tok.encode_rendered(text).unwrap() } else { tok.encode(text).unwrap() };
                assert_eq!(got, want, "{model}/{source}: {text:?}");
                // Decoding gives the text back (the chat text holds its specials).
                let back = tok.decode(&want, prompt.get("messages").is_none());
                assert_eq!(back, text, "{model}/{source}: decode");
            }
        }
    }
}

#[test]
fn chat_template_renders_like_transformers() {
    for model in ["tiny-lfm2", "tiny-lfm2-moe", "tiny-qwen3", "tiny-gemma3", "tiny-lfm2.5-moe"] {
        let r = reference(model);
        let chat = r["prompts"].as_array().unwrap().iter().find(|p| p["name"] == "chat").unwrap();
        let messages: Vec<ChatMessage> = serde_json::from_value(chat["messages"].clone()).unwrap();
        for source in &sources(model) {
            let spec = spec(model, source);
            let tok = Tokenizer::from_spec(&spec).unwrap();
            // Qwen3 has no BOS in its tokenizer config (its GGUF names one it never adds).
            let bos = spec.bos.and_then(|b| tok.id_to_token(b)).unwrap_or_default();
            let eos = tok.id_to_token(spec.eos.unwrap()).unwrap();
            let template = ChatTemplate::new(spec.chat_template.as_deref().unwrap(), &bos, &eos).unwrap();
            let text = template.render(&messages, true).unwrap();
            assert_eq!(text, chat["text"].as_str().unwrap(), "{model}/{source}");
            assert_eq!(tok.encode_rendered(&text).unwrap(), ids(&chat["input_ids"]));
        }
    }
}

#[test]
fn text_stream_holds_back_split_characters() {
    let spec = spec("tiny-lfm2", ".");
    let tok = Tokenizer::from_spec(&spec).unwrap();
    let text = "naïve café — ok";
    let ids = tok.encode_rendered(text).unwrap();
    let mut stream = TextStream::default();
    let pieces: Vec<String> = ids.iter().map(|&id| stream.push(&tok, id)).collect();
    assert_eq!(pieces.concat(), text);
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')));
}

/// A thinking model's `<think>` and `</think>` survive decoding for the chat
/// (which folds the thinking away) where the vocabulary makes them special
/// tokens, which plain decoding with special tokens skipped drops.
#[test]
fn thinking_markers_are_shown_even_when_special() {
    let mut spec = spec("tiny-lfm2", ".");
    let engine::model::TokenizerSpec::HfJson(json) = &spec.tokenizer else { panic!("tiny-lfm2 has a tokenizer.json") };
    let mut t: Value = serde_json::from_str(json).unwrap();
    let next = t["model"]["vocab"].as_object().unwrap().len();
    for (i, content) in ["<think>", "</think>"].iter().enumerate() {
        t["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({
            "id": next + i, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true
        }));
    }
    spec.tokenizer = engine::model::TokenizerSpec::HfJson(t.to_string());
    let tok = Tokenizer::from_spec(&spec).unwrap();
    let text = "<think>Paris, surely.</think>It is Paris.";
    let ids = tok.encode_rendered(text).unwrap();
    assert_eq!(ids[0] as usize, next, "<think> is one special token");
    assert!(!tok.decode(&ids, true).contains("<think>"), "plain decoding drops special tokens");
    assert_eq!(tok.decode_shown(&ids), text);
    let mut stream = TextStream::default();
    let pieces: Vec<String> = ids.iter().map(|&id| stream.push(&tok, id)).collect();
    assert_eq!(pieces.concat(), text);
    // Other special tokens stay hidden.
    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    assert_eq!(tok.decode_shown(&[ids.clone(), vec![im_end]].concat()), text);
}
