//! Tool calls as LFM2/LFM2.5 and Llama-family templates write them, parsed
//! into names and JSON arguments (a table of real call strings).

use engine::tools::{parse_pythonic, parse_reply, to_pythonic, ToolCallError};
use serde_json::json;

fn calls(src: &str) -> serde_json::Value {
    let r = parse_reply(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    json!({
        "content": r.content,
        "calls": r.calls.iter().map(|c| json!({"name": c.name, "arguments": c.arguments})).collect::<Vec<_>>(),
    })
}

#[test]
fn lfm2_pythonic_calls() {
    let table = [
        // Liquid's model card example.
        (
            r#"<|tool_call_start|>[get_candidate_status(candidate_id="12345")]<|tool_call_end|>Checking the current status of candidate ID 12345."#,
            json!({"content": "Checking the current status of candidate ID 12345.", "calls": [{"name": "get_candidate_status", "arguments": {"candidate_id": "12345"}}]}),
        ),
        // Several calls, dotted names, Python literals.
        (
            r#"<|tool_call_start|>[math.sqrt(x=2.0), db.users.find(active=True, limit=10, tag=None, ratio=-1.5e-3)]<|tool_call_end|>"#,
            json!({"content": "", "calls": [
                {"name": "math.sqrt", "arguments": {"x": 2.0}},
                {"name": "db.users.find", "arguments": {"active": true, "limit": 10, "tag": null, "ratio": -0.0015}},
            ]}),
        ),
        // Single quotes, escapes, nested lists/dicts/tuples, trailing commas, spaces.
        (
            "<|tool_call_start|>[ send ( to = 'ana@example.com' , body='It\\'s \"done\"\\nbye', cc=['a', \"b\",], meta={'k': (1, 2), \"n\": {'deep': False}}, ) ]<|tool_call_end|>",
            json!({"content": "", "calls": [{"name": "send", "arguments": {
                "to": "ana@example.com", "body": "It's \"done\"\nbye", "cc": ["a", "b"], "meta": {"k": [1, 2], "n": {"deep": false}},
            }}]}),
        ),
        // No arguments; text before and after; non-ASCII.
        (
            "Sure. <|tool_call_start|>[now()]<|tool_call_end|> Then: <|tool_call_start|>[translate(text=\"ça va ☀\")]<|tool_call_end|>",
            json!({"content": "Sure.  Then:", "calls": [{"name": "now", "arguments": {}}, {"name": "translate", "arguments": {"text": "ça va ☀"}}]}),
        ),
        // Without the brackets (some fine-tunes drop them for one call).
        (r#"<|tool_call_start|>get_weather(city="Paris")<|tool_call_end|>"#, json!({"content": "", "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})),
        // The JSON form of Llama-family (Hermes/Qwen) templates, arguments as an object or a string.
        (
            r#"<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}</tool_call>"#,
            json!({"content": "", "calls": [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]}),
        ),
        (
            r#"<tool_call>{"name": "f", "parameters": "{\"a\": [1, 2]}"}</tool_call>"#,
            json!({"content": "", "calls": [{"name": "f", "arguments": {"a": [1, 2]}}]}),
        ),
        // No call at all.
        ("Just text.", json!({"content": "Just text.", "calls": []})),
    ];
    for (src, want) in table {
        assert_eq!(calls(src), want, "{src}");
    }
}

#[test]
fn bad_calls_get_clear_errors() {
    let bad = [
        ("[f(1)]", "positional arguments"),
        ("[f(x=y)]", "expected a literal"),
        ("[f(x=1 + 2)]", "expected ')'"),
        ("[f(x='open)]", "unterminated string"),
        ("[f(x=1, x=2)]", "given twice"),
        ("[f(x=1)] trailing", "unexpected text"),
        ("[3f(x=1)]", "function name"),
        ("[f(x=1e999)]", "not a number"),
    ];
    for (src, want) in bad {
        let e = parse_pythonic(src).expect_err(src).to_string();
        assert!(e.contains(want), "{src}: {e}");
    }
    assert_eq!(
        parse_reply("<|tool_call_start|>[f(x=1)]").unwrap_err(),
        ToolCallError::Unterminated { start: "<|tool_call_start|>", end: "<|tool_call_end|>" }
    );
    assert!(parse_reply(r#"<tool_call>{"arguments": {}}</tool_call>"#).unwrap_err().to_string().contains("name"));
    assert!(parse_reply(r#"<tool_call>{"name": "f", "arguments": [1]}</tool_call>"#).unwrap_err().to_string().contains("not an object"));
}

/// What Eddy writes back into a prompt for an earlier call reads back as the same call.
#[test]
fn pythonic_round_trip() {
    let src = r#"<|tool_call_start|>[a.b(s="q\"uote\n", n=-3, f=0.25, l=[True, None, {"k": "v"}])]<|tool_call_end|>"#;
    let first = parse_reply(src).unwrap();
    let again = parse_reply(&to_pythonic(&first.calls)).unwrap();
    assert_eq!(first, again);
}

#[test]
fn call_grammars_refuse_what_no_call_can_meet() {
    use engine::tools::{call_grammar, CallStyle};
    let tools = [json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}}})];
    for style in [CallStyle::Lfm2, CallStyle::Json] {
        assert!(call_grammar(style, &tools, None, false).is_ok());
        assert!(call_grammar(style, &tools, Some("g"), false).unwrap_err().to_string().contains("no tool is named \"g\""));
        assert!(call_grammar(style, &[], None, false).unwrap_err().to_string().contains("no tools"));
        let bad_name = [json!({"name": "rm -rf", "parameters": {"type": "object"}})];
        assert!(call_grammar(style, &bad_name, None, false).unwrap_err().to_string().contains("only letters"));
    }
    let cases = [
        (json!({"name": "f", "parameters": {"type": "object", "properties": {}, "required": ["x"]}}), "requires \"x\""),
        (json!({"name": "f", "parameters": {"type": "object", "properties": {"a b": {"type": "string"}}}}), "not a Python identifier"),
        (json!({"name": "f", "parameters": {"type": "object", "properties": {"x": {"enum": []}}}}), "an enum with no values"),
        (json!({"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": "^\"$"}}}}), "names a quote"),
        (json!({"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "date"}}}}), "unknown JSON type"),
    ];
    for (tool, says) in cases {
        let e = call_grammar(CallStyle::Lfm2, &[tool.clone()], None, false).unwrap_err().to_string();
        assert!(e.contains(says), "{tool}: {e}");
    }
    // Markers as special tokens where the vocabulary has them, as text elsewhere.
    assert!(call_grammar(CallStyle::Lfm2, &tools, None, true).unwrap().starts_with("start: <|tool_call_start|> \"[\""));
    assert!(call_grammar(CallStyle::Lfm2, &tools, None, false).unwrap().starts_with("start: \"<|tool_call_start|>\" \"[\""));
}

#[test]
fn json_form_calls_render_and_read_back() {
    use engine::tools::{render_calls, CallStyle};
    let calls = parse_reply(r#"<|tool_call_start|>[f(a="x\"y", b=[1, 2.5, None]), g.h()]<|tool_call_end|>"#).unwrap().calls;
    for style in [CallStyle::Lfm2, CallStyle::Json] {
        let text = render_calls(style, &calls);
        assert_eq!(parse_reply(&text).unwrap().calls, calls, "{style:?}: {text}");
    }
    assert_eq!(render_calls(CallStyle::Json, &calls[1..]), "<tool_call>\n{\"name\": \"g.h\", \"arguments\": {}}\n</tool_call>");
}
