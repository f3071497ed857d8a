//! The tools a model may call, and the two that run on the device itself: a
//! calculator and a reader of the text files attached to the chat. Calls
//! come parsed (engine::tools); the user approves each before it runs.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub const CALCULATOR: &str = "calculator";
pub const READ_FILE: &str = "read_attached_file";

/// Characters of a file a call returns at most: a model's context is small,
/// and a whole book would push the conversation out of it.
pub const READ_FILE_MAX_CHARS: usize = 8_000;

/// A text file the user attached to the chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("no tool is named {0:?}")]
    Unknown(String),
    #[error("{tool} needs a string argument {arg:?}")]
    MissingArgument { tool: &'static str, arg: &'static str },
    #[error("the calculator cannot evaluate {expression:?}: {why}")]
    Calculation { expression: String, why: String },
    #[error("no attached file is named {name:?} (attached: {attached})")]
    NoSuchFile { name: String, attached: String },
    #[error("tool definitions: {0}")]
    Definition(String),
}

/// The user's own tools, from the JSON they typed: a list of OpenAI function
/// definitions (`{"type": "function", "function": {...}}`) or bare ones
/// (`{"name", "description", "parameters"}`), returned in OpenAI's form.
/// Blank text is no tools.
pub fn parse_definitions(text: &str) -> Result<Vec<Value>, ToolError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let bad = |what: String| ToolError::Definition(what);
    let list: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let items = match list {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return Err(bad("expected a list of functions".into())),
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let f = item.get("function").cloned().unwrap_or(item);
        let name = f.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("function {} has no \"name\"", i + 1)))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(bad(format!("{name:?}: a name has only letters, digits, '_' and '.'")));
        }
        if is_builtin(name) || out.iter().any(|t: &Value| t["function"]["name"] == name) {
            return Err(bad(format!("{name:?} is defined twice")));
        }
        match f.get("parameters") {
            None | Some(Value::Object(_)) => {}
            Some(_) => return Err(bad(format!("{name}: \"parameters\" must be a JSON Schema object"))),
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(out)
}

/// The built-in tools' definitions, as OpenAI-style functions with JSON
/// Schema parameters (what the model sees in its tool list).
pub fn builtin_definitions() -> Vec<Value> {
    vec![
        json!({
            "type": "function",
            "function": {
                "name": CALCULATOR,
                "description": "Evaluates an arithmetic expression (+ - * / % ^, parentheses, math functions such as math::sqrt) and returns the result.",
                "parameters": {
                    "type": "object",
                    "properties": { "expression": { "type": "string", "maxLength": 64, "description": "The expression, e.g. \"(3 + 4) * 2\"" } },
                    "required": ["expression"]
                }
            }
        }),
        json!({
            "type": "function",
            "function": {
                "name": READ_FILE,
                "description": "Returns the text of a file the user attached to this chat.",
                "parameters": {
                    "type": "object",
                    "properties": { "name": { "type": "string", "maxLength": 128, "description": "The file's name" } },
                    "required": ["name"]
                }
            }
        }),
    ]
}

pub fn is_builtin(name: &str) -> bool {
    name == CALCULATOR || name == READ_FILE
}

fn string_arg<'a>(args: &'a Map<String, Value>, tool: &'static str, arg: &'static str) -> Result<&'a str, ToolError> {
    args.get(arg).and_then(Value::as_str).ok_or(ToolError::MissingArgument { tool, arg })
}

/// Runs a built-in tool; its result is the text fed back to the model.
pub fn run_builtin(name: &str, args: &Map<String, Value>, attachments: &[Attachment]) -> Result<String, ToolError> {
    match name {
        CALCULATOR => calculate(string_arg(args, CALCULATOR, "expression")?),
        READ_FILE => read_file(string_arg(args, READ_FILE, "name")?, attachments),
        other => Err(ToolError::Unknown(other.to_string())),
    }
}

/// Evaluates arithmetic with `evalexpr` (no variables, no side effects: a
/// model's expression can compute, not reach anything).
pub fn calculate(expression: &str) -> Result<String, ToolError> {
    let fail = |why: String| ToolError::Calculation { expression: expression.to_string(), why };
    let value = evalexpr::eval(expression).map_err(|e| fail(e.to_string()))?;
    match value {
        evalexpr::Value::Int(i) => Ok(i.to_string()),
        evalexpr::Value::Float(f) if f.is_finite() => Ok(format_float(f)),
        evalexpr::Value::Float(f) => Err(fail(format!("the result is {f}"))),
        evalexpr::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(fail(format!("the result is not a number: {other}"))),
    }
}

