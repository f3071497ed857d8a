//! Tool calls end to end on the tiny random LFM2 (lavapipe): the constrained
//! decoder holds a reply to a call (engine::tools::call_grammar), the call is
//! parsed, its arguments validate under the tool's JSON Schema (checked by the
//! `jsonschema` crate, not by the code under test), the app's calculator runs
//! it, its result goes back as a tool turn, and the model answers from the
//! state it already holds, as it would from a fresh session fed the same tokens.

use std::{path::PathBuf, rc::Rc};

use engine::{
    chat::{ChatMessage, ChatTemplate},
    constrain::{Grammar, Grammars},
    gpu::{Gpu, GpuOptions},
    runtime::{
        model::Model,
        session::{Generate, Sampling, Session, SessionOptions, StopReason, TokenConstraint},
    },
    text::TextModel,
    tools::{self, CallStyle, ToolCall},
};
use serde_json::{json, Value};

fn tiny() -> TextModel {
    let gpu = pollster::block_on(Gpu::new(GpuOptions { allow_f16: false, allow_subgroups: true, ..Default::default() })).expect("a Vulkan adapter (scripts/setup.sh installs Mesa lavapipe)");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/tiny-lfm2");
    let model: Rc<Model> = engine::source::open(&path).unwrap().load(&gpu, &mut |_, _| {}).unwrap();
    TextModel::new(model).unwrap()
}

fn session(tm: &TextModel) -> Session {
    Session::new(tm.model.clone(), SessionOptions { context: 2048, prefill_chunk: 256, ..Default::default() }).unwrap()
}

/// Generates after `ids` (under `grammar`, if any) until the end of the reply.
fn generate(tm: &TextModel, s: &mut Session, ids: &[u32], grammar: Option<&Grammar>, sampling: &Sampling, max_tokens: usize) -> (Vec<u32>, StopReason) {
    let end = tm.end_of_reply().unwrap();
    let mut constraint = grammar.map(|g| Grammars::new(tm, end).unwrap().constraint(g).unwrap());
    let g = pollster::block_on(s.generate(Generate { stop_ids: &[end], constraint: constraint.as_mut().map(|c| c as &mut dyn TokenConstraint), ..Generate::new(ids, max_tokens, sampling) }, &mut |_| true)).unwrap();
    (g.tokens.into_iter().filter(|&t| t != end).collect(), g.stop)
}

fn samplings() -> [Sampling; 3] {
    [Sampling::default(), Sampling { temperature: 1.0, seed: 11, ..Default::default() }, Sampling { temperature: 0.7, top_p: 0.9, seed: 5, ..Default::default() }]
}

/// The one call of a reply, after checking that it is the whole reply.
fn only_call(text: &str) -> ToolCall {
    let reply = tools::parse_reply(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(reply.content, "", "text around the call: {text:?}");
    assert_eq!(reply.calls.len(), 1, "{text:?}");
    reply.calls.into_iter().next().unwrap()
}

fn parameters<'a>(tools: &'a [Value], name: &str) -> &'a Value {
    &tools.iter().find(|t| t["function"]["name"] == name).unwrap_or_else(|| panic!("no tool {name}"))["function"]["parameters"]
}

fn assert_valid(tools: &[Value], call: &ToolCall, text: &str) {
    let schema = parameters(tools, &call.name);
    let validator = jsonschema::validator_for(schema).unwrap();
    let args = Value::Object(call.arguments.clone());
    let errors: Vec<String> = validator.iter_errors(&args).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{text:?}: the arguments {args} break {}'s schema: {errors:?}", call.name);
}

/// The built-in tools, with the calculator's expression held to `a op b`
/// so that a random model's call is one the calculator can run.
fn builtin_tools() -> Vec<Value> {
    let mut tools = app::tools::builtin_definitions();
    tools[0]["function"]["parameters"]["properties"]["expression"]["pattern"] = json!("^[1-9][0-9]? [+*-] [1-9][0-9]?$");
    tools
}

/// What `a op b` is, computed here rather than by the calculator.
fn arithmetic(expression: &str) -> i64 {
    let parts: Vec<&str> = expression.split(' ').collect();
    let (a, b): (i64, i64) = (parts[0].parse().unwrap(), parts[2].parse().unwrap());
    match parts[1] {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        op => panic!("operator {op}"),
    }
}

