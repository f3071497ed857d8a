//! Constrained replies (engine::constrain): every reply to a set of JSON
//! Schemas parses and validates (checked by the `jsonschema` crate, not by
//! the code under test), greedy and sampled, from a tiny random model (which
//! says whatever the mask leaves it) and from SmolLM2 (a trained one, GGUF
//! tokenizer); Lark grammars hold; a schema no value meets is refused.

mod common;

use std::path::PathBuf;

use common::*;
use engine::{
    chat::ChatMessage,
    constrain::{Grammar, Grammars},
    model::ModelError,
    runtime::session::{Generate, Sampling, StopReason, TokenConstraint},
    text::TextModel,
};
use serde_json::{json, Value};

fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "nested object",
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "maxLength": 12 },
                    "age": { "type": "integer", "minimum": 0, "maximum": 120 },
                    "address": {
                        "type": "object",
                        "properties": { "city": { "type": "string", "maxLength": 10 }, "zip": { "type": "string", "pattern": "^[0-9]{5}$" } },
                        "required": ["city", "zip"],
                        "additionalProperties": false
                    }
                },
                "required": ["name", "age", "address"],
                "additionalProperties": false
            }),
        ),
        (
            "enum and boolean",
            json!({
                "type": "object",
                "properties": { "color": { "enum": ["red", "green", "blue"] }, "ok": { "type": "boolean" } },
                "required": ["color", "ok"],
                "additionalProperties": false
            }),
        ),
        (
            "bounded array",
            json!({
                "type": "array",
                "items": { "type": "integer", "minimum": -5, "maximum": 5 },
                "minItems": 2,
                "maxItems": 4
            }),
        ),
        (
            "array of objects",
            json!({
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {
                            "type": "object",
                            "properties": { "id": { "type": "integer", "minimum": 1, "maximum": 99 }, "tag": { "enum": ["a", "b"] } },
                            "required": ["id", "tag"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["items"],
                "additionalProperties": false
            }),
        ),
    ]
}

fn samplings() -> Vec<Sampling> {
    vec![
        Sampling::default(),
        Sampling { temperature: 1.0, seed: 7, ..Default::default() },
        Sampling { temperature: 0.8, top_k: 40, top_p: 0.95, repeat_penalty: 1.1, seed: 3, ..Default::default() },
    ]
}

/// Generates a reply to `prompt` under `grammar`; returns its text and stop reason.
fn reply(tm: &TextModel, grammars: &Grammars, grammar: &Grammar, prompt: &[u32], sampling: &Sampling, max_tokens: usize) -> (String, StopReason) {
    let mut s = session(&tm.model, false, false);
    let mut c = grammars.constraint(grammar).expect("a valid grammar");
    let end = tm.end_of_reply().unwrap();
    let g = pollster::block_on(s.generate(Generate { stop_ids: &[end], constraint: Some(&mut c as &mut dyn TokenConstraint), ..Generate::new(prompt, max_tokens, sampling) }, &mut |_| true)).unwrap();
    assert!(c.is_done() || g.stop != StopReason::Stop, "stopped before the grammar was complete");
    (tm.tokenizer.decode(&g.tokens, true), g.stop)
}

/// `json_mode_tokens`: the most tokens the JSON-mode reply may take (a trained
/// model may write a long object, at a few tokens a second on lavapipe).
fn check_schemas(tm: &TextModel, prompt: &[u32], which: &[&str], samplings: &[Sampling], json_mode_tokens: usize) {
    let grammars = Grammars::new(tm, tm.end_of_reply().unwrap()).unwrap();
    for (name, schema) in schemas().into_iter().filter(|(n, _)| which.is_empty() || which.contains(n)) {
        let validator = jsonschema::validator_for(&schema).unwrap();
        for sampling in samplings.iter().cloned() {
            let (text, stop) = reply(tm, &grammars, &Grammar::JsonSchema(schema.clone()), prompt, &sampling, 200);
            assert_eq!(stop, StopReason::Stop, "{name} {sampling:?}: the reply did not end: {text:?}");
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} {sampling:?}: {text:?} is not JSON: {e}"));
            eprintln!("{name} {sampling:?}: {text}");
            let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name} {sampling:?}: {text} is invalid: {errors:?}");
        }
    }
    // JSON mode: any object.
    let (text, stop) = reply(tm, &grammars, &Grammar::JsonObject, prompt, &Sampling::default(), json_mode_tokens);
    if stop == StopReason::Stop {
        assert!(serde_json::from_str::<Value>(&text).unwrap().is_object(), "{text}");
    } else {
        assert!(text.starts_with('{'), "{text}");
    }
}

