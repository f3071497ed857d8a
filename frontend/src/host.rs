//! The engine host: everything the UI asks of the engine (GPU, downloads, the
//! cache, loading, generation) behind the one request/event protocol. It runs
//! in a Web Worker (worker.rs), or in the page for tests; it is the same code.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    rc::Rc,
};

use app::{
    manifest::{Catalog, Manifest},
    protocol::{CachedModel, CatalogModel, ChatTurn, Event, GenerationParams, GenerationStats, LoadOptions, ReplyFormat, Request, ToolCall, ToolChoice},
};
use engine::{
    chat::ChatMessage,
    constrain::{Constraint, Grammars},
    gpu::{Gpu, GpuError, GpuOptions},
    runtime::{
        model::Model,
        ops::Tuning,
        session::{Generate, Sampling, Session, SessionOptions, TokenConstraint, MAX_DECODE_AHEAD},
    },
    text::TextModel,
    tokenizer::TextStream,
    tools::{self, render_calls},
};
use wasm_bindgen_futures::spawn_local;

use crate::{
    download::{self, Download, Emit},
    js, loading,
    open_file::OpenFile,
    resume::Checkpoints,
    store::Store,
};

/// Context tokens a session holds (the KV cache's size), at most.
const MAX_CONTEXT: usize = 4096;
/// Decode steps in flight in the browser, where a token's readback crosses
/// to the GPU process and back before the next step can be submitted.
const DECODE_AHEAD: usize = 2;

struct Active {
    /// Which load this is: a generation that outlives its model finds another serial.
    serial: u64,
    id: String,
    text: Rc<TextModel>,
    /// Taken out while a generation runs.
    session: Option<Session>,
    /// The text the session's history decodes to (with special tokens).
    history_text: String,
    conversation: Option<String>,
    prefill_tokens_per_s: f64,
    /// Snapshots of the session to start later turns from.
    checkpoints: Checkpoints,
    /// The model's tokens for constrained replies, made at the first one.
    grammars: Option<Rc<Grammars>>,
}

/// How a chat request starts: the tokens the session already holds for it,
/// and the prompt tokens run before `generate` (kept as snapshots).
struct Prepared {
    reused: usize,
    early_prefill: usize,
    started_ms: f64,
    /// The model was given tools: its reply may hold calls.
    reads_calls: bool,
}

#[derive(Default)]
struct State {
    gpu: Option<Rc<Gpu>>,
    store: Option<Rc<Store>>,
    active: Option<Active>,
    downloads: HashMap<String, Rc<Cell<bool>>>,
    /// Models loaded so far (the next Active's serial).
    loads: u64,
}

#[derive(Clone)]
pub struct Host {
    state: Rc<RefCell<State>>,
    emit: Emit,
    stop: Rc<Cell<bool>>,
}

fn sampling(p: &GenerationParams) -> Sampling {
    Sampling {
        temperature: p.temperature,
        top_k: p.top_k,
        top_p: p.top_p,
        min_p: p.min_p,
        repeat_penalty: p.repetition_penalty,
        seed: p.seed,
    }
}

impl Host {
    pub fn new(emit: impl Fn(Event) + 'static) -> Self {
        Self { state: Rc::default(), emit: Rc::new(emit), stop: Rc::new(Cell::new(false)) }
    }

    fn emit(&self, e: Event) {
        self.emit.as_ref()(e);
    }

    pub fn handle(&self, request: Request) {
        match request {
            Request::Stop => self.stop.set(true),
            Request::CancelDownload { id } => {
                if let Some(flag) = self.state.borrow().downloads.get(&id) {
                    flag.set(true);
                }
            }
            other => {
                let host = self.clone();
                spawn_local(async move { host.run(other).await });
            }
        }
    }

