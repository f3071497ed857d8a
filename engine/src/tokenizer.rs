//! Tokenizers: a Hugging Face `tokenizer.json`, or one built from GGUF metadata
//! (byte-level BPE with merges, split as llama.cpp's pre-tokenizer type says;
//! SentencePiece BPE ranked by its pieces' scores),
//! both through the `tokenizers` crate.

use tokenizers::{
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::bpe::{Vocab, BPE},
    pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence, split::Split, PreTokenizerWrapper},
    AddedToken, SplitDelimiterBehavior, Tokenizer as HfTokenizer,
};

use crate::model::{ModelError, ModelSpec, TokenizerSpec};

/// llama.cpp's LLAMA3 / LFM2 split (`tokenizer.ggml.pre` = llama3, llama-bpe, lfm2).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// llama.cpp's QWEN2 split.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types: normal pieces, and those matched as whole tokens in text.
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

pub struct Tokenizer {
    inner: HfTokenizer,
    bos: Option<u32>,
    /// Prepend BOS to plain text ourselves (GGUF tokenizers have no post-processor).
    add_bos: bool,
    /// The [`SHOWN_SPECIALS`] this vocabulary has, with their ids (looked up
    /// once: `decode_shown` runs for every streamed token).
    shown: Vec<(u32, &'static str)>,
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

fn split(pattern: &str) -> Result<PreTokenizerWrapper, ModelError> {
    Ok(Split::new(tokenizers::pre_tokenizers::split::SplitPattern::Regex(pattern.to_string()), SplitDelimiterBehavior::Isolated, false)
        .map_err(tok_err)?
        .into())
}

/// A SentencePiece BPE vocabulary (GGUF `tokenizer.ggml.model` = "llama":
/// Gemma, Llama 2) as the `tokenizers` crate's BPE. llama.cpp merges the
/// adjacent pair whose joined piece scores highest, over the text with
/// spaces as `▁`, falling back to byte tokens; the same merges, ranked by
/// the joined piece's score, give a BPE the same tokens: every split of a
/// normal piece into two pieces of the vocabulary is a merge.
fn spm_from_gguf(tokens: &[String], types: &[i32], scores: &[f32], add_space_prefix: bool) -> Result<HfTokenizer, ModelError> {
    use std::collections::HashMap;
    use tokenizers::{
        decoders::{byte_fallback::ByteFallback, fuse::Fuse, sequence::Sequence as DecoderSequence, strip::Strip},
        normalizers::{prepend::Prepend, replace::Replace, utils::Sequence as NormalizerSequence, NormalizerWrapper},
        DecoderWrapper,
    };
    if scores.len() != tokens.len() {
        return Err(ModelError::Tokenizer(format!("{} scores for {} tokens", scores.len(), tokens.len())));
    }
    let ids: HashMap<&str, u32> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    let normal = |i: usize| types.get(i).copied().unwrap_or(TOKEN_TYPE_NORMAL) == TOKEN_TYPE_NORMAL;
    let mut ranked: Vec<usize> = (0..tokens.len()).filter(|&i| normal(i) && tokens[i].chars().nth(1).is_some()).collect();
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut merges = Vec::new();
    for i in ranked {
        let t = &tokens[i];
        for (k, _) in t.char_indices().skip(1) {
            let (left, right) = t.split_at(k);
            if ids.get(left).is_some_and(|&l| normal(l as usize)) && ids.get(right).is_some_and(|&r| normal(r as usize)) {
                merges.push((left.to_string(), right.to_string()));
            }
        }
    }
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let mut bpe = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).fuse_unk(true);
    if ids.contains_key("<unk>") {
        bpe = bpe.unk_token("<unk>".into());
    }
    let mut tokenizer = HfTokenizer::new(bpe.build().map_err(tok_err)?);
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if add_space_prefix {
        normalizers.push(Prepend::new("▁".into()).into());
    }
    normalizers.push(Replace::new(" ", "▁").map_err(tok_err)?.into());
    tokenizer.with_normalizer(Some(NormalizerSequence::new(normalizers))).map_err(tok_err)?;
    let mut decoders: Vec<DecoderWrapper> = vec![Replace::new("▁", " ").map_err(tok_err)?.into(), ByteFallback::new().into(), Fuse::new().into()];
    if add_space_prefix {
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    add_gguf_specials(&mut tokenizer, tokens, types)?;
    Ok(tokenizer)
}

/// GGUF's control tokens as special tokens, its user-defined ones as added
/// tokens: both matched whole in text.
fn add_gguf_specials(tokenizer: &mut HfTokenizer, tokens: &[String], types: &[i32]) -> Result<(), ModelError> {
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
        .map(|(tok, &t)| AddedToken::from(tok.clone(), t == TOKEN_TYPE_CONTROL))
        .collect();
    let (special, user): (Vec<AddedToken>, Vec<AddedToken>) = specials.into_iter().partition(|t| t.special);
    tokenizer.add_special_tokens(special).map_err(tok_err)?;
    tokenizer.add_tokens(user).map_err(tok_err)?;
    Ok(())
}

fn from_gguf(model: &str, pre: &str, tokens: &[String], types: &[i32], merges: &[String]) -> Result<HfTokenizer, ModelError> {
    if model != "gpt2" {
        return Err(ModelError::Tokenizer(format!("tokenizer model \"{model}\" is not supported (byte-level BPE, \"gpt2\", and SentencePiece, \"llama\", are)")));
    }
    let byte_level = ByteLevel::new(false, false, false);
    let (pre_tokenizer, ignore_merges): (PreTokenizerWrapper, bool) = match pre {
        "lfm2" | "llama3" | "llama-bpe" | "llama-v3" | "dbrx" | "smaug-bpe" => {
            (Sequence::new(vec![split(LLAMA3_SPLIT)?, byte_level.into()]).into(), true)
        }
        "qwen2" | "deepseek-r1-qwen" => (Sequence::new(vec![split(QWEN2_SPLIT)?, byte_level.into()]).into(), false),
        // SmolLM, StarCoder: single digits, then GPT-2's split.
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            (Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into(), false)
        }
        "default" | "gpt2" | "gpt-2" => (ByteLevel::new(false, true, true).into(), false),
        other => return Err(ModelError::Tokenizer(format!("pre-tokenizer \"{other}\" is not supported"))),
    };
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let merges: Vec<(String, String)> = merges
        .iter()
        .map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect::<Option<_>>()
        .ok_or_else(|| ModelError::Tokenizer("a merge is not two tokens separated by a space".into()))?;
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).ignore_merges(ignore_merges).build().map_err(tok_err)?;
    let mut tokenizer = HfTokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    add_gguf_specials(&mut tokenizer, tokens, types)?;
    Ok(tokenizer)
}