#[test]
fn replies_follow_their_json_schema() {
    let gpu = gpu(false);
    let tm = TextModel::new(load(&gpu, &models_dir().join("tiny-lfm2"))).unwrap();
    let prompt = tm.tokenizer.encode("hello").unwrap();
    check_schemas(&tm, &prompt, &[], &samplings(), 200);
}

fn smollm2() -> PathBuf {
    let cache = std::env::var_os("EDDY_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache"));
    let path = cache.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
    path
}

#[test]
fn a_trained_model_answers_in_its_schema() {
    let gpu = gpu(false);
    let tm = TextModel::new(load(&gpu, &smollm2())).unwrap();
    let prompt = tm.chat_ids(&[ChatMessage::new("user", "Describe a person as JSON.")]).unwrap();
    // Greedy and one schema (the tiny model covers the rest): lavapipe on CI's two cores decodes
    // SmolLM2 at a few tokens a second.
    check_schemas(&tm, &prompt, &["enum and boolean"], &[Sampling::default()], 32);
}

#[test]
fn replies_follow_a_lark_grammar() {
    let gpu = gpu(false);
    let tm = TextModel::new(load(&gpu, &models_dir().join("tiny-lfm2"))).unwrap();
    let grammars = Grammars::new(&tm, tm.end_of_reply().unwrap()).unwrap();
    let prompt = tm.tokenizer.encode("hello").unwrap();
    let lark = Grammar::Lark("start: \"answer: \" (\"yes\" | \"no\") \" (\" /[0-9]{1,2}/ \"%)\"".into());
    for sampling in samplings() {
        let (text, stop) = reply(&tm, &grammars, &lark, &prompt, &sampling, 60);
        assert_eq!(stop, StopReason::Stop, "{text:?}");
        let (head, rest) = text.split_once(" (").unwrap_or_else(|| panic!("{text:?}"));
        assert!(head == "answer: yes" || head == "answer: no", "{text:?}");
        let digits = rest.strip_suffix("%)").unwrap_or_else(|| panic!("{text:?}"));
        assert!((1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
    }
}

#[test]
fn an_impossible_or_broken_constraint_is_refused() {
    let gpu = gpu(false);
    let tm = TextModel::new(load(&gpu, &models_dir().join("tiny-lfm2"))).unwrap();
    let grammars = Grammars::new(&tm, tm.end_of_reply().unwrap()).unwrap();
    let cases = [
        ("no value", Grammar::JsonSchema(json!({ "type": "integer", "minimum": 5, "maximum": 3 }))),
        ("contradiction", Grammar::JsonSchema(json!({ "allOf": [{ "type": "string" }, { "type": "integer" }] }))),
        ("not a schema", Grammar::JsonSchema(json!({ "type": "no-such-type" }))),
        ("bad grammar", Grammar::Lark("start: (".into())),
    ];
    for (name, g) in cases {
        match grammars.constraint(&g) {
            Err(ModelError::Constraint(message)) => assert!(!message.is_empty(), "{name}"),
            Err(e) => panic!("{name}: not a constraint error: {e}"),
            Ok(_) => panic!("{name}: accepted"),
        }
    }
}

/// The unconstrained path after a constrained reply: the mask is all ones
/// again, so the next reply is the plain greedy one.
#[test]
fn a_constrained_reply_leaves_the_next_one_free() {
    let gpu = gpu(false);
    let tm = TextModel::new(load(&gpu, &models_dir().join("tiny-lfm2"))).unwrap();
    let prompt = tm.tokenizer.encode("hello").unwrap();
    let plain = |s: &mut engine::runtime::session::Session| pollster::block_on(s.generate(Generate::new(&prompt, 12, &Sampling::default()), &mut |_| true)).unwrap().tokens;
    let mut s = session(&tm.model, false, false);
    let want = plain(&mut s);
    s.reset();
    let grammars = Grammars::new(&tm, tm.end_of_reply().unwrap()).unwrap();
    let mut c = grammars.constraint(&Grammar::JsonObject).unwrap();
    pollster::block_on(s.generate(Generate { constraint: Some(&mut c as &mut dyn TokenConstraint), ..Generate::new(&prompt, 8, &Sampling::default()) }, &mut |_| true)).unwrap();
    s.reset();
    assert_eq!(plain(&mut s), want);
}
