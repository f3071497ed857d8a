//! The one message protocol between the UI and the engine host, which runs in a
//! Web Worker (or in the page, for tests): requests go in, events come out.
//! Messages travel as JSON text.

use serde::{Deserialize, Serialize};

pub use engine::tools::ToolCall;

use crate::manifest::RecommendedSampling;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
    /// An assistant turn's tool calls (replayed in the model's own format
    /// after `content`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl ChatTurn {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.to_string(), content: content.to_string(), tool_calls: Vec::new() }
    }
}

/// Whether and which tool the reply must call (OpenAI's `tool_choice`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model answers or calls, as it likes.
    #[default]
    Auto,
    /// No tools this time (they are not shown to the model).
    None,
    /// The reply is one call to one of the tools (constrained decoding).
    Required,
    /// The reply is one call to this tool.
    Function { name: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    pub repetition_penalty: f32,
    pub max_tokens: u32,
    pub seed: u32,
}

impl GenerationParams {
    pub fn recommended(s: &RecommendedSampling) -> Self {
        Self {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repetition_penalty: s.repetition_penalty,
            max_tokens: 512,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Open the GPU and report it.
    Probe,
    /// Fetch the server's catalog and report it with what is cached.
    Catalog { base_url: String },
    /// Download (or resume) a model into the browser's storage.
    Download { base_url: String, id: String },
    CancelDownload { id: String },
    Delete { id: String },
    /// Load a downloaded model onto the GPU.
    Load {
        id: String,
        #[serde(default)]
        options: LoadOptions,
    },
    /// Continue the conversation: `messages` is the whole conversation, whose
    /// prefix the engine may already hold. With `format`, the reply is held to it.
    Chat {
        conversation: String,
        messages: Vec<ChatTurn>,
        params: GenerationParams,
        #[serde(default)]
        format: Option<ReplyFormat>,
        /// Tools the model may call: OpenAI-style function definitions with
        /// JSON Schema parameters.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tools: Vec<serde_json::Value>,
        #[serde(default)]
        tool_choice: ToolChoice,
    },
    /// Time the loaded model's dispatches on the GPU (benchmarks): a prefill
    /// of `prompt_len` arbitrary tokens and one decode step after it, each
    /// dispatch alone and repeated `reps` times; the conversation is forgotten.
    Profile { prompt_len: u32, reps: u32 },
    /// Generate from exact token ids (tests, tools).
    Complete {
        prompt_ids: Vec<u32>,
        params: GenerationParams,
        #[serde(default)]
        format: Option<ReplyFormat>,
    },
    Stop,
    /// Forget the conversation state held on the GPU.
    Reset,
    /// Destroy the GPU device, as a driver reset or a crash would (tests; the
    /// page sends it only with the `test_hooks` link parameter).
    DestroyGpu,
}

/// What a reply must be (constrained decoding: engine::constrain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON valid under this JSON Schema.
    JsonSchema { schema: serde_json::Value },
    /// Text in the language of this Lark grammar (llguidance's dialect).
    Grammar { lark: String },
}

impl ReplyFormat {
    pub fn grammar(&self) -> engine::constrain::Grammar {
        use engine::constrain::Grammar;
        match self {
            ReplyFormat::JsonObject => Grammar::JsonObject,
            ReplyFormat::JsonSchema { schema } => Grammar::JsonSchema(schema.clone()),
            ReplyFormat::Grammar { lark } => Grammar::Lark(lark.clone()),
        }
    }
}

/// Where a load's seconds went, on the worker's clock (benchmarks): the
/// phases run one after another on the worker's thread, except the reads,
/// of which several are in flight while a chunk is fed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadTimes {
    /// Reading the headers and making the session (its pipelines).
    pub begin_s: f64,
    /// Waiting for IndexedDB to hand over the next chunk.
    pub read_wait_s: f64,
    /// Copying chunks into the wasm heap.
    pub copy_s: f64,
    /// The engine's loader: arranging the bytes and writing them to the GPU.
    pub feed_s: f64,
    /// The loader's last writes and the model's tables.
    pub finish_s: f64,
    /// Running the model once so that every pipeline is compiled.
    pub warm_up_s: f64,
}

/// How the engine runs a model it loads, where a link overrides the defaults
/// (benchmarks, or a smaller context for less GPU memory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// The mat-vec workgroup size and lanes per output.
    #[serde(default)]
    pub matvec: Option<(u32, u32)>,
    /// Hold fewer tokens than the model allows.
    #[serde(default)]
    pub context: Option<u32>,
    /// Decode steps in flight ahead of the token being read.
    #[serde(default)]
    pub decode_ahead: Option<u32>,
}

/// Where a cached model stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    pub id: String,
    pub name: String,
    pub total_bytes: u64,
    pub stored_bytes: u64,
    pub chunks: usize,
    pub complete_chunks: usize,
    pub manifest_sha256: String,
}

impl CachedModel {
    pub fn complete(&self) -> bool {
        self.complete_chunks == self.chunks && self.chunks > 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogModel {
    pub entry: crate::manifest::CatalogEntry,
    /// Whether it fits this device, and why not.
    pub fits: Result<(), String>,
    pub sampling: Option<RecommendedSampling>,
    pub context_length: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Tokens of the prompt the engine reused from the previous turn.
    pub reused_tokens: usize,
    /// Tokens it actually ran through the model before generating.
    pub prefill_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub context_used: usize,
    pub context_size: usize,
    pub stop_reason: String,
    /// Estimated prefill time the reuse saved, in seconds.
    pub prefill_seconds_saved: f64,
    /// Per decoded token: CPU time recording and submitting the step, and time
    /// waiting for its token (what bounds decode: the CPU or the GPU).
    #[serde(default)]
    pub decode_record_ms_per_token: f64,
    #[serde(default)]
    pub decode_wait_ms_per_token: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Gpu { adapter: Option<engine::gpu::AdapterReport>, error: Option<String> },
    Catalog { models: Vec<CatalogModel>, cached: Vec<CachedModel>, offline: bool, error: Option<String> },
    Cached { models: Vec<CachedModel> },
    DownloadProgress { id: String, done_bytes: u64, total_bytes: u64, bytes_per_s: f64, eta_s: f64, note: Option<String> },
    Downloaded { id: String },
    DownloadFailed { id: String, message: String },
    LoadProgress { id: String, done_bytes: u64, total_bytes: u64, wasm_memory_bytes: u64 },
    Loaded {
        id: String,
        name: String,
        context_length: usize,
        load_seconds: f64,
        wasm_memory_peak_bytes: u64,
        #[serde(default)]
        times: LoadTimes,
    },
    LoadFailed { id: String, message: String },
    /// A generated token and the text it completes.
    Token { id: u32, text: String },
    /// The reply: its text (without the calls) and the tool calls in it.
    Generated {
        tokens: Vec<u32>,
        text: String,
        stats: GenerationStats,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<ToolCall>,
        /// A call the model wrote but that does not parse (the text keeps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_error: Option<String>,
    },
    GenerationFailed { message: String },
    Profiled { profile: engine::runtime::session::Profile },
    /// A problem not tied to one request.
    Error { message: String },
}
