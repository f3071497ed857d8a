//! Grammars that hold a reply to a tool call (OpenAI's `tool_choice:
//! "required"` or a named function): the constrained decoder then writes a
//! call to one of the given tools whose arguments have the types, enums and
//! required keys of that tool's JSON Schema, in the model's own call format.
//!
//! LFM2's Python-style calls get a Lark grammar built from each tool's
//! `parameters` (keyword arguments in the schema's order, required ones
//! always, optional ones may be left out); the JSON form embeds the schema
//! itself (`%json`), so llguidance checks it in full.

use serde_json::{json, Map, Value};

use super::{CallStyle, ToolCallError, JSON_CALL_END, JSON_CALL_START, LFM2_CALL_END, LFM2_CALL_START};

/// A tool's name and its parameters' schema, from OpenAI's
/// `{"type": "function", "function": {...}}` or a bare `{"name", ...}`.
fn function(tool: &Value) -> Option<(&str, &Value)> {
    let f = tool.get("function").unwrap_or(tool);
    let name = f.get("name")?.as_str()?;
    static EMPTY: Value = Value::Null;
    Some((name, f.get("parameters").unwrap_or(&EMPTY)))
}

fn bad(what: String) -> ToolCallError {
    ToolCallError::Json(what)
}

/// The Lark grammar of one call to one of `tools` (only `only`, if named).
/// `special_markers`: the model's vocabulary has the call markers as special
/// tokens (LFM2's does), which the grammar then names as tokens rather than
/// as text.
pub fn call_grammar(style: CallStyle, tools: &[Value], only: Option<&str>, special_markers: bool) -> Result<String, ToolCallError> {
    let chosen: Vec<(&str, &Value)> = tools.iter().filter_map(function).filter(|(n, _)| only.is_none_or(|o| o == *n)).collect();
    if chosen.is_empty() {
        return Err(bad(match only {
            Some(name) => format!("no tool is named {name:?}"),
            None => "no tools to call".into(),
        }));
    }
    for (name, _) in &chosen {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(bad(format!("tool name {name:?}: only letters, digits, '_' and '.'")));
        }
    }
    let marker = |m: &str| if special_markers { m.to_string() } else { lark_str(m) };
    Ok(match style {
        CallStyle::Lfm2 => {
            let mut g = Lark::default();
            let calls: Vec<String> = chosen.iter().map(|(name, params)| g.call(name, params)).collect::<Result<_, _>>()?;
            let start = format!("start: {} \"[\" call \"]\" {}\n", marker(LFM2_CALL_START), marker(LFM2_CALL_END));
            format!("{start}call: {}\n{}pystr: /\"{PY_CHAR}*\"/\n{PY_COMMON}", calls.join(" | "), g.rules)
        }
        CallStyle::Json => {
            let variants: Vec<Value> = chosen
                .iter()
                .map(|(name, params)| {
                    let mut params = if params.is_null() { json!({"type": "object"}) } else { (*params).clone() };
                    // A call passes the arguments the tool declares, as in
                    // LFM2's form: no others unless the schema allows them.
                    if let Some(map) = params.as_object_mut() {
                        map.entry("additionalProperties").or_insert(Value::Bool(false));
                    }
                    json!({"type": "object", "properties": {"name": {"const": name}, "arguments": params}, "required": ["name", "arguments"], "additionalProperties": false})
                })
                .collect();
            let schema = json!({"anyOf": variants, "x-guidance": {"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}});
            format!("start: {} \"\\n\" body \"\\n\" {}\nbody: %json {}\n", marker(JSON_CALL_START), marker(JSON_CALL_END), schema)
        }
    })
}

/// A Lark string literal.
fn lark_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// One character of a Python string literal's text: anything but a quote,
/// a backslash or a control character, or an escape.
const PY_CHAR: &str = r#"([^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})"#;

/// Rules shared by every call: Python literals of each JSON type (and
/// `pystr`, any string, made from PY_CHAR).
const PY_COMMON: &str = r#"pyint: /-?(0|[1-9][0-9]{0,17})/
pynum: /-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][-+]?[0-9]{1,3})?/
pybool: "True" | "False"
pynone: "None"
pyany: pystr | pynum | pybool | pynone | pylist | pydict
pylist: "[" (pyany (", " pyany)*)? "]"
pydict: "{" (pystr ": " pyany (", " pystr ": " pyany)*)? "}"
"#;

/// The rules of the calls made so far (each tool's arguments and values).
#[derive(Default)]
struct Lark {
    rules: String,
    next: usize,
}

impl Lark {
    fn rule(&mut self, body: String) -> String {
        let name = format!("r{}", self.next);
        self.next += 1;
        self.rules.push_str(&format!("{name}: {body}\n"));
        name
    }