/// A float without a trailing `.0` when it is whole, and without float
/// noise in the last digits (`0.1 + 0.2` gives `0.3`).
fn format_float(f: f64) -> String {
    let rounded = format!("{:.12}", f);
    let trimmed = rounded.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" { "0".into() } else { trimmed.to_string() }
}

fn read_file(name: &str, attachments: &[Attachment]) -> Result<String, ToolError> {
    let file = attachments.iter().find(|a| a.name == name).or_else(|| attachments.iter().find(|a| a.name.eq_ignore_ascii_case(name)));
    let Some(file) = file else {
        let attached = if attachments.is_empty() { "none".to_string() } else { attachments.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ") };
        return Err(ToolError::NoSuchFile { name: name.to_string(), attached });
    };
    let mut text: String = file.text.chars().take(READ_FILE_MAX_CHARS).collect();
    if file.text.chars().count() > READ_FILE_MAX_CHARS {
        text.push_str(&format!("\n[… the file continues: only its first {READ_FILE_MAX_CHARS} characters are shown]"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_calculator_computes() {
        for (expr, want) in [("2 + 3 * 4", "14"), ("(2 + 3) * 4", "20"), ("7 / 2", "3"), ("7.0 / 2", "3.5"), ("0.1 + 0.2", "0.3"), ("2 ^ 10", "1024"), ("math::sqrt(16.0)", "4"), ("-3 - -5", "2")] {
            assert_eq!(calculate(expr).unwrap(), want, "{expr}");
        }
        for bad in ["2 +", "x + 1", "\"text\"", "1 / 0"] {
            assert!(matches!(calculate(bad), Err(ToolError::Calculation { .. })), "{bad}: {:?}", calculate(bad));
        }
    }

    #[test]
    fn the_users_tools_are_read_or_refused() {
        let tools = parse_definitions(r#"[{"name": "get_weather", "parameters": {"type": "object"}}, {"type": "function", "function": {"name": "math.round"}}]"#).unwrap();
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0], json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}));
        assert_eq!(tools[1]["function"]["name"], "math.round");
        assert_eq!(parse_definitions("  ").unwrap(), Vec::<Value>::new());
        for (text, says) in [
            ("[{", "not JSON"),
            ("3", "a list of functions"),
            (r#"[{"description": "x"}]"#, "function 1 has no"),
            (r#"[{"name": "rm -rf"}]"#, "only letters"),
            (r#"[{"name": "calculator"}]"#, "defined twice"),
            (r#"[{"name": "f"}, {"name": "f"}]"#, "defined twice"),
            (r#"[{"name": "f", "parameters": "x"}]"#, "JSON Schema object"),
        ] {
            let e = parse_definitions(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_file_reader_finds_attachments() {
        let files = [Attachment { name: "notes.txt".into(), text: "buy milk".into() }, Attachment { name: "big.txt".into(), text: "x".repeat(READ_FILE_MAX_CHARS + 10) }];
        assert_eq!(run_builtin(READ_FILE, &args(json!({"name": "notes.txt"})), &files).unwrap(), "buy milk");
        assert_eq!(run_builtin(READ_FILE, &args(json!({"name": "NOTES.TXT"})), &files).unwrap(), "buy milk");
        let big = run_builtin(READ_FILE, &args(json!({"name": "big.txt"})), &files).unwrap();
        assert!(big.starts_with(&"x".repeat(READ_FILE_MAX_CHARS)) && big.contains("continues"), "{}", big.len());
        let missing = run_builtin(READ_FILE, &args(json!({"name": "a.txt"})), &files).unwrap_err();
        assert_eq!(missing.to_string(), "no attached file is named \"a.txt\" (attached: notes.txt, big.txt)");
        assert_eq!(run_builtin(READ_FILE, &args(json!({})), &files).unwrap_err(), ToolError::MissingArgument { tool: READ_FILE, arg: "name" });
        assert_eq!(run_builtin("rm", &args(json!({})), &files).unwrap_err(), ToolError::Unknown("rm".into()));
    }
}