impl Tokenizer {
    pub fn from_spec(spec: &ModelSpec) -> Result<Self, ModelError> {
        let inner = match &spec.tokenizer {
            TokenizerSpec::HfJson(json) => HfTokenizer::from_bytes(json.as_bytes()).map_err(tok_err)?,
            TokenizerSpec::Gguf { model, tokens, token_types, scores, add_space_prefix, .. } if model == "llama" => {
                spm_from_gguf(tokens, token_types, scores, *add_space_prefix)?
            }
            TokenizerSpec::Gguf { model, pre, tokens, token_types, merges, .. } => from_gguf(model, pre, tokens, token_types, merges)?,
        };
        let shown = SHOWN_SPECIALS.iter().filter_map(|&t| inner.token_to_id(t).map(|id| (id, t))).collect();
        Ok(Self { inner, bos: spec.bos, add_bos: spec.add_bos, shown })
    }

    /// Tokenizes plain text as the model's tokenizer says: BOS where it adds one.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.inner.encode(text, true).map_err(tok_err)?.get_ids().to_vec();
        if self.add_bos {
            if let Some(bos) = self.bos {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }

    /// Tokenizes text that already holds its special tokens (a rendered chat
    /// template): special tokens are matched, nothing is added.
    pub fn encode_rendered(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self.inner.encode(text, false).map_err(tok_err)?.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        self.inner.decode(ids, skip_special).unwrap_or_default()
    }

    /// The text of `ids` as a chat shows it: special tokens left out, but for
    /// those in [`SHOWN_SPECIALS`] (a thinking model's `<think>` … `</think>`,
    /// special tokens in some vocabularies, which the UI folds away).
    pub fn decode_shown(&self, ids: &[u32]) -> String {
        let shown = &self.shown;
        if shown.is_empty() {
            return self.decode(ids, true);
        }
        let mut out = String::new();
        for part in ids.split_inclusive(|id| shown.iter().any(|(s, _)| s == id)) {
            let (last, body) = part.split_last().expect("split_inclusive gives non-empty parts");
            match shown.iter().find(|(s, _)| s == last) {
                Some((_, text)) => {
                    out.push_str(&self.decode(body, true));
                    out.push_str(text);
                }
                None => out.push_str(&self.decode(part, true)),
            }
        }
        out
    }

    /// Every token's bytes, by id, as llguidance reads them: special tokens
    /// behind its 0xFF marker (they match only as themselves), byte-level and
    /// byte-fallback vocabularies mapped back to raw bytes.
    pub fn token_bytes(&self) -> Result<Vec<Vec<u8>>, ModelError> {
        let json = self.inner.to_string(false).map_err(tok_err)?;
        let value: serde_json::Value = serde_json::from_str(&json).map_err(tok_err)?;
        // It asserts on a malformed byte token (`<0x..` that is not one byte):
        // a file's vocabulary must not bring the worker down.
        std::panic::catch_unwind(|| llguidance::token_bytes_from_tokenizer_json(&value))
            .map_err(|_| ModelError::Tokenizer("a byte token of the vocabulary is malformed".into()))?
            .map_err(tok_err)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// Special tokens a chat shows as text (see [`Tokenizer::decode_shown`]).
pub const SHOWN_SPECIALS: [&str; 2] = ["<think>", "</think>"];

/// Turns a stream of token ids into text pieces, holding back bytes of a
/// character split across tokens.
#[derive(Default)]
pub struct TextStream {
    ids: Vec<u32>,
    emitted: usize,
}

impl TextStream {
    /// Adds a token; returns the new text it completes (maybe empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.ids.push(id);
        let text = tokenizer.decode_shown(&self.ids);
        if text.ends_with('\u{FFFD}') || text.len() < self.emitted {
            return String::new();
        }
        let piece = text[self.emitted..].to_string();
        self.emitted = text.len();
        piece
    }
}