    /// `name(a=…, b=…)`: required parameters in the schema's order, then the
    /// optional ones, each of which may be left out.
    fn call(&mut self, name: &str, params: &Value) -> Result<String, ToolCallError> {
        let empty = Map::new();
        let props = params.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let required: Vec<&str> = params.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if let Some(missing) = required.iter().find(|r| !props.contains_key(**r)) {
            return Err(bad(format!("tool {name:?} requires {missing:?}, which its properties do not define")));
        }
        let mut must = Vec::new();
        let mut may = Vec::new();
        for (key, schema) in props {
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || key.is_empty() {
                return Err(bad(format!("tool {name:?}: argument name {key:?} is not a Python identifier")));
            }
            let item = format!("{} {}", lark_str(&format!("{key}=")), self.value(schema)?);
            if required.contains(&key.as_str()) { must.push(item) } else { may.push(item) }
        }
        // Optional arguments in order, any of them left out: after a required
        // one each comes as `, k=v`; with none required the first present
        // one has no comma.
        let args = if must.is_empty() {
            let mut head: Option<String> = None;
            for i in (0..may.len()).rev() {
                let first = match self.tail_from(&may[i + 1..]) {
                    Some(rest) => format!("{} {rest}", may[i]),
                    None => may[i].clone(),
                };
                head = Some(self.rule(match head {
                    Some(later) => format!("{first} | {later}"),
                    None => first,
                }));
            }
            head.map(|h| format!("{h}?"))
        } else {
            let must = must.join(" \", \" ");
            Some(match self.tail_from(&may) {
                Some(tail) => format!("{must} {tail}"),
                None => must,
            })
        };
        let open = lark_str(&format!("{name}("));
        Ok(match args {
            Some(a) => format!("{open} {a} \")\""),
            None => format!("{open} \")\""),
        })
    }

    /// `(, k=v)?` for each of `items`, in order (None: no items).
    fn tail_from(&mut self, items: &[String]) -> Option<String> {
        let mut tail: Option<String> = None;
        for item in items.iter().rev() {
            let body = match tail {
                Some(t) => format!("(\", \" {item})? {t}"),
                None => format!("(\", \" {item})?"),
            };
            tail = Some(self.rule(body));
        }
        tail
    }

    /// A double-quoted string of `minLength..=maxLength` characters (escapes
    /// count as one), or any string without bounds.
    fn bounded_string(&mut self, schema: &Value) -> String {
        let min = schema.get("minLength").and_then(Value::as_u64);
        let max = schema.get("maxLength").and_then(Value::as_u64);
        if min.is_none() && max.is_none() {
            return "pystr".into();
        }
        let min = min.unwrap_or(0);
        let max = max.map_or(String::new(), |m| m.max(min).to_string());
        self.rule(format!(r#"/"{PY_CHAR}{{{min},{max}}}"/"#))
    }

    /// A double-quoted string whose text matches a JSON Schema `pattern`
    /// (whole: its anchors are implied). The text goes into the literal as
    /// it is: a pattern that admits a quote or a backslash can give a call
    /// the parser refuses (with an error that says where).
    fn pattern(&mut self, pattern: &str) -> Result<String, ToolCallError> {
        let body = pattern.strip_prefix('^').unwrap_or(pattern);
        let body = body.strip_suffix('$').filter(|b| !b.ends_with('\\')).unwrap_or(body);
        if body.contains('"') {
            return Err(bad(format!("pattern {pattern:?} names a quote, which ends a call's string")));
        }
        Ok(self.rule(format!("\"\\\"\" /{}/ \"\\\"\"", body.replace('/', "\\/"))))
    }

    /// A Python literal of the JSON value `schema` describes.
    fn value(&mut self, schema: &Value) -> Result<String, ToolCallError> {
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if options.is_empty() {
                return Err(bad("an enum with no values".into()));
            }
            let alts: Vec<String> = options.iter().map(|v| lark_str(&super::py_literal(v))).collect();
            return Ok(self.rule(alts.join(" | ")));
        }
        if let Some(c) = schema.get("const") {
            return Ok(lark_str(&super::py_literal(c)));
        }
        let ty = match schema.get("type") {
            Some(Value::String(t)) => t.as_str(),
            _ => return Ok("pyany".into()),
        };
        Ok(match ty {
            "string" => match schema.get("pattern").and_then(Value::as_str) {
                Some(pattern) => self.pattern(pattern)?,
                None => self.bounded_string(schema),
            },
            "integer" => "pyint".into(),
            "number" => "pynum".into(),
            "boolean" => "pybool".into(),
            "null" => "pynone".into(),
            "array" => match schema.get("items") {
                Some(items) if items.is_object() => {
                    let item = self.value(items)?;
                    self.rule(format!("\"[\" ({item} (\", \" {item})*)? \"]\""))
                }
                _ => "pylist".into(),
            },
            "object" => "pydict".into(),
            other => return Err(bad(format!("unknown JSON type {other:?}"))),
        })
    }
}
