//! Tools in the prompt as LFM2's template writes them (../shared/docs/lfm2.md):
//! through a template that renders `tools` itself, and through one that does
//! not (LFM2's first upload, the tiny test models), the same text.

use engine::chat::{python_json, ChatMessage, ChatTemplate};
use serde_json::json;

/// LFM2's tool template, written from its description in plain words.
const LFM2_TOOL_TEMPLATE: &str = r#"{{- bos_token -}}
{%- set system_prompt = "" -%}
{%- if messages[0]["role"] == "system" -%}{%- set system_prompt = messages[0]["content"] -%}{%- set messages = messages[1:] -%}{%- endif -%}
{%- if system_prompt or tools -%}
{{- "<|im_start|>system\n" + system_prompt -}}
{%- if tools -%}{{- ("\n" if system_prompt else "") + "List of tools: <|tool_list_start|>[" -}}{%- for tool in tools -%}{{- tool | tojson -}}{%- if not loop.last -%}{{- ", " -}}{%- endif -%}{%- endfor -%}{{- "]<|tool_list_end|>" -}}{%- endif -%}
{{- "<|im_end|>\n" -}}
{%- endif -%}
{%- for message in messages -%}
{{- "<|im_start|>" + message["role"] + "\n" -}}
{%- if message["role"] == "tool" -%}{{- "<|tool_response_start|>" + message["content"] + "<|tool_response_end|>" -}}{%- else -%}{{- message["content"] -}}{%- endif -%}
{{- "<|im_end|>\n" -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "<|im_start|>assistant\n" -}}{%- endif -%}"#;

/// The tiny models' template: no tools.
const PLAIN_TEMPLATE: &str = "{{- bos_token -}}{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}";

fn tools() -> Vec<serde_json::Value> {
    vec![
        json!({"name": "get_weather", "description": "Weather <now> & later", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}),
        json!({"name": "calc", "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}}}),
    ]
}

#[test]
fn tool_list_and_results_render_as_lfm2_writes_them() {
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Weather in Paris?"),
        ChatMessage::new("assistant", "<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|>"),
        ChatMessage::new("tool", "{\"temp\": 21}"),
    ];
    let want = concat!(
        "<|startoftext|><|im_start|>system\nBe brief.\nList of tools: <|tool_list_start|>[",
        r#"{"name": "get_weather", "description": "Weather <now> & later", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}, "#,
        r#"{"name": "calc", "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}}}"#,
        "]<|tool_list_end|><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n",
        "<|im_start|>assistant\n<|tool_call_start|>[get_weather(city=\"Paris\")]<|tool_call_end|><|im_end|>\n",
        "<|im_start|>tool\n<|tool_response_start|>{\"temp\": 21}<|tool_response_end|><|im_end|>\n<|im_start|>assistant\n",
    );
    for (name, source) in [("LFM2's tool template", LFM2_TOOL_TEMPLATE), ("a template without tools", PLAIN_TEMPLATE)] {
        let t = ChatTemplate::new(source, "<|startoftext|>", "<|im_end|>").unwrap();
        assert_eq!(t.render_with_tools(&messages, &tools(), true).unwrap(), want, "{name}");
    }
    // Without a system prompt the list is the system prompt; without tools nothing changes.
    let t = ChatTemplate::new(PLAIN_TEMPLATE, "<|startoftext|>", "<|im_end|>").unwrap();
    let user = [ChatMessage::new("user", "hi")];
    let got = t.render_with_tools(&user, &tools()[1..], false).unwrap();
    assert_eq!(got, format!("<|startoftext|><|im_start|>system\nList of tools: <|tool_list_start|>[{}]<|tool_list_end|><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n", python_json(&tools()[1])));
    assert_eq!(t.render_with_tools(&user, &[], false).unwrap(), t.render(&user, false).unwrap());
}

/// `tojson` writes as transformers' does (Python's json.dumps, which keeps
/// a dict's order: `sort_keys` is off there), with `indent` too.
#[test]
fn tojson_is_pythons() {
    let t = ChatTemplate::new("{{ messages[0] | tojson }}|{{ messages[0] | tojson(indent=2) }}", "", "").unwrap();
    let got = t.render(&[ChatMessage::new("user", "a<b")], false).unwrap();
    assert_eq!(got, "{\"role\": \"user\", \"content\": \"a<b\"}|{\n  \"role\": \"user\",\n  \"content\": \"a<b\"\n}");
}
