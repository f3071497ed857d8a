//! What the UI does in the browser: it starts the engine host, follows its
//! events (a download finished → load the model), and turns user actions into
//! requests. Browser only.

use gloo_storage::{LocalStorage, Storage};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::{
    chats,
    client::Client,
    protocol::{Event, GenerationParams, LoadOptions, Request, ToolChoice},
    state::{Conversation, Message, ModelStatus, Ui},
};

const LAST_MODEL: &str = "eddy.model";
const PRESETS: &str = "eddy.presets";

fn client() -> Option<Client> {
    Client::get()
}

fn send(r: Request) {
    if let Some(c) = client() {
        c.send(r);
    }
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn new_id() -> String {
    format!("c{:x}{:04x}", now_ms() as u64, (js_sys::Math::random() * 65536.0) as u32)
}

/// The models' base URL: always this site. (A `?models=URL` link once sent
/// the app to any server, which could replace the weights a user had.)
fn base_url() -> String {
    web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
}

/// A link's parameter: from the URL fragment (`/#system=...`, which the
/// browser never sends anywhere), else from the query of an older link
/// (public/pwa.js moves those into the fragment before anything else loads).
pub fn param(name: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let hash = location.hash().ok().unwrap_or_default();
    let from_hash = web_sys::UrlSearchParams::new_with_str(hash.trim_start_matches('#')).ok().and_then(|p| p.get(name));
    from_hash.or_else(|| {
        let search = location.search().ok()?;
        web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(name)
    })
}

/// The link's `matvec=WG,LANES` (a kernel shape for benchmarking),
/// `context=N` (a smaller context window than the model's: less GPU memory)
/// and `decode_ahead=N` (steps in flight while decoding).
fn load_options() -> LoadOptions {
    let matvec = param("matvec").and_then(|v| {
        let (a, b) = v.split_once(',')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    });
    LoadOptions { matvec, context: param("context").and_then(|v| v.parse().ok()), decode_ahead: param("decode_ahead").and_then(|v| v.parse().ok()) }
}

fn settings_key(model: &str) -> String {
    format!("eddy.settings.{model}")
}

/// Sampling from the URL (`?temperature=0&max_tokens=N...`), over `base`.
fn url_params(mut p: GenerationParams) -> GenerationParams {
    let f = |n: &str| param(n).and_then(|v| v.parse::<f32>().ok());
    let u = |n: &str| param(n).and_then(|v| v.parse::<u32>().ok());
    if let Some(v) = f("temperature") {
        p.temperature = v;
        if v == 0.0 {
            // A link asking for temperature 0 asks for plain greedy decoding:
            // no penalties or filters unless it names them too.
            p.repetition_penalty = 1.0;
            p.top_k = 0;
            p.top_p = 1.0;
            p.min_p = 0.0;
        }
    }
    if let Some(v) = u("top_k") {
        p.top_k = v;
    }
    if let Some(v) = f("top_p") {
        p.top_p = v;
    }
    if let Some(v) = f("min_p") {
        p.min_p = v;
    }
    if let Some(v) = f("repetition_penalty").or_else(|| f("repeat_penalty")) {
        p.repetition_penalty = v;
    }
    if let Some(v) = u("max_tokens") {
        p.max_tokens = v;
    }
    if let Some(v) = u("seed") {
        p.seed = v;
    }
    p
}

/// Starts the browser side: subscribes to the engine, restores the
/// conversations and asks for the catalog.
pub fn start(ui: Ui) {
    let Some(c) = client() else { return };
    let redownloaded = RwSignal::new(false);
    c.subscribe(move |event| {
        ui.apply(event);
        follow_up(ui, event, redownloaded);
    });
    ui.presets.set(LocalStorage::get(PRESETS).unwrap_or_default());
    if let Some(model) = param("model").or_else(|| LocalStorage::get::<String>(LAST_MODEL).ok()) {
        ui.selected.set(Some(model));
    }
    spawn_local(async move {
        match chats::list().await {
            Ok(list) => {
                let current = list.first().cloned();
                ui.conversations.set(list);
                match current {
                    // Reopen the last conversation unless a link asks for a model of its own.
                    Some(c) if param("model").is_none() => ui.conversation.set(c),
                    _ => new_chat(ui),
                }
            }
            Err(e) => {
                ui.notice.set(Some(format!("Your saved conversations could not be read: {e}")));
                new_chat(ui);
            }
        }
    });
    spawn_local(crate::storage::refresh(ui));
    crate::pwa::watch(ui, || send(Request::Catalog { base_url: base_url() }));
    send(Request::Catalog { base_url: base_url() });
    install_test_hooks(ui);
}

/// With the `test_hooks` link parameter, `window.eddyTest.destroyGpu()` makes
/// the engine lose its GPU device (how the Playwright tests play a driver
/// reset), `window.eddyTest.streamReply(json)` starts a reply and plays a
/// JSON list of engine events into it, as if a model wrote it (for what the
/// tiny test models never write, like a thinking section), and
/// `window.eddyTest.events(json)` plays more.
fn install_test_hooks(ui: Ui) {
    use wasm_bindgen::{closure::Closure, JsCast};
    if param("test_hooks").is_none() {
        return;
    }
    let Some(window) = web_sys::window() else { return };
    let destroy = Closure::<dyn Fn()>::new(|| send(Request::DestroyGpu));
    let hooks = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&hooks, &"destroyGpu".into(), destroy.as_ref().unchecked_ref());
    destroy.forget();
    let stream = Closure::<dyn Fn(String)>::new(move |json: String| {
        let Ok(events) = serde_json::from_str::<Vec<Event>>(&json) else { return };
        ui.conversation.update(|c| c.messages.push(Message::pending_reply()));
        ui.generating.set(true);
        for e in &events {
            ui.apply(e);
        }
    });
    let _ = js_sys::Reflect::set(&hooks, &"streamReply".into(), stream.as_ref().unchecked_ref());
    stream.forget();
    let more = Closure::<dyn Fn(String)>::new(move |json: String| {
        let Ok(events) = serde_json::from_str::<Vec<Event>>(&json) else { return };
        for e in &events {
            ui.apply(e);
            if matches!(e, Event::Generated { .. }) {
                save_conversation(ui);
            }
        }
    });
    let _ = js_sys::Reflect::set(&hooks, &"events".into(), more.as_ref().unchecked_ref());
    more.forget();
    let _ = js_sys::Reflect::set(&window, &"eddyTest".into(), &hooks);
}

