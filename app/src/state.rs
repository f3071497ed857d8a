//! The UI's state, as signals, and how engine events change it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::protocol::{CachedModel, CatalogModel, ChatTurn, Event, GenerationParams, GenerationStats, ToolCall};

#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    /// No model chosen yet.
    None,
    Downloading,
    Loading,
    Ready,
    /// Chosen, but not downloaded and the network is away.
    Offline,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub text: String,
    #[serde(default)]
    pub token_ids: Vec<u32>,
    #[serde(default)]
    pub stats: Option<GenerationStats>,
    /// Still streaming.
    #[serde(default)]
    pub pending: bool,
    /// The other versions of this message and of everything after it (edits,
    /// regenerated replies), each a whole tail of the conversation; see branches.rs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Vec<Message>>,
    /// Where this version stands among all of them (0-based).
    #[serde(default)]
    pub version: usize,
    /// Tokens of the reply's thinking (`<think>…</think>`; see thinking.rs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub thinking_tokens: usize,
    /// The tool calls in an assistant's reply (shown as cards to approve).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Message {
    pub fn user(text: String) -> Self {
        Self { role: "user".into(), text, token_ids: Vec::new(), stats: None, pending: false, alternatives: Vec::new(), version: 0, thinking_tokens: 0, tool_calls: Vec::new() }
    }

    /// A tool's result (or the user's refusal), fed back to the model.
    pub fn tool(text: String) -> Self {
        Self { role: "tool".into(), ..Self::user(text) }
    }

    /// An assistant message about to stream in.
    pub fn pending_reply() -> Self {
        Self { role: "assistant".into(), text: String::new(), token_ids: Vec::new(), stats: None, pending: true, alternatives: Vec::new(), version: 0, thinking_tokens: 0, tool_calls: Vec::new() }
    }

    /// A streamed token and its text; one inside the thinking counts as thinking.
    pub fn push_token(&mut self, id: u32, piece: &str) {
        let thinking = crate::thinking::is_open(&self.text);
        self.text.push_str(piece);
        self.token_ids.push(id);
        if thinking && crate::thinking::is_open(&self.text) {
            self.thinking_tokens += 1;
        }
    }

    /// How many versions this message has (1 when it was never edited or regenerated).
    pub fn versions(&self) -> usize {
        self.alternatives.len() + 1
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub model: Option<String>,
    pub system_prompt: String,
    pub messages: Vec<Message>,
    pub created_ms: f64,
    pub updated_ms: f64,
    /// Listed above the others.
    #[serde(default)]
    pub pinned: bool,
    /// The preset (presets.rs) chosen for this conversation, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

impl Conversation {
    pub fn new(id: String, now_ms: f64) -> Self {
        Self { id, title: "New chat".into(), model: None, system_prompt: String::new(), messages: Vec::new(), created_ms: now_ms, updated_ms: now_ms, pinned: false, preset: None }
    }

    /// What the model is given for a reply after `messages[..upto]`: the
    /// system prompt, then each message, replies without their thinking.
    pub fn turns(&self, upto: usize) -> Vec<ChatTurn> {
        let mut turns = Vec::new();
        if !self.system_prompt.trim().is_empty() {
            turns.push(ChatTurn::new("system", &self.system_prompt));
        }
        turns.extend(self.messages[..upto.min(self.messages.len())].iter().map(|m| ChatTurn {
            role: m.role.clone(),
            content: if m.role == "assistant" { crate::thinking::answer(&m.text).to_string() } else { m.text.clone() },
            tool_calls: m.tool_calls.clone(),
        }));
        turns
    }
}

impl Conversation {
    /// How many of the tool calls of the reply at `index` have their results
    /// (the tool messages right after it), and whether that reply is the
    /// conversation's last (only its calls can still be answered).
    pub fn tool_results(&self, index: usize) -> (usize, bool) {
        let answered = self.messages.get(index + 1..).map_or(0, |rest| rest.iter().take_while(|m| m.role == "tool").count());
        (answered, index + 1 + answered == self.messages.len())
    }
}

/// The conversations as the sidebar lists them: pinned first, each group in the given (recency) order.
pub fn listed(conversations: &[Conversation]) -> Vec<Conversation> {
    let mut out = conversations.to_vec();
    out.sort_by_key(|c| !c.pinned);
    out
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Progress {
    /// The model being downloaded (downloads can be cancelled).
    pub download: Option<String>,
    pub label: String,
    pub done: u64,
    pub total: u64,
    pub bytes_per_s: f64,
    pub eta_s: f64,
    pub note: Option<String>,
}

/// The site's storage, from `navigator.storage` (see storage.rs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StorageInfo {
    pub usage: u64,
    pub quota: u64,
    /// Whether the browser keeps the data under storage pressure.
    pub persisted: bool,
}

impl StorageInfo {
    pub fn free(&self) -> u64 {
        self.quota.saturating_sub(self.usage)
    }
}

/// Every piece of UI state, as copyable signal handles.
#[derive(Clone, Copy)]
pub struct Ui {
    pub catalog: RwSignal<Vec<CatalogModel>>,
    pub cached: RwSignal<Vec<CachedModel>>,
    pub offline: RwSignal<bool>,
    pub catalog_error: RwSignal<Option<String>>,
    pub selected: RwSignal<Option<String>>,
    pub loaded: RwSignal<Option<String>>,
    pub status: RwSignal<ModelStatus>,
    pub progress: RwSignal<Option<Progress>>,
    pub storage: RwSignal<Option<StorageInfo>>,
    pub wasm_peak: RwSignal<u64>,
    /// The last load's phases (benchmarks read them from the status element).
    pub load_times: RwSignal<crate::protocol::LoadTimes>,
    /// The GPU profile a `profile` link asked for, as JSON (benchmarks).
    pub profile: RwSignal<Option<String>>,
    pub conversation: RwSignal<Conversation>,
    pub conversations: RwSignal<Vec<Conversation>>,
    pub generating: RwSignal<bool>,
    pub params: RwSignal<GenerationParams>,
    /// Saved system prompts with sampling (presets.rs).
    pub presets: RwSignal<Vec<crate::presets::Preset>>,
    /// A problem to show (dismissable).
    pub notice: RwSignal<Option<String>>,
    /// News that is not a problem (dismissable).
    pub info: RwSignal<Option<String>>,
    /// The context filled up: offer to start fresh or drop the oldest turns.
    pub context_full: RwSignal<bool>,
    /// A new release of the app is installed and waits for a reload.
    pub update_ready: RwSignal<bool>,
    /// The browser offers to install the app.
    pub installable: RwSignal<bool>,
    /// Tools the model may call (built-in and the user's own), as function
    /// definitions; empty: none, and the prompt stays as it is.
    pub tools: RwSignal<Vec<serde_json::Value>>,
    /// The first reply to a message must call one of them (later replies,
    /// after the results, may answer).
    pub tools_required: RwSignal<bool>,
    /// Text files attached to the chat, which the built-in file tool reads.
    pub attachments: RwSignal<Vec<crate::tools::Attachment>>,
}

impl Ui {
    pub fn new() -> Self {
        Self {
            catalog: RwSignal::new(Vec::new()),
            cached: RwSignal::new(Vec::new()),
            offline: RwSignal::new(false),
            catalog_error: RwSignal::new(None),
            selected: RwSignal::new(None),
            loaded: RwSignal::new(None),
            status: RwSignal::new(ModelStatus::None),
            progress: RwSignal::new(None),
            storage: RwSignal::new(None),
            wasm_peak: RwSignal::new(0),
            load_times: RwSignal::new(Default::default()),
            profile: RwSignal::new(None),
            conversation: RwSignal::new(Conversation::new("c0".into(), 0.0)),
            conversations: RwSignal::new(Vec::new()),
            generating: RwSignal::new(false),
            params: RwSignal::new(GenerationParams { temperature: 0.3, top_k: 0, top_p: 1.0, min_p: 0.15, repetition_penalty: 1.05, max_tokens: 512, seed: 0 }),
            presets: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            info: RwSignal::new(None),
            context_full: RwSignal::new(false),
            update_ready: RwSignal::new(false),
            installable: RwSignal::new(false),
            tools: RwSignal::new(Vec::new()),
            tools_required: RwSignal::new(false),
            attachments: RwSignal::new(Vec::new()),
        }
    }

    pub fn cached_model(&self, id: &str) -> Option<CachedModel> {
        self.cached.with_untracked(|c| c.iter().find(|m| m.id == id).cloned())
    }

    /// Applies an engine event to the state (what to do next is the caller's).
    pub fn apply(&self, event: &Event) {
        match event {
            Event::Catalog { models, cached, offline, error } => {
                self.catalog.set(models.clone());
                self.cached.set(cached.clone());
                self.offline.set(*offline);
                self.catalog_error.set(error.clone());
            }
            Event::Cached { models } => self.cached.set(models.clone()),
            Event::DownloadProgress { id, done_bytes, total_bytes, bytes_per_s, eta_s, note } => {
                if self.selected.get_untracked().as_deref() == Some(id.as_str()) {
                    self.status.set(ModelStatus::Downloading);
                }
                self.progress.set(Some(Progress {
                    download: Some(id.clone()),
                    label: format!("Downloading {id}"),
                    done: *done_bytes,
                    total: *total_bytes,
                    bytes_per_s: *bytes_per_s,
                    eta_s: *eta_s,
                    note: note.clone(),
                }));
            }
            Event::DownloadFailed { id, message } => {
                self.progress.set(None);
                if self.selected.get_untracked().as_deref() == Some(id.as_str()) {
                    self.status.set(ModelStatus::Failed(message.clone()));
                }
                self.notice.set(Some(format!("Download of {id} stopped: {message}")));
            }
            Event::Downloaded { .. } => self.progress.set(None),
            Event::LoadProgress { id, done_bytes, total_bytes, wasm_memory_bytes } => {
                self.status.set(ModelStatus::Loading);
                self.wasm_peak.update(|p| *p = (*p).max(*wasm_memory_bytes));
                self.progress.set(Some(Progress {
                    label: format!("Loading {id} onto the GPU"),
                    done: *done_bytes,
                    total: *total_bytes,
                    ..Default::default()
                }));
            }
            Event::Loaded { id, wasm_memory_peak_bytes, times, .. } => {
                self.progress.set(None);
                self.load_times.set(*times);
                self.wasm_peak.update(|p| *p = (*p).max(*wasm_memory_peak_bytes));
                self.loaded.set(Some(id.clone()));
                self.status.set(ModelStatus::Ready);
            }
            Event::LoadFailed { message, .. } => {
                self.progress.set(None);
                self.loaded.set(None);
                self.status.set(ModelStatus::Failed(message.clone()));
            }
            Event::Token { id, text } => self.conversation.update(|c| {
                if let Some(m) = c.messages.last_mut().filter(|m| m.pending) {
                    m.push_token(*id, text);
                }
            }),
            Event::Generated { tokens, text, stats, calls, call_error } => {
                self.generating.set(false);
                self.context_full.set(stats.stop_reason == "context_full");
                self.conversation.update(|c| {
                    if let Some(m) = c.messages.last_mut().filter(|m| m.pending) {
                        m.pending = false;
                        m.text = text.clone();
                        m.token_ids = tokens.clone();
                        m.stats = Some(stats.clone());
                        m.tool_calls = calls.clone();
                    }
                });
                if let Some(e) = call_error {
                    self.notice.set(Some(format!("The model wrote a tool call Eddy cannot read: {e}")));
                }
            }
            Event::GenerationFailed { message } => {
                self.generating.set(false);
                if message.contains("context holds") {
                    self.context_full.set(true);
                }
                self.conversation.update(|c| {
                    if c.messages.last().is_some_and(|m| m.pending && m.text.is_empty()) {
                        // A regenerated reply that never started: back to the version before it.
                        let at = c.messages.len() - 1;
                        if !crate::branches::discard(&mut c.messages, at) {
                            c.messages.pop();
                        }
                    } else if let Some(m) = c.messages.last_mut() {
                        m.pending = false;
                    }
                });
                self.notice.set(Some(message.clone()));
            }
            Event::Error { message } => self.notice.set(Some(message.clone())),
            Event::Profiled { profile } => self.profile.set(serde_json::to_string(profile).ok()),
            Event::Gpu { .. } => {}
        }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

/// A conversation that matches a search, with the text around the first match.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    pub snippet: String,
}

fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// Where `needle` (already folded) starts in `hay`, ignoring case, in chars.
fn find_folded(hay: &[char], needle: &[char]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()].iter().zip(needle).all(|(&h, &n)| fold(h) == n))
}

