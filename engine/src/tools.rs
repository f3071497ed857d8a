//! Tool calls in a model's reply, as structured calls.
//!
//! LFM2 and LFM2.5 write Python-style calls between their own special tokens,
//! `<|tool_call_start|>[get_weather(city="Paris", days=3), math.sqrt(x=2.0)]<|tool_call_end|>`,
//! with Python literals for the arguments (`True`/`False`/`None`, single or
//! double quotes, lists, tuples, dicts). Llama-family templates write the
//! generic JSON form, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.
//! Both become [`ToolCall`]s whose arguments are a JSON object.
//!
//! A small recursive-descent reader of Python literals, not a Python parser:
//! expressions other than literals (`f(x=1+2)`, a variable) are errors that
//! name the offending text, never guesses.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

mod grammar;
pub use grammar::call_grammar;

pub const LFM2_CALL_START: &str = "<|tool_call_start|>";
pub const LFM2_CALL_END: &str = "<|tool_call_end|>";
pub const JSON_CALL_START: &str = "<tool_call>";
pub const JSON_CALL_END: &str = "</tool_call>";

/// One call: a function name (dots allowed: `math.sqrt`) and its keyword
/// arguments as a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolCallError {
    #[error("tool call at byte {at}: {what} (in {near:?})")]
    Syntax { at: usize, what: String, near: String },
    #[error("a tool call starts with {start} but has no {end}")]
    Unterminated { start: &'static str, end: &'static str },
    #[error("a JSON tool call is not an object with a \"name\" and \"arguments\": {0}")]
    Json(String),
}

/// How a model writes its calls: LFM2's Python-style calls between its
/// markers, or the generic JSON form of Llama-family templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStyle {
    Lfm2,
    Json,
}