    /// A lost GPU device: everything on it is gone. The loaded model fails (the
    /// UI offers it again) and the next request opens a new device.
    fn check_gpu_lost(&self) {
        let lost = self.state.borrow().gpu.as_ref().and_then(|g| g.lost());
        if let Some(reason) = lost {
            let active = {
                let mut st = self.state.borrow_mut();
                st.gpu = None;
                st.active.take()
            };
            let message = format!("the GPU device was lost ({reason}); choose the model to load it again");
            match active {
                Some(a) => self.emit(Event::LoadFailed { id: a.id, message }),
                None => self.emit(Event::Error { message }),
            }
        }
    }

    async fn run(&self, request: Request) {
        self.check_gpu_lost();
        match request {
            Request::DestroyGpu => {
                let gpu = self.state.borrow().gpu.clone();
                // Reported by the watch that `gpu` set up, once the browser settles `lost`.
                if let Some(g) = gpu {
                    g.device.destroy();
                }
            }
            Request::Probe => match self.gpu().await {
                Ok(gpu) => self.emit(Event::Gpu { adapter: Some(gpu.report()), error: None }),
                Err(e) => self.emit(Event::Gpu { adapter: None, error: Some(e) }),
            },
            Request::Catalog { base_url } => self.catalog(&base_url).await,
            Request::Download { base_url, id } => self.download(base_url, id).await,
            Request::Delete { id } => {
                let result = async {
                    let store = self.store().await?;
                    let mut st = self.state.borrow_mut();
                    if st.active.as_ref().is_some_and(|a| a.id == id) {
                        // A generation in progress ends at its next token (see generate).
                        st.active = None;
                        self.stop.set(true);
                    }
                    drop(st);
                    store.delete_model(&id).await.map_err(|e| e.to_string())
                }
                .await;
                if let Err(message) = result {
                    self.emit(Event::Error { message });
                }
                self.emit_cached().await;
            }
            Request::Load { id, options } => {
                // A generation in progress on the model being replaced ends at its next token.
                if self.state.borrow().active.as_ref().is_some_and(|a| a.session.is_none()) {
                    self.stop.set(true);
                }
                self.load(id, options).await
            }
            Request::Chat { conversation, messages, params, format, tools, tool_choice } => self.chat(conversation, messages, params, format, tools, tool_choice).await,
            Request::Complete { prompt_ids, params, format } => {
                if let Some(a) = self.state.borrow_mut().active.as_mut() {
                    a.conversation = None;
                }
                self.generate(false, prompt_ids, &params, format.as_ref(), None).await;
            }
            Request::Profile { prompt_len, reps } => match self.profile(prompt_len as usize, reps as usize).await {
                Ok(profile) => self.emit(Event::Profiled { profile }),
                Err(message) => self.emit(Event::Error { message }),
            },
            Request::Reset => {
                let mut st = self.state.borrow_mut();
                if let Some(a) = st.active.as_mut() {
                    if let Some(s) = a.session.as_mut() {
                        s.reset();
                    }
                    a.history_text.clear();
                    a.conversation = None;
                    a.checkpoints.forget_turns();
                }
            }
            Request::Stop | Request::CancelDownload { .. } => {}
        }
        // A device lost during the request (a generation that failed on it) is reported now.
        self.check_gpu_lost();
    }

    async fn gpu(&self) -> Result<Rc<Gpu>, String> {
        if let Some(g) = self.state.borrow().gpu.clone() {
            return Ok(g);
        }
        let gpu = Rc::new(Gpu::new(GpuOptions::default()).await.map_err(|e| match e {
            GpuError::WebGpuUnavailable => "this browser does not offer WebGPU".to_string(),
            other => other.to_string(),
        })?);
        self.state.borrow_mut().gpu = Some(gpu.clone());
        // A device lost while nothing runs (a driver reset between prompts) is
        // reported when it happens, not at the next request.
        let (host, lost) = (self.clone(), gpu.when_lost());
        spawn_local(async move {
            lost.await;
            host.check_gpu_lost();
        });
        Ok(gpu)
    }

    async fn store(&self) -> Result<Rc<Store>, String> {
        if let Some(s) = self.state.borrow().store.clone() {
            return Ok(s);
        }
        let store = Rc::new(Store::open().await.map_err(|e| e.to_string())?);
        self.state.borrow_mut().store = Some(store.clone());
        Ok(store)
    }