fn follow_up(ui: Ui, event: &Event, redownloaded: RwSignal<bool>) {
    let selected = ui.selected.get_untracked();
    match event {
        Event::Catalog { models, offline, error, .. } => {
            // (`Ui::apply` has set `offline` already.)
            if *offline {
                if models.is_empty() {
                    ui.catalog.set(crate::pwa::remembered_catalog());
                }
            } else if error.is_none() {
                crate::pwa::remember_catalog(models);
            }
            if let Some(id) = selected {
                if matches!(ui.status.get_untracked(), ModelStatus::None | ModelStatus::Offline) {
                    select_model(ui, &id);
                }
            }
        }
        Event::Downloaded { id } if selected.as_deref() == Some(id.as_str()) => {
            ui.status.set(ModelStatus::Loading);
            send(Request::Load { id: id.clone(), options: load_options() });
        }
        Event::LoadFailed { id, message } if message.contains("missing from the browser's storage") && !redownloaded.get_untracked() => {
            // The browser evicted part of the cache: fetch just what is missing.
            redownloaded.set(true);
            ui.status.set(ModelStatus::Downloading);
            send(Request::Download { base_url: base_url(), id: id.clone() });
        }
        Event::Generated { .. } | Event::GenerationFailed { .. } => save_conversation(ui),
        // `profile=N` (benchmarks): time the dispatches of an N-token prefill and a decode step once loaded.
        Event::Loaded { .. } => {
            if let Some(prompt_len) = param("profile").and_then(|v| v.parse().ok()) {
                send(Request::Profile { prompt_len, reps: 8 });
            }
        }
        Event::Cached { .. } => spawn_local(crate::storage::refresh(ui)),
        _ => {}
    }
}