/// Conversations whose title or messages contain `query` (any case), in the
/// order given; the snippet is empty for a title match, else about 40
/// characters either side of the first match in a message. On the device, over what is loaded.
pub fn search(conversations: &[Conversation], query: &str) -> Vec<SearchHit> {
    let needle: Vec<char> = query.trim().chars().map(fold).collect();
    if needle.is_empty() {
        return Vec::new();
    }
    conversations
        .iter()
        .filter_map(|c| {
            let title: Vec<char> = c.title.chars().collect();
            if find_folded(&title, &needle).is_some() {
                return Some(SearchHit { id: c.id.clone(), title: c.title.clone(), snippet: String::new() });
            }
            c.messages.iter().find_map(|m| {
                let text: Vec<char> = m.text.chars().collect();
                let at = find_folded(&text, &needle)?;
                let (start, end) = (at.saturating_sub(40), (at + needle.len() + 40).min(text.len()));
                let mut snippet: String = text[start..end].iter().collect();
                if start > 0 {
                    snippet.insert(0, '…');
                }
                if end < text.len() {
                    snippet.push('…');
                }
                Some(SearchHit { id: c.id.clone(), title: c.title.clone(), snippet: snippet.split_whitespace().collect::<Vec<_>>().join(" ") })
            })
        })
        .collect()
}

