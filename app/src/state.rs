//! The UI's state, as signals, and how engine events change it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::protocol::{CachedModel, CatalogModel, Event, GenerationParams, GenerationStats};

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
}

impl Conversation {
    pub fn new(id: String, now_ms: f64) -> Self {
        Self { id, title: "New chat".into(), model: None, system_prompt: String::new(), messages: Vec::new(), created_ms: now_ms, updated_ms: now_ms }
    }
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
    pub conversation: RwSignal<Conversation>,
    pub conversations: RwSignal<Vec<Conversation>>,
    pub generating: RwSignal<bool>,
    pub params: RwSignal<GenerationParams>,
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
            conversation: RwSignal::new(Conversation::new("c0".into(), 0.0)),
            conversations: RwSignal::new(Vec::new()),
            generating: RwSignal::new(false),
            params: RwSignal::new(GenerationParams { temperature: 0.3, top_k: 0, top_p: 1.0, min_p: 0.15, repetition_penalty: 1.05, max_tokens: 512, seed: 0 }),
            notice: RwSignal::new(None),
            info: RwSignal::new(None),
            context_full: RwSignal::new(false),
            update_ready: RwSignal::new(false),
            installable: RwSignal::new(false),
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
            Event::Loaded { id, wasm_memory_peak_bytes, .. } => {
                self.progress.set(None);
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
                    m.text.push_str(text);
                    m.token_ids.push(*id);
                }
            }),
            Event::Generated { tokens, text, stats } => {
                self.generating.set(false);
                self.context_full.set(stats.stop_reason == "context_full");
                self.conversation.update(|c| {
                    if let Some(m) = c.messages.last_mut().filter(|m| m.pending) {
                        m.pending = false;
                        m.text = text.clone();
                        m.token_ids = tokens.clone();
                        m.stats = Some(stats.clone());
                    }
                });
            }
            Event::GenerationFailed { message } => {
                self.generating.set(false);
                if message.contains("context holds") {
                    self.context_full.set(true);
                }
                self.conversation.update(|c| {
                    if c.messages.last().is_some_and(|m| m.pending && m.text.is_empty()) {
                        c.messages.pop();
                    } else if let Some(m) = c.messages.last_mut() {
                        m.pending = false;
                    }
                });
                self.notice.set(Some(message.clone()));
            }
            Event::Error { message } => self.notice.set(Some(message.clone())),
            Event::Gpu { .. } => {}
        }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Self::new()
    }
}

pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let (mut v, mut u) = (n as f64, 0);
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

pub fn format_duration(s: f64) -> String {
    if !s.is_finite() || s <= 0.0 {
        return "—".into();
    }
    let s = s.round() as u64;
    if s < 60 { format!("{s} s") } else if s < 3600 { format!("{} min {} s", s / 60, s % 60) } else { format!("{} h {} min", s / 3600, (s % 3600) / 60) }
}