/// Chooses model `id`: its saved or recommended settings, then download (or
/// resume) and load.
pub fn select_model(ui: Ui, id: &str) {
    ui.selected.set(Some(id.to_string()));
    let _ = LocalStorage::set(LAST_MODEL, id);
    apply_settings(ui, id);
    if ui.loaded.get_untracked().as_deref() == Some(id) {
        ui.status.set(ModelStatus::Ready);
        return;
    }
    match ui.cached_model(id) {
        Some(m) if m.complete() => {
            ui.status.set(ModelStatus::Loading);
            send(Request::Load { id: id.to_string(), options: load_options() });
        }
        // Not (fully) downloaded and no network: unavailable for now, not an error.
        _ if ui.offline.get_untracked() => ui.status.set(ModelStatus::Offline),
        _ => {
            let fits = ui.catalog.with_untracked(|c| c.iter().find(|m| m.entry.id == id).map(|m| m.fits.clone()));
            match fits {
                Some(Err(why)) => ui.status.set(ModelStatus::Failed(format!("{id} does not fit this device: {why}"))),
                _ => {
                    ui.status.set(ModelStatus::Downloading);
                    // Persistence first: a window may ask, the downloading worker may not.
                    let id = id.to_string();
                    spawn_local(async move {
                        crate::storage::request_persistence(ui).await;
                        send(Request::Download { base_url: base_url(), id });
                    });
                }
            }
        }
    }
}

/// The model's saved settings, else its recommended sampling, with the link's parameters on top.
fn apply_settings(ui: Ui, id: &str) {
    let recommended = ui.catalog.with_untracked(|c| c.iter().find(|m| m.entry.id == id).and_then(|m| m.sampling.clone()));
    let saved: Option<GenerationParams> = LocalStorage::get(settings_key(id)).ok();
    let base = saved.or_else(|| recommended.map(|s| GenerationParams::recommended(&s))).unwrap_or_else(|| ui.params.get_untracked());
    ui.params.set(url_params(base));
}

/// Stores a model file from the user's disk (picked or dropped) and loads it:
/// read and hashed in the engine's worker, nothing uploaded.
pub fn open_model_file(ui: Ui, file: web_sys::File) {
    let id = crate::manifest::local_model_id(&file.name());
    open_from_disk(ui, id, file.name(), None, vec![file]);
}