/// Sizes as people read them: decimal units (a 1.4 MB model, a 10.7 GB quota).
pub fn format_bytes(n: u64) -> String {
    scaled(n, 1000.0, ["B", "KB", "MB", "GB", "TB"])
}

/// Sizes that are powers of two (GPU limits): binary units (128.0 MiB).
pub fn format_bytes_binary(n: u64) -> String {
    scaled(n, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB"])
}

fn scaled(n: u64, base: f64, units: [&str; 5]) -> String {
    let (mut v, mut u) = (n as f64, 0);
    while v >= base && u + 1 < units.len() {
        v /= base;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[u]) }
}

pub fn format_duration(s: f64) -> String {
    if !s.is_finite() || s <= 0.0 {
        return "—".into();
    }
    let s = s.round() as u64;
    if s < 60 { format!("{s} s") } else if s < 3600 { format!("{} min {} s", s / 60, s % 60) } else { format!("{} h {} min", s / 3600, (s % 3600) / 60) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(id: &str, title: &str, texts: &[&str]) -> Conversation {
        let mut c = Conversation::new(id.into(), 0.0);
        c.title = title.into();
        c.messages = texts.iter().map(|t| Message::user(t.to_string())).collect();
        c
    }

    #[test]
    fn search_finds_titles_and_text_in_any_case() {
        let long = format!("{} the Capital of FRANCE is Paris {}", "a".repeat(60), "b".repeat(60));
        let all = [conv("c1", "Trip to Paris", &["hello"]), conv("c2", "Geography", &["what?", &long]), conv("c3", "Cooking", &["pasta"]), conv("c4", "Ünïcode", &["ÄÖÜ straße"])];
        let ids = |q: &str| search(&all, q).into_iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids("paris"), ["c1", "c2"]);
        assert_eq!(ids("capital of france"), ["c2"]);
        assert_eq!(ids("  PASTA "), ["c3"]);
        assert_eq!(ids("äöü"), ["c4"]);
        assert_eq!(ids("ünï"), ["c4"]);
        assert!(ids("nothing like this").is_empty());
        assert!(ids("   ").is_empty());
        let hit = &search(&all, "capital")[0];
        assert!(hit.snippet.starts_with('…') && hit.snippet.ends_with('…'), "{}", hit.snippet);
        assert!(hit.snippet.contains("the Capital of FRANCE is Paris"), "{}", hit.snippet);
        assert!(hit.snippet.chars().count() < 100);
        assert_eq!(search(&all, "trip")[0].snippet, "");
    }

    #[test]
    fn the_next_turn_gives_replies_without_their_thinking() {
        let mut c = conv("c", "t", &["What is the capital of France?"]);
        c.system_prompt = "Be brief.".into();
        c.messages.push(Message { text: "<think>It is Paris.</think>Paris.".into(), pending: false, ..Message::pending_reply() });
        c.messages.push(Message::user("And of Spain?".into()));
        let turns = c.turns(3);
        let contents: Vec<(&str, &str)> = turns.iter().map(|t| (t.role.as_str(), t.content.as_str())).collect();
        assert_eq!(contents, [("system", "Be brief."), ("user", "What is the capital of France?"), ("assistant", "Paris."), ("user", "And of Spain?")]);
        assert_eq!(c.turns(1).len(), 2);
        c.system_prompt = "  ".into();
        assert_eq!(c.turns(9).len(), 3);
    }

    #[test]
    fn thinking_tokens_are_counted_as_they_stream() {
        let mut m = Message::pending_reply();
        for (i, piece) in ["<think>", "Hmm", ",", " Paris", "</think>", "Paris", "."].iter().enumerate() {
            m.push_token(i as u32, piece);
        }
        assert_eq!(m.thinking_tokens, 3);
        assert_eq!(m.token_ids.len(), 7);
        assert_eq!(crate::thinking::split(&m.text).answer, "Paris.");
    }

    #[test]
    fn pinned_conversations_come_first_in_recency_order() {
        let mut all = vec![conv("a", "A", &[]), conv("b", "B", &[]), conv("c", "C", &[]), conv("d", "D", &[])];
        all[1].pinned = true;
        all[3].pinned = true;
        let ids: Vec<String> = listed(&all).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["b", "d", "a", "c"]);
        // Old exports without the field read as unpinned.
        let old: Conversation = serde_json::from_str(r#"{"id":"x","title":"t","model":null,"system_prompt":"","messages":[],"created_ms":1,"updated_ms":2}"#).unwrap();
        assert!(!old.pinned);
    }
}
