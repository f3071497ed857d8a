//! Versions of a conversation. Editing a message or regenerating a reply does
//! not throw the old one away: the old tail of the conversation (that message
//! and everything after it) is kept on the new message's `alternatives`, so
//! each position that was ever changed holds all its versions, each with its
//! own continuation (which may branch again). The conversation's `messages`
//! is the path being shown; switching a version swaps tails.

use crate::state::Message;

/// Puts `tail` in place of `messages[at..]`, keeping the replaced tail as a
/// version; the new tail is the newest version.
pub fn replace_tail(messages: &mut Vec<Message>, at: usize, mut tail: Vec<Message>) {
    assert!(!tail.is_empty(), "a version has at least its first message");
    let at = at.min(messages.len());
    let mut old = messages.split_off(at);
    if let Some(first) = old.first_mut() {
        let mut versions = std::mem::take(&mut first.alternatives);
        let place = first.version.min(versions.len());
        first.version = 0;
        versions.insert(place, old);
        tail[0].version = versions.len();
        tail[0].alternatives = versions;
    }
    messages.extend(tail);
}

/// Shows version `to` (0-based) of the message at `at` and its continuation.
/// Returns false (and changes nothing) when there is no such version.
pub fn switch(messages: &mut Vec<Message>, at: usize, to: usize) -> bool {
    let Some(first) = messages.get(at) else { return false };
    if to >= first.versions() || to == first.version {
        return false;
    }
    let mut current = messages.split_off(at);
    let mut versions = std::mem::take(&mut current[0].alternatives);
    let place = current[0].version.min(versions.len());
    current[0].version = 0;
    versions.insert(place, current);
    let mut chosen = versions.remove(to);
    chosen[0].alternatives = versions;
    chosen[0].version = to;
    messages.extend(chosen);
    true
}

/// Drops the version shown at `at` (a regenerated reply that failed before
/// its first token) and shows the one before it. False, changing nothing,
/// when it is the only version.
pub fn discard(messages: &mut Vec<Message>, at: usize) -> bool {
    if messages.get(at).is_none_or(|m| m.alternatives.is_empty()) {
        return false;
    }
    let mut current = messages.split_off(at);
    let mut versions = std::mem::take(&mut current[0].alternatives);
    let to = current[0].version.min(versions.len()).saturating_sub(1);
    let mut chosen = versions.remove(to);
    chosen[0].alternatives = versions;
    chosen[0].version = to;
    messages.extend(chosen);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(m: &[Message]) -> Vec<String> {
        m.iter().map(|m| m.text.clone()).collect()
    }

    fn reply(t: &str) -> Message {
        Message { text: t.into(), pending: false, ..Message::pending_reply() }
    }

    #[test]
    fn edits_and_regenerations_keep_every_version_with_its_continuation() {
        let mut m = vec![Message::user("q1".into()), reply("a1"), Message::user("q2".into()), reply("a2")];
        // Regenerate the last reply twice.
        replace_tail(&mut m, 3, vec![reply("a2'")]);
        replace_tail(&mut m, 3, vec![reply("a2''")]);
        assert_eq!(texts(&m), ["q1", "a1", "q2", "a2''"]);
        assert_eq!((m[3].version, m[3].versions()), (2, 3));
        // Edit the first question: the whole conversation after it is a version.
        replace_tail(&mut m, 0, vec![Message::user("Q1".into()), reply("A1")]);
        assert_eq!(texts(&m), ["Q1", "A1"]);
        assert_eq!((m[0].version, m[0].versions()), (1, 2));
        // Back to the first version: its tail comes back with its own versions.
        assert!(switch(&mut m, 0, 0));
        assert_eq!(texts(&m), ["q1", "a1", "q2", "a2''"]);
        assert_eq!((m[0].version, m[0].versions()), (0, 2));
        assert_eq!((m[3].version, m[3].versions()), (2, 3));
        assert!(switch(&mut m, 3, 0));
        assert_eq!(texts(&m), ["q1", "a1", "q2", "a2"]);
        assert!(switch(&mut m, 3, 1));
        assert_eq!(m[3].text, "a2'");
        // Regenerating while an older version is shown adds a new last version.
        replace_tail(&mut m, 3, vec![reply("a2'''")]);
        assert_eq!((m[3].version, m[3].versions()), (3, 4));
        let all: Vec<String> = {
            let mut v = Vec::new();
            for i in 0..4 {
                switch(&mut m, 3, i);
                v.push(m[3].text.clone());
            }
            v
        };
        assert_eq!(all, ["a2", "a2'", "a2''", "a2'''"]);
        // The other way round again.
        assert!(switch(&mut m, 0, 1));
        assert_eq!(texts(&m), ["Q1", "A1"]);
        // No such version, or the one shown: nothing changes.
        assert!(!switch(&mut m, 0, 1));
        assert!(!switch(&mut m, 0, 5));
        assert!(!switch(&mut m, 9, 0));
        assert_eq!(texts(&m), ["Q1", "A1"]);
    }

    #[test]
    fn a_failed_regeneration_is_dropped_and_the_version_before_it_shown() {
        let mut m = vec![Message::user("q".into()), reply("a")];
        replace_tail(&mut m, 1, vec![reply("b")]);
        replace_tail(&mut m, 1, vec![Message::pending_reply()]);
        assert!(discard(&mut m, 1));
        assert_eq!(texts(&m), ["q", "b"]);
        assert_eq!((m[1].version, m[1].versions()), (1, 2));
        assert!(switch(&mut m, 1, 0));
        assert_eq!(m[1].text, "a");
        // The only version is not dropped.
        let mut single = vec![Message::user("q".into())];
        assert!(!discard(&mut single, 0));
        assert_eq!(single.len(), 1);
    }

    #[test]
    fn versions_survive_a_round_trip_through_json_and_old_exports_have_none() {
        let mut m = vec![Message::user("q".into()), reply("a")];
        replace_tail(&mut m, 1, vec![reply("b")]);
        let back: Vec<Message> = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let old: Message = serde_json::from_str(r#"{"role":"user","text":"hi"}"#).unwrap();
        assert_eq!((old.version, old.versions()), (0, 1));
    }
}