/// The same for a Hugging Face folder (safetensors, config, tokenizer), picked
/// with the folder picker: `files` are its files.
pub fn open_model_folder(ui: Ui, files: Vec<web_sys::File>) {
    // The picker gives each file's path from the folder: "Folder/config.json".
    let path = |f: &web_sys::File| js_sys::Reflect::get(f, &"webkitRelativePath".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let Some(folder) = files.first().map(path).and_then(|p| p.split('/').next().map(str::to_string)).filter(|f| !f.is_empty()) else {
        ui.notice.set(Some("No folder was picked.".into()));
        return;
    };
    // Only the folder's own files, not those of folders inside it.
    let files: Vec<web_sys::File> = files.into_iter().filter(|f| path(f).matches('/').count() == 1).collect();
    let id = crate::manifest::local_folder_id(&folder);
    open_from_disk(ui, id, folder.clone(), Some(folder), files);
}

fn open_from_disk(ui: Ui, id: String, label: String, folder: Option<String>, files: Vec<web_sys::File>) {
    if !crate::manifest::valid_model_id(&id) {
        ui.notice.set(Some(format!("{label} cannot be opened: its name makes no model id")));
        return;
    }
    ui.selected.set(Some(id.clone()));
    ui.loaded.set(None);
    let _ = LocalStorage::set(LAST_MODEL, &id);
    apply_settings(ui, &id);
    ui.status.set(ModelStatus::Downloading);
    spawn_local(async move {
        crate::storage::request_persistence(ui).await;
        if let Some(c) = client() {
            c.open_files(id, folder, files);
        }
    });
}

pub fn save_settings(ui: Ui) {
    if let Some(id) = ui.selected.get_untracked() {
        let _ = LocalStorage::set(settings_key(&id), ui.params.get_untracked());
    }
}

pub fn delete_model(ui: Ui, id: &str) {
    if ui.selected.get_untracked().as_deref() == Some(id) {
        ui.selected.set(None);
        ui.loaded.set(None);
        ui.status.set(ModelStatus::None);
        let _ = LocalStorage::delete(LAST_MODEL);
    }
    send(Request::Delete { id: id.to_string() });
}

/// Every model and every conversation off this device.
pub fn delete_everything(ui: Ui) {
    for m in ui.cached.get_untracked() {
        delete_model(ui, &m.id);
    }
    for c in ui.conversations.get_untracked() {
        delete_chat(ui, &c.id);
    }
    new_chat(ui);
    send(Request::Reset);
}

pub fn cancel_download(id: &str) {
    send(Request::CancelDownload { id: id.to_string() });
}

/// Whether a new request for a reply may go now.
fn can_ask(ui: Ui) -> bool {
    !ui.generating.get_untracked() && ui.status.get_untracked() == ModelStatus::Ready
}

/// Sends `text` as the next user turn and streams the reply.
pub fn send_message(ui: Ui, text: String) {
    if !can_ask(ui) || text.trim().is_empty() {
        return;
    }
    ui.conversation.update(|c| {
        if c.messages.is_empty() && c.title == "New chat" {
            c.title = text.chars().take(48).collect();
        }
        c.messages.push(Message::user(text.clone()));
        c.messages.push(Message::pending_reply());
    });
    request_reply(ui);
}

/// Gives call `call` of the reply at `index` its result (a tool's output,
/// or the user's refusal); once every call of the reply has one, asks for the
/// next reply. Results come in call order, for the conversation's last reply only.
pub fn answer_tool_call(ui: Ui, index: usize, call: usize, result: String) {
    if ui.generating.get_untracked() {
        return;
    }
    let complete = ui
        .conversation
        .try_update(|c| {
            let calls = c.messages.get(index).map_or(0, |m| m.tool_calls.len());
            let (answered, last) = c.tool_results(index);
            if !last || call != answered || call >= calls {
                return false;
            }
            c.messages.push(Message::tool(result));
            answered + 1 == calls
        })
        .unwrap_or(false);
    if complete {
        ui.conversation.update(|c| c.messages.push(Message::pending_reply()));
        request_reply(ui);
    } else {
        save_conversation(ui);
    }
}

/// Reads the text files chosen in the prompt box's file input into the
/// chat's attachments (for the file tool); a file that is not text, or is
/// over 1 MiB, is refused with a notice.
pub fn attach_files(ui: Ui, ev: &leptos::ev::Event) {
    use wasm_bindgen::JsCast;
    const MAX_BYTES: f64 = (1 << 20) as f64;
    let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
    let Some(files) = input.files() else { return };
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        let name = file.name();
        if file.size() > MAX_BYTES {
            ui.notice.set(Some(format!("{name} is over 1 MiB: attach a smaller text file")));
            continue;
        }
        spawn_local(async move {
            match wasm_bindgen_futures::JsFuture::from(file.text()).await.ok().and_then(|v| v.as_string()) {
                Some(text) if !text.contains('\0') => ui.attachments.update(|all| {
                    all.retain(|a| a.name != name);
                    all.push(crate::tools::Attachment { name, text });
                }),
                _ => ui.notice.set(Some(format!("{name} is not a text file"))),
            }
        });
    }
    input.set_value("");
}

/// Runs a built-in tool's call (the user approved it) and answers the call
/// with its output, or with its error, which the model then sees.
pub fn run_tool_call(ui: Ui, index: usize, call: usize) {
    let Some(c) = ui.conversation.with_untracked(|conv| conv.messages.get(index).and_then(|m| m.tool_calls.get(call).cloned())) else { return };
    let result = ui.attachments.with_untracked(|files| crate::tools::run_builtin(&c.name, &c.arguments, files)).unwrap_or_else(|e| format!("error: {e}"));
    answer_tool_call(ui, index, call, result);
}

/// Replaces the reply at `index` with a new one (the old one stays as a version).
pub fn regenerate(ui: Ui, index: usize) {
    if !can_ask(ui) || !ui.conversation.with_untracked(|c| c.messages.get(index).is_some_and(|m| m.role == "assistant")) {
        return;
    }
    ui.conversation.update(|c| crate::branches::replace_tail(&mut c.messages, index, vec![Message::pending_reply()]));
    // Each version samples with its own seed: the same seed would write the same reply again.
    let version = ui.conversation.with_untracked(|c| c.messages.get(index).map_or(0, |m| m.version));
    request_reply_with(ui, version as u32);
}

