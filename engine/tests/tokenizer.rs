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

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn tokenizers_match_transformers() {
    for model in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let r = reference(model);
        for source in [".", &format!("{model}-f32.gguf"), &format!("{model}-q8_0.gguf")] {
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
    for model in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let r = reference(model);
        let chat = r["prompts"].as_array().unwrap().iter().find(|p| p["name"] == "chat").unwrap();
        let messages: Vec<ChatMessage> = serde_json::from_value(chat["messages"].clone()).unwrap();
        for source in [".", &format!("{model}-f32.gguf")] {
            let spec = spec(model, source);
            let tok = Tokenizer::from_spec(&spec).unwrap();
            let bos = tok.id_to_token(spec.bos.unwrap()).unwrap();
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
