//! A model with its tokenizer and chat template: text in, token ids out.

use std::rc::Rc;

use crate::{
    chat::{ChatMessage, ChatTemplate},
    constrain::Grammar,
    tools::{self, CallStyle},
    model::ModelError,
    runtime::model::Model,
    tokenizer::Tokenizer,
};

pub struct TextModel {
    pub model: Rc<Model>,
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
}

impl TextModel {
    pub fn new(model: Rc<Model>) -> Result<Self, ModelError> {
        let spec = &model.spec;
        let tokenizer = Tokenizer::from_spec(spec)?;
        let token_text = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i)).unwrap_or_default();
        let template = match &spec.chat_template {
            Some(src) => Some(ChatTemplate::new(src, &token_text(spec.bos), &token_text(spec.eos))?),
            None => None,
        };
        Ok(Self { model, tokenizer, template })
    }

    /// Renders `messages` through the chat template (with the assistant's
    /// generation prompt) and tokenizes the result.
    pub fn chat_ids(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
        let template = self.template.as_ref().ok_or_else(|| ModelError::ChatTemplate("the model has no chat template".into()))?;
        let text = template.render(messages, true)?;
        self.tokenizer.encode_rendered(&text)
    }

    /// How the model writes tool calls (its template's way; LFM2's without one).
    pub fn call_style(&self) -> CallStyle {
        self.template.as_ref().map_or(CallStyle::Lfm2, ChatTemplate::call_style)
    }

    /// The grammar of a reply that is one call to one of `tools` (only
    /// `only`, if named), in the model's own call format, with its markers
    /// as special tokens where the vocabulary has them (LFM2's does).
    pub fn tool_call_grammar(&self, tools: &[serde_json::Value], only: Option<&str>) -> Result<Grammar, ModelError> {
        let style = self.call_style();
        let marker = match style {
            CallStyle::Lfm2 => tools::LFM2_CALL_START,
            CallStyle::Json => tools::JSON_CALL_START,
        };
        let special = self.tokenizer.token_to_id(marker).is_some();
        tools::call_grammar(style, tools, only, special).map(Grammar::Lark).map_err(|e| ModelError::Constraint(e.to_string()))
    }

    /// The token that ends a reply: a ChatML model's `<|im_end|>`, else EOS.
    pub fn end_of_reply(&self) -> Option<u32> {
        self.tokenizer.token_to_id("<|im_end|>").or(self.model.spec.eos).or_else(|| self.stop_ids().first().copied())
    }

    /// Ids that end a reply.
    pub fn stop_ids(&self) -> Vec<u32> {
        let mut ids = self.model.spec.stop_ids();
        // ChatML models end turns with <|im_end|> even when EOS is another token.
        if let Some(id) = self.tokenizer.token_to_id("<|im_end|>") {
            ids.push(id);
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