/// Replaces the user message at `index` with `text` and asks for a new reply
/// (the old message and what followed it stay as a version).
pub fn edit_message(ui: Ui, index: usize, text: String) {
    if !can_ask(ui) || text.trim().is_empty() || !ui.conversation.with_untracked(|c| c.messages.get(index).is_some_and(|m| m.role == "user")) {
        return;
    }
    ui.conversation.update(|c| crate::branches::replace_tail(&mut c.messages, index, vec![Message::user(text.clone()), Message::pending_reply()]));
    request_reply(ui);
}

/// Shows the previous (`delta` -1) or next (+1) version of the message at `index`.
pub fn switch_version(ui: Ui, index: usize, delta: isize) {
    if ui.generating.get_untracked() {
        return;
    }
    let mut changed = false;
    ui.conversation.update(|c| {
        if let Some(to) = c.messages.get(index).and_then(|m| m.version.checked_add_signed(delta)) {
            changed = crate::branches::switch(&mut c.messages, index, to);
        }
    });
    if changed {
        ui.context_full.set(false);
        save_conversation(ui);
    }
}

/// Asks the engine for the reply the conversation ends with (a pending
/// message), given everything before it.
fn request_reply(ui: Ui) {
    request_reply_with(ui, 0);
}

/// As `request_reply`, with the sampling seed moved by `seed_offset`.
fn request_reply_with(ui: Ui, seed_offset: u32) {
    ui.context_full.set(false);
    ui.conversation.update(|c| {
        c.model = ui.selected.get_untracked();
        c.updated_ms = now_ms();
    });
    let conv = ui.conversation.get_untracked();
    let before = conv.messages.len() - usize::from(conv.messages.last().is_some_and(|m| m.pending));
    let turns = conv.turns(before);
    ui.generating.set(true);
    save_conversation(ui);
    let mut params = ui.params.get_untracked();
    params.seed = params.seed.wrapping_add(seed_offset);
    let tools = ui.tools.get_untracked();
    // "Must call a tool" holds for the reply to the user's message; the reply
    // after the results may answer.
    let after_user = conv.messages[..before].last().is_some_and(|m| m.role == "user");
    let tool_choice = if !tools.is_empty() && after_user && ui.tools_required.get_untracked() { ToolChoice::Required } else { ToolChoice::Auto };
    send(Request::Chat { conversation: conv.id, messages: turns, params, format: None, tools, tool_choice });
}

pub fn stop() {
    send(Request::Stop);
}

pub fn save_conversation(ui: Ui) {
    let conv = ui.conversation.get_untracked();
    ui.conversations.update(|list| {
        list.retain(|c| c.id != conv.id);
        list.insert(0, conv.clone());
    });
    spawn_local(async move {
        if let Err(e) = chats::save(&conv).await {
            ui.notice.set(Some(format!("The conversation could not be saved: {e}")));
        }
    });
}

pub fn new_chat(ui: Ui) {
    let system = ui.conversation.with_untracked(|c| c.system_prompt.clone());
    let mut c = Conversation::new(new_id(), now_ms());
    c.system_prompt = param("system").unwrap_or(system);
    c.model = ui.selected.get_untracked();
    ui.conversation.set(c);
    ui.context_full.set(false);
}

pub fn open_chat(ui: Ui, id: &str) {
    if ui.generating.get_untracked() {
        return;
    }
    if let Some(c) = ui.conversations.with_untracked(|l| l.iter().find(|c| c.id == id).cloned()) {
        // A conversation with a preset answers with the preset's sampling.
        let preset = c.preset.as_deref().and_then(|name| ui.presets.with_untracked(|l| crate::presets::find(l, name).cloned()));
        ui.conversation.set(c);
        ui.context_full.set(false);
        if let Some(p) = preset {
            ui.params.set(p.params);
        }
    }
}

/// Uses preset `name` for this conversation (its system prompt and
/// sampling), or with `None` the model's own settings again.
pub fn choose_preset(ui: Ui, name: Option<String>) {
    match name.as_deref().and_then(|n| ui.presets.with_untracked(|l| crate::presets::find(l, n).cloned())) {
        Some(p) => {
            ui.conversation.update(|c| {
                c.system_prompt = p.system_prompt.clone();
                c.preset = Some(p.name.clone());
            });
            ui.params.set(p.params);
        }
        None => {
            ui.conversation.update(|c| c.preset = None);
            if let Some(id) = ui.selected.get_untracked() {
                apply_settings(ui, &id);
            }
        }
    }
    save_conversation(ui);
}

