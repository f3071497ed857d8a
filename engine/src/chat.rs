//! Chat templates: the model's Jinja template (GGUF `tokenizer.chat_template`
//! or `tokenizer_config.json`) rendered with minijinja, as transformers'
//! `apply_chat_template` does.

use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::model::ModelError;

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
}

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
        env.add_function("strftime_now", |_format: String| -> String { String::new() });
        env.add_template_owned("chat", source.to_string()).map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
        Ok(Self { env, bos: bos.to_string(), eos: eos.to_string() })
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ModelError> {
        let template = self.env.get_template("chat").map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos,
                eos_token => self.eos,
            })
            .map_err(|e| ModelError::ChatTemplate(format!("{e:#}")))
    }
}