    async fn cached(&self) -> Result<Vec<CachedModel>, String> {
        let store = self.store().await?;
        let mut out = Vec::new();
        for record in store.models().await.map_err(|e| e.to_string())? {
            let Ok(manifest) = serde_json::from_str::<Manifest>(&record.manifest_json) else { continue };
            let have = store.chunk_hashes(&record.id).await.map_err(|e| e.to_string())?;
            let chunks: Vec<_> = manifest.files.iter().flat_map(|f| &f.chunks).collect();
            let present: Vec<_> = chunks.iter().filter(|c| have.contains(&c.sha256)).collect();
            out.push(CachedModel {
                id: record.id.clone(),
                name: manifest.name.clone(),
                total_bytes: manifest.total_bytes,
                stored_bytes: present.iter().map(|c| c.length).sum(),
                chunks: chunks.len(),
                complete_chunks: present.len(),
                manifest_sha256: record.manifest_sha256.clone(),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn emit_cached(&self) {
        match self.cached().await {
            Ok(models) => self.emit(Event::Cached { models }),
            Err(message) => self.emit(Event::Error { message }),
        }
    }

    async fn catalog(&self, base: &str) {
        let cached = self.cached().await.unwrap_or_default();
        let limits = self.gpu().await.ok().map(|g| (g.limits.max_storage_buffer_binding_size as u64, g.limits.max_buffer_size));
        let fetched = async {
            let response = js::fetch(&format!("{base}/models/index.json"), &[]).await.map_err(|e| (true, js::message(&e)))?;
            if !response.ok() {
                return Err((false, format!("the server answered {} for its model list", response.status())));
            }
            let text = js::response_text(&response).await.map_err(|e| (true, js::message(&e)))?;
            serde_json::from_str::<Catalog>(&text).map_err(|e| (false, e.to_string()))
        }
        .await;
        let (mut catalog, offline, error) = match fetched {
            Ok(c) => (c, false, None),
            Err((offline, e)) => (Catalog::default(), offline, Some(e)),
        };
        // Ids name storage keys and URL paths: only well-formed ones.
        catalog.models.retain(|m| app::manifest::valid_model_id(&m.id));
        // The manifests say what each model needs: fetch them all at once.
        let manifests = futures::future::join_all(catalog.models.iter().map(|e| download::fetch_manifest(base, &e.id))).await;
        let mut models = Vec::new();
        for (entry, fetched) in catalog.models.into_iter().zip(manifests) {
            let manifest = fetched.ok().map(|f| f.manifest);
            let fits = match (&manifest, limits) {
                (Some(m), Some((binding, buffer))) => {
                    let limit = binding.min(buffer);
                    if m.requirements.min_binding_bytes > limit {
                        Err(format!("needs {} bytes in one GPU binding; this GPU allows {limit}", m.requirements.min_binding_bytes))
                    } else {
                        Ok(())
                    }
                }
                (_, None) => Err("no WebGPU on this device".to_string()),
                (None, _) => Ok(()),
            };
            models.push(CatalogModel {
                sampling: manifest.as_ref().map(|m| m.sampling.clone()),
                context_length: manifest.as_ref().map_or(0, |m| m.context_length),
                entry,
                fits,
            });
        }
        self.emit(Event::Catalog { models, cached, offline, error });
    }

    /// What a download or an opened file needs first: a valid id, the cache,
    /// and the GPU's (maxStorageBufferBindingSize, maxBufferSize) if there is one.
    async fn prepare_store(&self, id: &str) -> Result<(Rc<Store>, Option<(u64, u64)>), String> {
        if !app::manifest::valid_model_id(id) {
            return Err("this is not a model id".into());
        }
        let store = self.store().await?;
        let limits = self.gpu().await.ok().map(|g| (g.limits.max_storage_buffer_binding_size as u64, g.limits.max_buffer_size));
        Ok((store, limits))
    }

    async fn download(&self, base: String, id: String) {
        let (store, limits) = match self.prepare_store(&id).await {
            Ok(v) => v,
            Err(message) => return self.emit(Event::DownloadFailed { id, message }),
        };
        let cancel = Rc::new(Cell::new(false));
        self.state.borrow_mut().downloads.insert(id.clone(), cancel.clone());
        // (The page asked for persistent storage first: workers cannot.)
        let emit = self.emit.clone();
        let (id2, store2) = (id.clone(), store.clone());
        let work = async move {
            let d = Download { store: &store2, emit, cancel, gpu_limits: limits };
            d.run(&base, &id2).await
        };
        let result = js::with_lock(&format!("eddy-download:{id}"), work).await;
        self.state.borrow_mut().downloads.remove(&id);
        match result {
            None => self.emit(Event::DownloadFailed { id, message: "another tab is downloading this model; it continues there".into() }),
            Some(Ok(())) => self.emit(Event::Downloaded { id }),
            Some(Err(message)) => self.emit(Event::DownloadFailed { id, message }),
        }
        self.emit_cached().await;
    }

    /// Stores a model from the user's disk under `id` (see open_file.rs).
    pub fn open_files(&self, id: String, folder: Option<String>, picked: Vec<web_sys::File>) {
        let host = self.clone();
        spawn_local(async move { host.import_files(id, folder, picked).await });
    }

    async fn import_files(&self, id: String, folder: Option<String>, picked: Vec<web_sys::File>) {
        let (store, limits) = match self.prepare_store(&id).await {
            Ok(v) => v,
            Err(message) => return self.emit(Event::DownloadFailed { id, message }),
        };
        let (emit, id2, store2) = (self.emit.clone(), id.clone(), store.clone());
        let work = async move { OpenFile { store: &store2, emit, gpu_limits: limits }.run(&id2, folder.as_deref(), &picked).await };
        match js::with_lock(&format!("eddy-download:{id}"), work).await {
            None => self.emit(Event::DownloadFailed { id, message: "another tab is storing this model".into() }),
            Some(Ok(())) => self.emit(Event::Downloaded { id }),
            Some(Err(message)) => {
                // Nothing half-stored stays behind (no record names those chunks yet).
                if store.model(&id).await.ok().flatten().is_none() {
                    let _ = store.delete_model(&id).await;
                }
                self.emit(Event::DownloadFailed { id, message });
            }
        }
        self.emit_cached().await;
    }

    async fn load(&self, id: String, options: LoadOptions) {
        let result = async {
            let gpu = self.gpu().await?;
            let store = self.store().await?;
            self.state.borrow_mut().active = None;
            let t0 = js::now_ms();
            let tuning = match options.matvec {
                Some((matvec_wg, matvec_lanes)) => Tuning { matvec_wg, matvec_lanes, ..Tuning::for_adapter(&gpu) },
                None => Tuning::for_adapter(&gpu),
            };
            let make_session = |manifest: &Manifest, model: &Rc<Model>| {
                let allowed = (manifest.context_length as usize).clamp(16, MAX_CONTEXT);
                let context = options.context.map_or(allowed, |c| (c as usize).clamp(16, allowed));
                let decode_ahead = options.decode_ahead.map_or(DECODE_AHEAD, |n| (n as usize).clamp(1, MAX_DECODE_AHEAD));
                Session::new(model.clone(), SessionOptions { context, tuning, decode_ahead, ..Default::default() }).map_err(|e| e.to_string())
            };
            let loaded = loading::load(&store, &gpu, &id, &self.emit, &make_session).await?;
            let text = Rc::new(loaded.text);
            let mut session = loaded.session;
            let mut times = loaded.times;
            let t_warm = js::now_ms();
            // Ready means compiled: the first prompt runs at full speed. Not
            // on a CPU adapter (SwiftShader): there one pass of a large model
            // costs far more than its pipelines take to compile.
            if !gpu.is_cpu() {
                session.warm_up().await.map_err(|e| format!("running the model once failed: {e}"))?;
            }
            times.warm_up_s = (js::now_ms() - t_warm) / 1000.0;
            let name = loaded.manifest.name.clone();
            let context = session.capacity();
            let serial = {
                let mut st = self.state.borrow_mut();
                st.loads += 1;
                st.loads
            };
            self.state.borrow_mut().active = Some(Active {
                serial,
                id: id.clone(),
                text,
                session: Some(session),
                history_text: String::new(),
                conversation: None,
                prefill_tokens_per_s: 0.0,
                checkpoints: Checkpoints::new(prefix_budget(&gpu)),
                grammars: None,
            });
            Ok::<_, String>((name, context, (js::now_ms() - t0) / 1000.0, loaded.peak_wasm_bytes, times))
        }
        .await;
        match result {
            Ok((name, context_length, load_seconds, peak, times)) => self.emit(Event::Loaded {
                id,
                name,
                context_length,
                load_seconds,
                wasm_memory_peak_bytes: peak,
                times,
            }),
            Err(message) => self.emit(Event::LoadFailed { id, message }),
        }
    }

    /// Continues `conversation`. The session starts from the longest state it
    /// holds or has a snapshot of whose text begins the rendered conversation
    /// (the conversation so far, the same conversation before an edited or
    /// regenerated message, or another one's system prompt); only the rest
    /// runs through the model. A system prompt run from scratch is kept with
    /// its KV rows, and every prompt but its last token, so that regenerating
    /// the reply prefills one token.
    #[allow(clippy::too_many_arguments)]
    async fn chat(&self, conversation: String, messages: Vec<ChatTurn>, params: GenerationParams, format: Option<ReplyFormat>, tools: Vec<serde_json::Value>, tool_choice: ToolChoice) {
        let started_ms = js::now_ms();
        let tools = if tool_choice == ToolChoice::None { Vec::new() } else { tools };
        let rendered = {
            let st = self.state.borrow();
            let Some(active) = st.active.as_ref() else {
                drop(st);
                return self.emit(Event::GenerationFailed { message: "no model is loaded".into() });
            };
            let style = active.text.call_style();
            // An assistant's earlier calls go back as the model wrote them, so
            // the prompt extends the state the session already holds.
            let messages: Vec<ChatMessage> = messages
                .iter()
                .map(|m| {
                    let calls = if m.tool_calls.is_empty() { String::new() } else { render_calls(style, &m.tool_calls) };
                    ChatMessage::new(&m.role, &format!("{}{calls}", m.content))
                })
                .collect();
            let system: Vec<ChatMessage> = messages.iter().take_while(|m| m.role == "system").cloned().collect();
            match active.text.template.as_ref() {
                Some(t) => t.render_with_tools(&messages, &tools, true).map(|text| {
                    let system_text = if system.is_empty() { None } else { t.render_with_tools(&system, &tools, false).ok().filter(|s| text.starts_with(s.as_str())) };
                    (text, system_text)
                }),
                None => Err(engine::model::ModelError::ChatTemplate("the model has no chat template".into())),
            }
        };
        // A required call is a constrained reply: the grammar of a call.
        let format = match (&tool_choice, format) {
            (ToolChoice::Required | ToolChoice::Function { .. }, Some(_)) => {
                return self.emit(Event::GenerationFailed { message: "a reply cannot both be a required tool call and follow a format".into() });
            }
            (ToolChoice::Required | ToolChoice::Function { .. }, None) => {
                let only = match &tool_choice {
                    ToolChoice::Function { name } => Some(name.as_str()),
                    _ => None,
                };
                let grammar = self.state.borrow().active.as_ref().map(|a| a.text.tool_call_grammar(&tools, only));
                match grammar {
                    Some(Ok(engine::constrain::Grammar::Lark(lark))) => Some(ReplyFormat::Grammar { lark }),
                    Some(Ok(_)) => None,
                    Some(Err(e)) => return self.emit(Event::GenerationFailed { message: e.to_string() }),
                    None => return self.emit(Event::GenerationFailed { message: "no model is loaded".into() }),
                }
            }
            (_, format) => format,
        };
        let reads_calls = !tools.is_empty();
        let (text, system_text) = match rendered {
            Ok(r) => r,
            Err(e) => return self.emit(Event::GenerationFailed { message: e.to_string() }),
        };
        let taken = {
            let mut st = self.state.borrow_mut();
            st.active.as_mut().map(|a| (a.session.take(), a.text.clone(), a.serial))
        };
        let Some((Some(mut session), model, serial)) = taken else {
            return self.emit(Event::GenerationFailed { message: "no model is loaded, or it is busy".into() });
        };
        let prepared = self.prepare(&mut session, &model, &conversation, &text, system_text.as_deref()).await;
        let put_back = |host: &Self, session: Session| {
            let mut st = host.state.borrow_mut();
            match st.active.as_mut() {
                Some(a) if a.serial == serial => {
                    a.session = Some(session);
                    true
                }
                _ => false,
            }
        };
        match prepared {
            Ok((ids, early)) => {
                if !put_back(self, session) {
                    return self.emit(Event::GenerationFailed { message: "the model was unloaded while it was answering; the reply is incomplete".into() });
                }
                self.generate(true, ids, &params, format.as_ref(), Some(Prepared { started_ms, reads_calls, ..early })).await
            }
            Err(e) => {
                session.reset();
                if put_back(self, session) {
                    if let Some(a) = self.state.borrow_mut().active.as_mut() {
                        a.history_text.clear();
                    }
                }
                self.emit(Event::GenerationFailed { message: e })
            }
        }
    }

    /// Brings `session` to the best start for `text` and runs all of the new
    /// prompt but its last token; returns that token (or the prompt, when it
    /// is one token) for `generate`.
    async fn prepare(&self, session: &mut Session, model: &TextModel, conversation: &str, text: &str, system_text: Option<&str>) -> Result<(Vec<u32>, Prepared), String> {
        let mut st = self.state.borrow_mut();
        let active = st.active.as_mut().ok_or("no model is loaded")?;
        let same = active.conversation.as_deref() == Some(conversation);
        let held = if same && !active.history_text.is_empty() && text.starts_with(&active.history_text) { active.history_text.len() } else { 0 };
        let mut prefix_len = held;
        if let Some((start, _)) = active.checkpoints.best(session, text, held) {
            match active.checkpoints.restore(session, start) {
                Some(t) => {
                    prefix_len = t.len();
                    active.history_text = t;
                }
                None => prefix_len = 0,
            }
        }
        if prefix_len == 0 {
            session.reset();
            active.history_text.clear();
        }
        active.conversation = Some(conversation.to_string());
        let reused = session.history().len();
        drop(st);
        let mut early = 0;
        // A system prompt run now is kept, KV rows and all, for other chats.
        if let Some(system) = system_text.filter(|s| s.len() > prefix_len) {
            let ids = model.tokenizer.encode_rendered(&system[prefix_len..]).map_err(|e| e.to_string())?;
            session.extend(&ids).await.map_err(|e| e.to_string())?;
            early += ids.len();
            prefix_len = system.len();
            let saved = model.tokenizer.decode(session.history(), false);
            self.with_checkpoints(|c| c.save_prefix(session, saved));
        }
        let mut ids = model.tokenizer.encode_rendered(&text[prefix_len..]).map_err(|e| e.to_string())?;
        if ids.len() >= 2 {
            let last = ids.split_off(ids.len() - 1);
            session.extend(&ids).await.map_err(|e| e.to_string())?;
            early += ids.len();
            let saved = model.tokenizer.decode(session.history(), false);
            self.with_checkpoints(|c| c.save_turn(session, saved));
            ids = last;
        }
        Ok((ids, Prepared { reused, early_prefill: early, started_ms: 0.0, reads_calls: false }))
    }

    fn with_checkpoints(&self, f: impl FnOnce(&mut Checkpoints)) {
        if let Some(a) = self.state.borrow_mut().active.as_mut() {
            f(&mut a.checkpoints);
        }
    }

    /// Profiles the loaded model on arbitrary tokens (see `Request::Profile`).
    async fn profile(&self, prompt_len: usize, reps: usize) -> Result<engine::runtime::session::Profile, String> {
        let taken = self.state.borrow_mut().active.as_mut().map(|a| (a.session.take(), a.serial));
        let Some((Some(mut session), serial)) = taken else { return Err("no model is loaded, or it is busy".into()) };
        let vocab = session.model().config().vocab as u32;
        let mut seed = 12345u32;
        let prompt: Vec<u32> = (0..prompt_len.clamp(1, session.capacity().saturating_sub(2).max(1)))
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) % vocab
            })
            .collect();
        let result = session.profile(&prompt, reps.max(1)).await.map_err(|e| e.to_string());
        session.reset();
        let mut st = self.state.borrow_mut();
        if let Some(a) = st.active.as_mut().filter(|a| a.serial == serial) {
            a.session = Some(session);
            a.history_text.clear();
            a.conversation = None;
            a.checkpoints.forget_turns();
        }
        result
    }

    /// Generates after `new_ids`; with `continue_session`, they extend what the
    /// session holds (a chat turn), otherwise the session starts empty.
    /// The constraint for one reply in `format`, with the model's grammars
    /// made (and kept) at the first.
    fn constraint(&self, text: &TextModel, format: &ReplyFormat) -> Result<Constraint, String> {
        let cached = self.state.borrow().active.as_ref().and_then(|a| a.grammars.clone());
        let grammars = match cached {
            Some(g) => g,
            None => {
                let end = text.end_of_reply().ok_or("the model has no end-of-reply token")?;
                let g = Rc::new(Grammars::new(text, end).map_err(|e| e.to_string())?);
                if let Some(a) = self.state.borrow_mut().active.as_mut() {
                    a.grammars = Some(g.clone());
                }
                g
            }
        };
        grammars.constraint(&format.grammar()).map_err(|e| e.to_string())
    }

    async fn generate(&self, continue_session: bool, new_ids: Vec<u32>, params: &GenerationParams, format: Option<&ReplyFormat>, prepared: Option<Prepared>) {
        let text = self.state.borrow().active.as_ref().map(|a| a.text.clone());
        let mut constraint = match (format, text) {
            (Some(f), Some(text)) => match self.constraint(&text, f) {
                Ok(c) => Some(c),
                Err(message) => return self.emit(Event::GenerationFailed { message }),
            },
            _ => None,
        };
        let taken = {
            let mut st = self.state.borrow_mut();
            st.active.as_mut().map(|a| (a.session.take(), a.text.clone(), a.prefill_tokens_per_s, a.serial))
        };
        let Some((Some(mut session), text, old_rate, serial)) = taken else {
            return self.emit(Event::GenerationFailed { message: "no model is loaded, or it is busy".into() });
        };
        if !continue_session {
            session.reset();
        }
        self.stop.set(false);
        let generate_ms = js::now_ms();
        let reused = prepared.as_ref().map_or(session.history().len(), |p| p.reused);
        let early_prefill = prepared.as_ref().map_or(0, |p| p.early_prefill);
        let reads_calls = prepared.as_ref().is_some_and(|p| p.reads_calls);
        let early_seconds = prepared.as_ref().map_or(0.0, |p| (generate_ms - p.started_ms).max(0.0) / 1000.0);
        let stops = text.stop_ids();
        let mut stream = TextStream::default();
        let emit = self.emit.clone();
        let stop = self.stop.clone();
        let tokenizer = &text.tokenizer;
        let result = session
            .generate(Generate { stop_ids: &stops, constraint: constraint.as_mut().map(|c| c as &mut dyn TokenConstraint), ..Generate::new(&new_ids, params.max_tokens as usize, &sampling(params)) }, &mut |id| {
                let piece = if stops.contains(&id) { String::new() } else { stream.push(tokenizer, id) };
                emit.as_ref()(Event::Token { id, text: piece });
                !stop.get()
            })
            .await;
        let history_text = text.tokenizer.decode(session.history(), false);
        let (capacity, used) = (session.capacity(), session.history().len());
        let mut st = self.state.borrow_mut();
        match st.active.as_mut() {
            Some(active) if active.serial == serial => {
                if continue_session && result.is_ok() {
                    active.checkpoints.save_turn(&session, history_text.clone());
                } else {
                    active.checkpoints.prune(&session);
                }
                active.session = Some(session);
                active.history_text = history_text;
            }
            // The model was deleted, or another loaded, while this generated: its
            // session (and GPU memory) goes; the reply ends here.
            _ => {
                drop(st);
                drop(session);
                return self.emit(Event::GenerationFailed { message: "the model was unloaded while it was answering; the reply is incomplete".into() });
            }
        }
        drop(st);
        match result {
            Ok(g) => {
                let prefill_tokens = g.prefill_tokens + early_prefill;
                let prefill_seconds = g.prefill_seconds + early_seconds;
                let prefill_rate = if prefill_seconds > 0.0 { prefill_tokens as f64 / prefill_seconds } else { 0.0 };
                let rate = if prefill_rate > 0.0 { prefill_rate } else { old_rate };
                if let Some(a) = self.state.borrow_mut().active.as_mut() {
                    a.prefill_tokens_per_s = rate;
                }
                let stats = GenerationStats {
                    prompt_tokens: reused + prefill_tokens,
                    reused_tokens: reused,
                    prefill_tokens,
                    generated_tokens: g.tokens.len(),
                    prefill_tokens_per_s: prefill_rate,
                    decode_tokens_per_s: g.decode_tokens_per_s(),
                    context_used: used,
                    context_size: capacity,
                    stop_reason: serde_json::to_value(g.stop).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
                    prefill_seconds_saved: if rate > 0.0 { reused as f64 / rate } else { 0.0 },
                    decode_record_ms_per_token: 1000.0 * g.record_seconds / g.tokens.len().max(1) as f64,
                    decode_wait_ms_per_token: 1000.0 * g.wait_seconds / g.tokens.len().max(1) as f64,
                };
                let visible: Vec<u32> = g.tokens.iter().copied().filter(|t| !stops.contains(t)).collect();
                let shown = text.tokenizer.decode_shown(&visible);
                let (shown, calls, call_error) = if reads_calls { split_calls(&text.tokenizer.decode(&visible, false), shown) } else { (shown, Vec::new(), None) };
                self.emit(Event::Generated { text: shown, tokens: g.tokens, stats, calls, call_error });
            }
            Err(e) => {
                // A failed generation leaves the state unknown: start clean next time.
                if let Some(a) = self.state.borrow_mut().active.as_mut() {
                    if let Some(s) = a.session.as_mut() {
                        s.reset();
                    }
                    a.history_text.clear();
                }
                self.emit(Event::GenerationFailed { message: e.to_string() });
            }
        }
    }
}

/// A reply's text without its tool calls, and the calls; a call that does
/// not parse leaves the text as shown, with the reason.
fn split_calls(raw: &str, shown: String) -> (String, Vec<ToolCall>, Option<String>) {
    if !raw.contains(tools::LFM2_CALL_START) && !raw.contains(tools::JSON_CALL_START) {
        return (shown, Vec::new(), None);
    }
    match tools::parse_reply(raw) {
        Ok(reply) => (reply.content, reply.calls, None),
        Err(e) => (shown, Vec::new(), Some(e.to_string())),
    }
}

/// GPU memory for system-prompt snapshots (with their KV rows): a slice of
/// what one binding may hold, between 8 and 64 MiB.
fn prefix_budget(gpu: &Gpu) -> u64 {
    (gpu.limits.max_storage_buffer_binding_size as u64 / 8).clamp(8 << 20, 64 << 20)
}