/// Saves this conversation's system prompt and sampling as preset `name`.
pub fn save_preset(ui: Ui, name: String) {
    let preset = crate::presets::Preset { name, system_prompt: ui.conversation.with_untracked(|c| c.system_prompt.clone()), params: ui.params.get_untracked() };
    let mut kept = None;
    ui.presets.update(|l| kept = crate::presets::save(l, preset));
    let Some(name) = kept else {
        ui.notice.set(Some("A preset needs a name.".into()));
        return;
    };
    let _ = LocalStorage::set(PRESETS, ui.presets.get_untracked());
    ui.conversation.update(|c| c.preset = Some(name));
    save_conversation(ui);
}

pub fn delete_preset(ui: Ui, name: &str) {
    ui.presets.update(|l| crate::presets::remove(l, name));
    let _ = LocalStorage::set(PRESETS, ui.presets.get_untracked());
    if ui.conversation.with_untracked(|c| c.preset.as_deref() == Some(name)) {
        ui.conversation.update(|c| c.preset = None);
        save_conversation(ui);
    }
}

pub fn rename_chat(ui: Ui, id: &str, title: String) {
    edit_chat(ui, id, move |c| c.title = title.clone());
}

pub fn toggle_pin(ui: Ui, id: &str) {
    edit_chat(ui, id, |c| c.pinned = !c.pinned);
}

/// Changes a saved conversation's details (not its messages), the open one or another.
fn edit_chat(ui: Ui, id: &str, edit: impl Fn(&mut Conversation)) {
    if ui.conversation.with_untracked(|c| c.id == id) {
        ui.conversation.update(|c| edit(c));
        save_conversation(ui);
    } else if let Some(mut c) = ui.conversations.with_untracked(|l| l.iter().find(|c| c.id == id).cloned()) {
        edit(&mut c);
        ui.conversations.update(|l| l.iter_mut().filter(|x| x.id == c.id).for_each(|x| *x = c.clone()));
        spawn_local(async move {
            if let Err(e) = chats::save(&c).await {
                ui.notice.set(Some(format!("The conversation could not be saved: {e}")));
            }
        });
    }
}

pub fn delete_chat(ui: Ui, id: &str) {
    let id = id.to_string();
    ui.conversations.update(|l| l.retain(|c| c.id != id));
    if ui.conversation.with_untracked(|c| c.id == id) {
        new_chat(ui);
        send(Request::Reset);
    }
    spawn_local(async move {
        if let Err(e) = chats::delete(&id).await {
            ui.notice.set(Some(format!("The conversation could not be deleted: {e}")));
        }
    });
}

/// When the context is full: drop the oldest exchange (the next reply
/// recomputes the rest), or start a fresh chat.
pub fn drop_oldest_turns(ui: Ui) {
    ui.conversation.update(|c| {
        let n = c.messages.iter().skip(1).position(|m| m.role == "user").map_or(c.messages.len(), |i| i + 1);
        c.messages.drain(..n.min(c.messages.len()));
    });
    ui.context_full.set(false);
    save_conversation(ui);
}

pub fn export_chats(ui: Ui) {
    let json = serde_json::to_string_pretty(&ui.conversations.get_untracked()).unwrap_or_default();
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(&json));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        if let Ok(a) = doc.create_element("a") {
            let a: web_sys::HtmlAnchorElement = wasm_bindgen::JsCast::unchecked_into(a);
            a.set_href(&url);
            a.set_download("eddy-conversations.json");
            a.click();
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

pub fn import_chats(ui: Ui, json: String) {
    let parsed: Result<Vec<Conversation>, _> = serde_json::from_str(&json).or_else(|_| serde_json::from_str::<Conversation>(&json).map(|c| vec![c]));
    match parsed {
        Ok(list) => {
            let n = list.len();
            spawn_local(async move {
                for c in &list {
                    let _ = chats::save(c).await;
                }
                if let Ok(all) = chats::list().await {
                    ui.conversations.set(all);
                }
                ui.info.set(Some(if n == 1 { "Imported 1 conversation.".to_string() } else { format!("Imported {n} conversations.") }));
            });
        }
        Err(e) => ui.notice.set(Some(format!("That file is not an Eddy export: {e}"))),
    }
}
