//! Where a chat turn starts from. The session keeps snapshots (engine
//! `Session::snapshot`) at turn boundaries, each with the text its tokens
//! decode to; a new request's rendered conversation starts from the longest
//! snapshot whose text begins it, so regenerating a reply, editing a message
//! or switching to another branch prefills only what changed. Snapshots of a
//! system prompt keep their KV rows and outlive the conversation (a prefix
//! cache: a new chat with the same system prompt starts there).

use engine::runtime::session::{Session, Snapshot};

/// A snapshot and the text its tokens decode to (special tokens included).
pub struct Saved {
    pub text: String,
    pub snap: Snapshot,
}

/// Turn snapshots kept per session: the newest, enough for a long branching chat.
const MAX_TURNS: usize = 32;

pub struct Checkpoints {
    /// Snapshots without KV rows, in the order taken: valid while the session
    /// still holds their tokens.
    turns: Vec<Saved>,
    /// System-prompt snapshots with their KV rows, least recently used first.
    prefixes: Vec<Saved>,
    /// GPU bytes the prefix snapshots may hold.
    prefix_budget: u64,
}

/// What a request can start from.
pub enum Start {
    /// A snapshot of the turns (index into `turns`).
    Turn(usize),
    /// A system-prompt snapshot (index into `prefixes`).
    Prefix(usize),
}

impl Checkpoints {
    /// `prefix_budget`: GPU bytes for system-prompt snapshots.
    pub fn new(prefix_budget: u64) -> Self {
        Self { turns: Vec::new(), prefixes: Vec::new(), prefix_budget }
    }

    /// The longest snapshot `session` can restore whose text begins `text`
    /// and is longer than `at_least` bytes.
    pub fn best(&self, session: &Session, text: &str, at_least: usize) -> Option<(Start, usize)> {
        let fits = |s: &Saved| s.text.len() > at_least && text.starts_with(&s.text) && session.can_restore(&s.snap).is_ok();
        let prefixes = self.prefixes.iter().enumerate().map(|(j, s)| (Start::Prefix(j), s));
        let turns = self.turns.iter().enumerate().map(|(i, s)| (Start::Turn(i), s));
        // Of equal lengths the last wins: a turn (which needs no KV copy).
        prefixes.chain(turns).filter(|(_, s)| fits(s)).max_by_key(|(_, s)| s.text.len()).map(|(start, s)| (start, s.text.len()))
    }

    /// Restores `start` into `session`; returns the text it decodes to.
    pub fn restore(&mut self, session: &mut Session, start: Start) -> Option<String> {
        let saved = match start {
            Start::Turn(i) => &self.turns[i],
            Start::Prefix(j) => {
                // Most recently used last.
                let used = self.prefixes.remove(j);
                self.prefixes.push(used);
                self.prefixes.last().expect("just pushed")
            }
        };
        session.restore(&saved.snap).ok()?;
        Some(saved.text.clone())
    }

    /// Keeps the session's state now as a turn boundary.
    pub fn save_turn(&mut self, session: &Session, text: String) {
        if self.turns.iter().any(|s| s.text == text && session.can_restore(&s.snap).is_ok()) {
            return;
        }
        self.turns.push(Saved { text, snap: session.snapshot(false) });
        self.prune(session);
    }

    /// Keeps the session's state now, KV rows included, as a system prompt's.
    pub fn save_prefix(&mut self, session: &Session, text: String) {
        self.prefixes.retain(|s| s.text != text);
        let snap = session.snapshot(true);
        if snap.gpu_bytes() > self.prefix_budget {
            return;
        }
        self.prefixes.push(Saved { text, snap });
        while self.prefixes.iter().map(|s| s.snap.gpu_bytes()).sum::<u64>() > self.prefix_budget {
            self.prefixes.remove(0);
        }
    }

    /// Drops turn snapshots the session can no longer restore (it went back
    /// before them and on another way), and the oldest beyond MAX_TURNS.
    pub fn prune(&mut self, session: &Session) {
        self.turns.retain(|s| session.can_restore(&s.snap).is_ok());
        let extra = self.turns.len().saturating_sub(MAX_TURNS);
        self.turns.drain(..extra);
    }

    /// The session started over: turn snapshots are stale (prefixes stay).
    pub fn forget_turns(&mut self) {
        self.turns.clear();
    }
}