/// Calls as the model itself would have written them (an assistant turn
/// replayed into the next prompt).
pub fn render_calls(style: CallStyle, calls: &[ToolCall]) -> String {
    match style {
        CallStyle::Lfm2 => to_pythonic(calls),
        CallStyle::Json => calls
            .iter()
            .map(|c| {
                let body = serde_json::json!({"name": c.name, "arguments": c.arguments});
                format!("{JSON_CALL_START}\n{}\n{JSON_CALL_END}", crate::chat::python_json(&body))
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A reply split into its text and its tool calls (in order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reply {
    pub content: String,
    pub calls: Vec<ToolCall>,
}

/// Splits a complete reply into text and calls, in either format. The text
/// keeps everything outside the call markers, trimmed.
pub fn parse_reply(text: &str) -> Result<Reply, ToolCallError> {
    let mut reply = Reply::default();
    let mut rest = text;
    loop {
        let lfm = rest.find(LFM2_CALL_START).map(|i| (i, LFM2_CALL_START, LFM2_CALL_END));
        let json = rest.find(JSON_CALL_START).map(|i| (i, JSON_CALL_START, JSON_CALL_END));
        let next = match (lfm, json) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        let Some((at, start, end)) = next else {
            reply.content.push_str(rest);
            break;
        };
        reply.content.push_str(&rest[..at]);
        let body_start = at + start.len();
        let len = rest[body_start..].find(end).ok_or(ToolCallError::Unterminated { start, end })?;
        let body = &rest[body_start..body_start + len];
        if start == LFM2_CALL_START {
            reply.calls.extend(parse_pythonic(body)?);
        } else {
            reply.calls.push(parse_json_call(body)?);
        }
        rest = &rest[body_start + len + end.len()..];
    }
    reply.content = reply.content.trim().to_string();
    Ok(reply)
}

/// `[f(a=1), g.h(b="x")]` (the brackets may be left out for one call).
pub fn parse_pythonic(src: &str) -> Result<Vec<ToolCall>, ToolCallError> {
    let mut r = Reader { src, at: 0 };
    r.ws();
    let bracketed = r.eat('[');
    let mut calls = Vec::new();
    loop {
        r.ws();
        if bracketed && r.eat(']') {
            break;
        }
        if !bracketed && r.at == src.len() {
            break;
        }
        calls.push(r.call()?);
        r.ws();
        if r.eat(',') {
            continue;
        }
        if bracketed {
            r.expect(']')?;
        }
        break;
    }
    r.ws();
    if r.at != src.len() {
        return Err(r.error("unexpected text after the calls"));
    }
    Ok(calls)
}

/// `{"name": "f", "arguments": {...}}` (also `"parameters"`, and arguments
/// given as a JSON string, as some templates write them).
pub fn parse_json_call(src: &str) -> Result<ToolCall, ToolCallError> {
    let v: Value = serde_json::from_str(src.trim()).map_err(|e| ToolCallError::Json(e.to_string()))?;
    let name = v.get("name").and_then(Value::as_str).ok_or_else(|| ToolCallError::Json("no \"name\"".into()))?.to_string();
    let args = v.get("arguments").or_else(|| v.get("parameters")).cloned().unwrap_or(Value::Object(Map::new()));
    let args = match args {
        Value::String(s) => serde_json::from_str(&s).map_err(|e| ToolCallError::Json(format!("arguments: {e}")))?,
        other => other,
    };
    match args {
        Value::Object(arguments) => Ok(ToolCall { name, arguments }),
        other => Err(ToolCallError::Json(format!("arguments are {other}, not an object"))),
    }
}

/// The LFM2 form of calls (what a tool-using LFM2 writes), for templates
/// that replay an assistant's earlier calls.
pub fn to_pythonic(calls: &[ToolCall]) -> String {
    let calls: Vec<String> = calls
        .iter()
        .map(|c| {
            let args: Vec<String> = c.arguments.iter().map(|(k, v)| format!("{k}={}", py_literal(v))).collect();
            format!("{}({})", c.name, args.join(", "))
        })
        .collect();
    format!("{LFM2_CALL_START}[{}]{LFM2_CALL_END}", calls.join(", "))
}

fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        // JSON string escapes are valid Python string escapes.
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(py_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!("{{{}}}", o.iter().map(|(k, v)| format!("{}: {}", Value::String(k.clone()), py_literal(v))).collect::<Vec<_>>().join(", ")),
    }
}

struct Reader<'a> {
    src: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ToolCallError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {c:?}")))
        }
    }

    fn error(&self, what: &str) -> ToolCallError {
        let start = self.src[..self.at].char_indices().rev().nth(15).map_or(0, |(i, _)| i);
        let end = self.src[self.at..].char_indices().nth(16).map_or(self.src.len(), |(i, _)| self.at + i);
        ToolCallError::Syntax { at: self.at, what: what.to_string(), near: self.src[start..end].to_string() }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.bump();
        }
        (self.at > start && !self.src[start..].starts_with(|c: char| c.is_ascii_digit())).then(|| self.src[start..self.at].to_string())
    }

    /// `name(key=value, ...)`, the name dotted.
    fn call(&mut self) -> Result<ToolCall, ToolCallError> {
        let start = self.at;
        loop {
            if self.ident().is_none() {
                return Err(self.error("expected a function name"));
            }
            if !self.eat('.') {
                break;
            }
        }
        let name = self.src[start..self.at].to_string();
        self.ws();
        self.expect('(')?;
        let mut arguments = Map::new();
        loop {
            self.ws();
            if self.eat(')') {
                break;
            }
            let key_at = self.at;
            let Some(key) = self.ident() else {
                return Err(self.error("expected a keyword argument name=value (positional arguments are not supported)"));
            };
            self.ws();
            if !self.eat('=') {
                self.at = key_at;
                return Err(self.error("positional arguments are not supported: expected name=value"));
            }
            self.ws();
            let value = self.value()?;
            if arguments.insert(key.clone(), value).is_some() {
                self.at = key_at;
                return Err(self.error(&format!("argument {key} given twice")));
            }
            self.ws();
            if !self.eat(',') {
                self.ws();
                self.expect(')')?;
                break;
            }
        }
        Ok(ToolCall { name, arguments })
    }

    fn value(&mut self) -> Result<Value, ToolCallError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => self.string(q).map(Value::String),
            Some('[') => {
                self.bump();
                self.sequence(']')
            }
            Some('(') => {
                self.bump();
                self.sequence(')')
            }
            Some('{') => {
                self.bump();
                self.dict()
            }
            Some(c) if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => self.number(),
            _ => {
                let at = self.at;
                match self.ident().as_deref() {
                    Some("True" | "true") => Ok(Value::Bool(true)),
                    Some("False" | "false") => Ok(Value::Bool(false)),
                    Some("None" | "null") => Ok(Value::Null),
                    _ => {
                        self.at = at;
                        Err(self.error("expected a literal (a string, number, True, False, None, list or dict)"))
                    }
                }
            }
        }
    }

    fn sequence(&mut self, close: char) -> Result<Value, ToolCallError> {
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.eat(close) {
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.ws();
            if !self.eat(',') {
                self.ws();
                self.expect(close)?;
                return Ok(Value::Array(items));
            }
        }
    }

    fn dict(&mut self) -> Result<Value, ToolCallError> {
        let mut map = Map::new();
        loop {
            self.ws();
            if self.eat('}') {
                return Ok(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_string(),
                _ => return Err(self.error("a dict key must be a string or a number")),
            };
            self.ws();
            self.expect(':')?;
            self.ws();
            let v = self.value()?;
            map.insert(key, v);
            self.ws();
            if !self.eat(',') {
                self.ws();
                self.expect('}')?;
                return Ok(Value::Object(map));
            }
        }
    }

    fn number(&mut self) -> Result<Value, ToolCallError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_')) {
            // A sign only at the start or after an exponent.
            if matches!(self.peek(), Some('-' | '+')) && self.at > start && !matches!(self.src.as_bytes()[self.at - 1], b'e' | b'E') {
                break;
            }
            self.bump();
        }
        let text: String = self.src[start..self.at].chars().filter(|&c| c != '_').collect();
        let text = text.strip_prefix('+').unwrap_or(&text);
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        match text.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64) {
            Some(n) if !text.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => Ok(Value::Number(n)),
            _ => {
                self.at = start;
                Err(self.error("not a number"))
            }
        }
    }

    /// A Python string literal with the common escapes.
    fn string(&mut self, quote: char) -> Result<String, ToolCallError> {
        let start = self.at;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    self.at = start;
                    return Err(self.error("unterminated string"));
                }
                Some(c) if c == quote => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('0') => out.push('\0'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or_else(|| self.error("bad \\u escape"))?;
                        out.push(c);
                    }
                    Some(c @ ('\\' | '\'' | '"')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err(self.error("unterminated string")),
                },
                Some(c) => out.push(c),
            }
        }
    }
}
