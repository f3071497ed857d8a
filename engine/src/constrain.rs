//! Constrained replies: JSON, a JSON Schema or a Lark grammar, through
//! `llguidance` (the library llama.cpp and vLLM use). It computes, on the CPU,
//! which tokens may come next; the session uploads that as a bitmask which the
//! GPU sampler applies, so no logits are read back.
//!
//! A [`Grammars`] is built once per model (a trie of every token's bytes,
//! which takes a moment for a large vocabulary); each reply gets its own
//! [`Constraint`].

use std::sync::Arc;

use llguidance::{
    api::TopLevelGrammar,
    toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie, TokenId},
    Matcher, ParserFactory,
};
use serde_json::Value;

use crate::{model::ModelError, runtime::session::TokenConstraint, text::TextModel};

/// What a reply must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// Any JSON object (OpenAI's `json_object`).
    JsonObject,
    /// A value valid under this JSON Schema.
    JsonSchema(Value),
    /// Text in the language of a Lark grammar (llguidance's dialect: its
    /// `start` rule; `%json { ... }` embeds a schema).
    Lark(String),
}

impl Grammar {
    fn top_level(&self) -> TopLevelGrammar {
        match self {
            Grammar::JsonObject => TopLevelGrammar::from_json_schema(compact(serde_json::json!({ "type": "object" }))),
            Grammar::JsonSchema(schema) => TopLevelGrammar::from_json_schema(compact(schema.clone())),
            Grammar::Lark(source) => TopLevelGrammar::from_lark(source.clone()),
        }
    }
}

/// JSON written as `{"a": 1, "b": [2, 3]}`, with no other whitespace, unless
/// the schema's own `x-guidance` options say otherwise. With whitespace free
/// a model can pad a reply with blanks until it runs out of tokens (a small
/// or unsure one does).
fn compact(mut schema: Value) -> Value {
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance").or_insert_with(|| serde_json::json!({ "whitespace_flexible": false, "item_separator": ", ", "key_separator": ": " }));
    }
    schema
}

fn constraint_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Constraint(e.to_string())
}

/// The bytes of an id without a token: a special token's marker and a name
/// no grammar uses.
fn unused(id: usize) -> Vec<u8> {
    let mut bytes = vec![TokTrie::SPECIAL_TOKEN_MARKER];
    bytes.extend_from_slice(format!("<[unused {id}]>").as_bytes());
    bytes
}

/// A model's tokens as llguidance sees them, ready to compile grammars.
pub struct Grammars {
    factory: ParserFactory,
    /// Mask words the session's sampler reads: the model's vocabulary, which
    /// may be larger than the tokenizer's (padding rows are never allowed).
    words: usize,
}

impl Grammars {
    /// `end` is the token that ends the reply (`<|im_end|>` for a chat): the
    /// constraint allows it once the grammar is complete, and only then.
    pub fn new(text: &TextModel, end: u32) -> Result<Self, ModelError> {
        let vocab = text.model.config().vocab;
        let mut tokens = text.tokenizer.token_bytes()?;
        if tokens.len() > vocab {
            return Err(ModelError::Constraint(format!("the tokenizer has {} tokens, the model {vocab}", tokens.len())));
        }
        // Ids without a token (padding rows, gaps): a special name no grammar uses.
        for (id, bytes) in tokens.iter_mut().enumerate() {
            if bytes.is_empty() {
                *bytes = unused(id);
            }
        }
        tokens.extend((tokens.len()..vocab).map(unused));
        if end as usize >= vocab {
            return Err(ModelError::Constraint(format!("the end token {end} is outside the vocabulary of {vocab}")));
        }
        let info = TokRxInfo::new(vocab as u32, end as TokenId);
        let trie = TokTrie::from(&info, &tokens);
        let env: llguidance::toktrie::TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env).map_err(constraint_err)?;
        factory.quiet();
        Ok(Self { factory, words: vocab.div_ceil(32) })
    }

    /// A constraint for one reply. An invalid schema or grammar, or one no
    /// text satisfies, is an error that says why.
    pub fn constraint(&self, grammar: &Grammar) -> Result<Constraint, ModelError> {
        let parser = self.factory.create_parser(grammar.top_level()).map_err(constraint_err)?;
        let mut matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(ModelError::Constraint(e));
        }
        // A grammar that allows nothing at all (not even the end) cannot be met.
        let first = matcher.compute_mask_or_eos().map_err(constraint_err)?;
        if first.is_zero() {
            return Err(ModelError::Constraint("no reply can satisfy this schema or grammar".into()));
        }
        let mut c = Constraint { matcher, mask: vec![0; self.words], fresh: false };
        c.store(&first);
        c.fresh = true;
        Ok(c)
    }
}

/// One reply's constraint: the parser state and the mask of the next choice.
pub struct Constraint {
    matcher: Matcher,
    mask: Vec<u32>,
    /// `mask` is already the next choice's (computed when the constraint was made).
    fresh: bool,
}

impl Constraint {
    fn store(&mut self, vob: &llguidance::toktrie::SimpleVob) {
        let bits = vob.as_slice();
        let n = bits.len().min(self.mask.len());
        self.mask[..n].copy_from_slice(&bits[..n]);
        self.mask[n..].fill(0);
    }

    /// The grammar is complete: only the end token may follow.
    pub fn is_done(&self) -> bool {
        self.matcher.is_stopped()
    }
}

impl TokenConstraint for Constraint {
    fn allowed(&mut self) -> Result<&[u32], ModelError> {
        if !std::mem::take(&mut self.fresh) {
            let vob = self.matcher.compute_mask_or_eos().map_err(constraint_err)?;
            self.store(&vob);
        }
        Ok(&self.mask)
    }

    fn consume(&mut self, token: u32) -> Result<(), ModelError> {
        self.fresh = false;
        self.matcher.consume_token(token).map_err(constraint_err)
    }
}