#[test]
fn a_required_call_is_parsed_run_and_answered() {
    let tm = tiny();
    let template = tm.template.as_ref().unwrap();
    // The tiny model's template knows no tools: the tool list goes into the
    // system prompt and results are wrapped, as LFM2's own template does.
    assert_eq!(tm.call_style(), CallStyle::Lfm2);
    let tools = builtin_tools();
    let messages = vec![ChatMessage::new("system", "You are a helpful assistant."), ChatMessage::new("user", "What is 12 times 7?")];
    let prompt = template.render_with_tools(&messages, &tools, true).unwrap();
    assert!(prompt.contains("List of tools: <|tool_list_start|>[{\"type\": \"function\", \"function\": {\"name\": \"calculator\""), "{prompt}");
    let grammar = tm.tool_call_grammar(&tools, Some(app::tools::CALCULATOR)).unwrap();
    for sampling in samplings() {
        let mut s = session(&tm);
        let ids = tm.tokenizer.encode_rendered(&prompt).unwrap();
        let (reply_ids, stop) = generate(&tm, &mut s, &ids, Some(&grammar), &sampling, 80);
        let text = tm.tokenizer.decode(&reply_ids, false);
        assert_eq!(stop, StopReason::Stop, "{sampling:?}: the call did not end: {text:?}");
        let call = only_call(&text);
        assert_eq!(call.name, app::tools::CALCULATOR, "{text:?}");
        assert_valid(&tools, &call, &text);
        let expression = call.arguments["expression"].as_str().unwrap();
        let result = app::tools::run_builtin(&call.name, &call.arguments, &[]).unwrap();
        assert_eq!(result, arithmetic(expression).to_string(), "{expression}");
        eprintln!("{sampling:?}: {text} -> {result}");

        // The call replayed as the model wrote it, then its result: the next
        // prompt extends what the session holds, so nothing is run twice.
        let mut turn = messages.clone();
        turn.push(ChatMessage::new("assistant", &tools::render_calls(tm.call_style(), &[call.clone()])));
        turn.push(ChatMessage::new("tool", &result));
        let next = template.render_with_tools(&turn, &tools, true).unwrap();
        assert!(next.contains(&format!("<|tool_response_start|>{result}<|tool_response_end|>")), "{next}");
        let held = tm.tokenizer.decode(s.history(), false);
        assert!(next.starts_with(&held), "the replayed call does not match the reply:\n{held}\n{next}");
        let new_ids = tm.tokenizer.encode_rendered(&next[held.len()..]).unwrap();
        let mut all = s.history().to_vec();
        all.extend(&new_ids);
        let (answer, _) = generate(&tm, &mut s, &new_ids, None, &Sampling::default(), 12);
        assert!(!answer.is_empty(), "no answer after the tool result");
        let (fresh, _) = generate(&tm, &mut session(&tm), &all, None, &Sampling::default(), 12);
        assert_eq!(answer, fresh, "the answer from the held state differs from a fresh session's");
    }
    // A tool the list does not have cannot be required.
    assert!(tm.tool_call_grammar(&tools, Some("rm")).unwrap_err().to_string().contains("no tool is named \"rm\""));
}

fn weather_tools() -> Vec<Value> {
    vec![
        json!({"type": "function", "function": {"name": "get_weather", "description": "The forecast", "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "hourly": {"type": "boolean"}
            },
            "required": ["city", "unit"]
        }}}),
        json!({"type": "function", "function": {"name": "math.round", "parameters": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "digits": {"type": "integer"}}
        }}}),
    ]
}

/// A template that renders tools itself without LFM2's markers (as
/// Llama-family ones do): the model writes the JSON form.
const JSON_TEMPLATE: &str = "{{- bos_token -}}{%- if tools -%}<|im_start|>system\nTools: {{ tools | tojson }}\nCall one as <tool_call>{\"name\": ..., \"arguments\": ...}</tool_call><|im_end|>\n{%- endif -%}{%- for m in messages -%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}";

#[test]
fn calls_keep_to_their_schemas_in_both_formats() {
    let mut tm = tiny();
    let tools = weather_tools();
    let messages = [ChatMessage::new("user", "Weather in Oslo?")];
    for style in [CallStyle::Lfm2, CallStyle::Json] {
        if style == CallStyle::Json {
            tm.template = Some(ChatTemplate::new(JSON_TEMPLATE, "<|startoftext|>", "<|im_end|>").unwrap());
        }
        assert_eq!(tm.call_style(), style);
        let prompt = tm.template.as_ref().unwrap().render_with_tools(&messages, &tools, true).unwrap();
        let ids = tm.tokenizer.encode_rendered(&prompt).unwrap();
        let grammar = tm.tool_call_grammar(&tools, None).unwrap();
        let mut names = Vec::new();
        for sampling in samplings() {
            let (reply, stop) = generate(&tm, &mut session(&tm), &ids, Some(&grammar), &sampling, 120);
            let text = tm.tokenizer.decode(&reply, false);
            assert_eq!(stop, StopReason::Stop, "{style:?} {sampling:?}: {text:?}");
            let marker = if style == CallStyle::Json { tools::JSON_CALL_START } else { tools::LFM2_CALL_START };
            assert!(text.starts_with(marker), "{style:?}: {text:?}");
            let call = only_call(&text);
            assert_valid(&tools, &call, &text);
            eprintln!("{style:?} {sampling:?}: {text}");
            // Replayed in the same format, the call reads back the same.
            assert_eq!(only_call(&tools::render_calls(style, &[call.clone()])), call);
            names.push(call.name);
        }
        let forced = tm.tool_call_grammar(&tools, Some("math.round")).unwrap();
        let (reply, _) = generate(&tm, &mut session(&tm), &ids, Some(&forced), &Sampling::default(), 120);
        let text = tm.tokenizer.decode(&reply, false);
        let call = only_call(&text);
        assert_eq!(call.name, "math.round", "{text:?}");
        assert_valid(&tools, &call, &text);
        eprintln!("{style:?} forced: {text} (free choices: {names:?})");
    }
}
