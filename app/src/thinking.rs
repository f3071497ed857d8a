//! A thinking model's reply (LFM2.5-Thinking, Qwen3): `<think>…</think>`,
//! then the answer. The chat folds the thinking into a section of its own,
//! and the next turn's history carries only the answer, as these models'
//! templates expect.

/// A reply split into its thinking and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The thinking, if the reply starts with `<think>`.
    pub thinking: Option<&'a str>,
    /// Whether `</think>` came (the answer follows).
    pub done: bool,
    pub answer: &'a str,
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

pub fn split(text: &str) -> Parts<'_> {
    let Some(rest) = text.trim_start().strip_prefix(OPEN) else {
        return Parts { thinking: None, done: true, answer: text };
    };
    match rest.find(CLOSE) {
        Some(end) => Parts { thinking: Some(rest[..end].trim()), done: true, answer: rest[end + CLOSE.len()..].trim_start() },
        None => Parts { thinking: Some(rest.trim_start()), done: false, answer: "" },
    }
}

/// What of a reply goes back to the model in the next turn.
pub fn answer(text: &str) -> &str {
    split(text).answer
}

/// Whether a streaming reply is inside its thinking now.
pub fn is_open(text: &str) -> bool {
    let p = split(text);
    p.thinking.is_some() && !p.done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_is_split_from_the_answer_while_streaming_and_after() {
        assert_eq!(split("Plain reply."), Parts { thinking: None, done: true, answer: "Plain reply." });
        assert_eq!(split("<think>Hmm, Paris"), Parts { thinking: Some("Hmm, Paris"), done: false, answer: "" });
        assert!(is_open("\n<think>Hmm"));
        assert_eq!(split("<think>\nHmm, Paris.\n</think>\n\nIt is Paris."), Parts { thinking: Some("Hmm, Paris."), done: true, answer: "It is Paris." });
        assert!(!is_open("<think>a</think>b"));
        assert_eq!(answer("<think>a</think>b"), "b");
        // Only a reply that starts with thinking has any.
        assert_eq!(split("He said <think> once").thinking, None);
        assert_eq!(split("<think></think>").answer, "");
    }
}
