//! Chat templates: the model's Jinja template (GGUF `tokenizer.chat_template`
//! or `tokenizer_config.json`) rendered with minijinja, as transformers'
//! `apply_chat_template` does.

use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::{model::ModelError, tools::CallStyle};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.to_string(), content: content.to_string() }
    }
}

/// Instructions a template may run per rendering: a long conversation through
/// LFM2's or SmolLM2's template takes a few thousand; a hostile template that
/// loops forever stops here with an error instead of hanging the worker.
pub const TEMPLATE_FUEL: u64 = 5_000_000;

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// Whether the template itself renders a `tools` list (LFM2's current
    /// templates do; its first upload and many tiny ones do not).
    handles_tools: bool,
    /// How the model writes calls: LFM2's markers unless the template renders
    /// tools without them (Llama-family templates: the JSON form).
    call_style: CallStyle,
}

/// LFM2's tool list and tool results, for templates that do not write them
/// (as LFM2's own template does: `../shared/docs/lfm2.md`).
pub const TOOL_LIST_START: &str = "<|tool_list_start|>";
pub const TOOL_LIST_END: &str = "<|tool_list_end|>";
pub const TOOL_RESPONSE_START: &str = "<|tool_response_start|>";
pub const TOOL_RESPONSE_END: &str = "<|tool_response_end|>";

fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

impl ChatTemplate {
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self, ModelError> {
        let mut env = Environment::new();
        // transformers renders with trim_blocks and lstrip_blocks.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_function("strftime_now", |_format: String| -> String { String::new() });
        env.add_template_owned("chat", source.to_string()).map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
        let handles_tools = source.contains("tools");
        let call_style = if handles_tools && !source.contains(crate::tools::LFM2_CALL_START) { CallStyle::Json } else { CallStyle::Lfm2 };
        Ok(Self { env, bos: bos.to_string(), eos: eos.to_string(), handles_tools, call_style })
    }

    /// How this model writes its tool calls (and so how earlier calls are
    /// replayed and how a required call is constrained).
    pub fn call_style(&self) -> CallStyle {
        self.call_style
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ModelError> {
        self.render_with_tools(messages, &[], add_generation_prompt)
    }

    /// Renders with `tools` (JSON Schema function definitions, OpenAI's
    /// `{"type": "function", "function": {...}}` or bare `{"name", ...}`) for
    /// the model to call. A template that does not render tools gets them the
    /// way LFM2's own template writes them: appended to the system prompt as
    /// `List of tools: <|tool_list_start|>[...]<|tool_list_end|>`, and `tool`
    /// messages wrapped in `<|tool_response_start|>…<|tool_response_end|>`.
    pub fn render_with_tools(&self, messages: &[ChatMessage], tools: &[serde_json::Value], add_generation_prompt: bool) -> Result<String, ModelError> {
        let template = self.env.get_template("chat").map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
        let fallback;
        let messages = if self.handles_tools { messages } else {
            fallback = with_lfm2_tools(messages, tools);
            &fallback
        };
        let tools = (self.handles_tools && !tools.is_empty()).then_some(tools);
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos,
                eos_token => self.eos,
            })
            .map_err(|e| ModelError::ChatTemplate(format!("{e:#}")))
    }
}

/// transformers' `tojson` (Python's `json.dumps`: `, ` and `: `, or with
/// `indent`, one item a line), not minijinja's compact, HTML-escaped one: the
/// tool lists a model was trained on were written this way.
fn tojson(value: minijinja::Value, kwargs: minijinja::value::Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(match indent {
        Some(n) => {
            let pad = " ".repeat(n);
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes()));
            serde::Serialize::serialize(&json, &mut ser).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            String::from_utf8(out).unwrap_or_default()
        }
        None => python_json(&json),
    })
}

/// The messages with LFM2's tool list in the system prompt and tool results
/// wrapped, for templates that know neither.
fn with_lfm2_tools(messages: &[ChatMessage], tools: &[serde_json::Value]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = messages
        .iter()
        .map(|m| match m.role.as_str() {
            "tool" => ChatMessage::new("tool", &format!("{TOOL_RESPONSE_START}{}{TOOL_RESPONSE_END}", m.content)),
            _ => m.clone(),
        })
        .collect();
    if tools.is_empty() {
        return out;
    }
    let list: Vec<String> = tools.iter().map(python_json).collect();
    let list = format!("List of tools: {TOOL_LIST_START}[{}]{TOOL_LIST_END}", list.join(", "));
    match out.first_mut() {
        Some(first) if first.role == "system" => {
            if !first.content.is_empty() {
                first.content.push('\n');
            }
            first.content.push_str(&list);
        }
        _ => out.insert(0, ChatMessage::new("system", &list)),
    }
    out
}

/// JSON as Python's `json.dumps` writes it (`, ` and `: `), which is what
/// transformers' `tojson` gives LFM2's template and so what the model saw.
pub fn python_json(value: &serde_json::Value) -> String {
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    serde::Serialize::serialize(value, &mut ser).expect("a JSON value serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}
