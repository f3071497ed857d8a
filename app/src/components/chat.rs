//! The chat app: conversations, the model picker, the conversation, the prompt box.

use leptos::prelude::*;

use super::gpu_panel::{provide_gpu_check, GpuPanel, GpuState, NoWebGpu};
use crate::{
    markdown,
    protocol::GenerationStats,
    state::{format_bytes, format_duration, Message, ModelStatus, Ui},
};

#[cfg(feature = "hydrate")]
use crate::controller;

fn ui() -> Ui {
    expect_context::<Ui>()
}

#[component]
pub fn ChatApp() -> impl IntoView {
    let ui = Ui::new();
    provide_context(ui);
    let gpu = provide_gpu_check();
    let settings_open = RwSignal::new(false);
    let sidebar_open = RwSignal::new(false);
    let storage_open = RwSignal::new(false);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        controller::start(ui);
    });
    view! {
        <div class="app" class:sidebar-open=move || sidebar_open.get()
            // A .gguf dropped anywhere on the page is opened as a model.
            on:dragover=move |ev: leptos::ev::DragEvent| ev.prevent_default()
            on:drop=move |ev: leptos::ev::DragEvent| {
                #[cfg(feature = "hydrate")]
                {
                    let file = ev.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0));
                    if let Some(file) = file.filter(|f| f.name().to_lowercase().ends_with(".gguf")) {
                        ev.prevent_default();
                        controller::open_model_file(ui, file);
                    }
                }
                #[cfg(not(feature = "hydrate"))]
                let _ = ev;
            }>
            <Sidebar sidebar_open storage_open/>
            // Phone width: tapping beside the open sidebar closes it.
            <div class="scrim" aria-hidden="true" on:click=move |_| sidebar_open.set(false)></div>
            <section class="main" aria-label="Conversation">
                <Header settings_open sidebar_open/>
                <Show when=move || gpu.0.get() == GpuState::Unavailable>
                    <div class="card"><NoWebGpu/></div>
                </Show>
                <UpdateReady/>
                <ProgressBar/>
                <Notice/>
                <Messages/>
                <ContextFull/>
                <PromptBox/>
            </section>
            <Show when=move || settings_open.get()>
                <SettingsPanel settings_open/>
            </Show>
            <Show when=move || storage_open.get()>
                <StoragePanel storage_open/>
            </Show>
        </div>
    }
    .into_any()
}

#[component]
fn Header(settings_open: RwSignal<bool>, sidebar_open: RwSignal<bool>) -> impl IntoView {
    let ui = ui();
    let status_text = move || match ui.status.get() {
        ModelStatus::None => "no model".to_string(),
        ModelStatus::Downloading => "downloading".to_string(),
        ModelStatus::Loading => "loading".to_string(),
        ModelStatus::Ready => format!("{} ready", ui.loaded.get().unwrap_or_default()),
        ModelStatus::Offline => "not downloaded: unavailable offline".to_string(),
        ModelStatus::Failed(e) => format!("error: {e}"),
    };
    let status_class = move || match ui.status.get() {
        ModelStatus::Ready => "status ready",
        ModelStatus::Failed(_) => "status failed",
        ModelStatus::None | ModelStatus::Offline => "status idle",
        _ => "status busy",
    };
    view! {
        <header class="topbar">
            <button type="button" class="icon menu" aria-label="Conversations" on:click=move |_| sidebar_open.update(|o| *o = !*o)>"☰"</button>
            <h1 class="brand">"Eddy"</h1>
            <ModelPicker/>
            <span class=status_class data-testid="model-status" role="status" aria-live="polite"
                data-wasm-peak=move || ui.wasm_peak.get().to_string()
                data-load-times=move || serde_json::to_string(&ui.load_times.get()).unwrap_or_default()>{status_text}</span>
            <pre hidden data-testid="profile">{move || ui.profile.get()}</pre>
            // A failed download or load is tried again from where it stopped.
            <button type="button" class="secondary small" data-testid="retry"
                hidden=move || !(matches!(ui.status.get(), ModelStatus::Failed(_)) && ui.selected.get().is_some())
                on:click=move |_| {
                    ui.notice.set(None);
                    #[cfg(feature = "hydrate")]
                    if let Some(id) = ui.selected.get_untracked() {
                        controller::select_model(ui, &id);
                    }
                }>"Retry"</button>
            <span class="offline-badge" data-testid="offline" hidden=move || !ui.offline.get()
                title="No network: downloaded models still work">"offline"</span>
            <button type="button" class="install" data-testid="install" hidden=move || !ui.installable.get()
                on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    crate::pwa::install();
                }>"Install"</button>
            <ThemeToggle/>
            <button type="button" class="icon" aria-label="Settings" aria-expanded=move || settings_open.get().to_string()
                data-testid="settings-toggle" on:click=move |_| settings_open.update(|o| *o = !*o)>"⚙"</button>
        </header>
    }
    .into_any()
}

#[component]
fn ModelPicker() -> impl IntoView {
    let ui = ui();
    // Catalog models, plus cached ones the server no longer lists (offline).
    // Offline, only complete downloads can be chosen.
    let options = move || {
        let cached = ui.cached.get();
        let offline = ui.offline.get();
        let mut out: Vec<(String, String, bool)> = ui
            .catalog
            .get()
            .iter()
            .map(|m| {
                let c = cached.iter().find(|c| c.id == m.entry.id);
                let complete = c.is_some_and(|c| c.complete());
                let mut state = match c {
                    Some(c) if c.complete() => "downloaded".to_string(),
                    Some(c) => format!("{}% downloaded", c.stored_bytes * 100 / c.total_bytes.max(1)),
                    None => "not downloaded".to_string(),
                };
                if offline && !complete {
                    state = if c.is_some() { format!("{state}, unavailable offline") } else { "unavailable offline".to_string() };
                }
                let missing = m.entry.total_bytes.saturating_sub(c.map_or(0, |c| c.stored_bytes));
                let fits = if m.fits.is_err() {
                    ", does not fit this device"
                } else if ui.storage.get().is_some_and(|st| !complete && missing > st.free()) {
                    ", more than the free storage"
                } else {
                    ""
                };
                (m.entry.id.clone(), format!("{} · {} · {}{}", m.entry.name, format_bytes(m.entry.total_bytes), state, fits), complete || !offline)
            })
            .collect();
        for c in &cached {
            if !out.iter().any(|(id, _, _)| id == &c.id) {
                let state = if c.complete() { "downloaded" } else { "partly downloaded" };
                out.push((c.id.clone(), format!("{} · {} · {}", c.name, format_bytes(c.total_bytes), state), c.complete() || !offline));
            }
        }
        out
    };
    let on_change = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        if id.is_empty() {
            return;
        }
        #[cfg(feature = "hydrate")]
        controller::select_model(ui, &id);
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, ui);
    };
    view! {
        <label class="picker">
            <span class="visually-hidden">"Model"</span>
            <select data-testid="model-picker" on:change=on_change prop:value=move || ui.selected.get().unwrap_or_default()>
                <option value="" disabled=true>"Choose a model…"</option>
                {move || options().into_iter().map(|(id, label, available)| view! { <option value=id.clone() disabled=!available>{label}</option> }).collect_view()}
            </select>
        </label>
    }
    .into_any()
}

#[component]
fn ThemeToggle() -> impl IntoView {
    let theme = RwSignal::new(String::from("system"));
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Ok(t) = <gloo_storage::LocalStorage as gloo_storage::Storage>::get::<String>("eddy.theme") {
            theme.set(t);
        }
    });
    Effect::new(move |_| {
        let t = theme.get();
        #[cfg(feature = "hydrate")]
        if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
            if t == "system" {
                let _ = root.remove_attribute("data-theme");
            } else {
                let _ = root.set_attribute("data-theme", &t);
            }
            let _ = <gloo_storage::LocalStorage as gloo_storage::Storage>::set("eddy.theme", &t);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = t;
    });
    let next = move |_| {
        theme.update(|t| {
            *t = match t.as_str() {
                "system" => "light".into(),
                "light" => "dark".into(),
                _ => "system".into(),
            }
        })
    };
    view! {
        <button type="button" class="icon" data-testid="theme-toggle" on:click=next
            aria-label=move || format!("Theme: {} (change)", theme.get())>
            {move || match theme.get().as_str() { "light" => "☀", "dark" => "☾", _ => "◐" }}
        </button>
    }
    .into_any()
}

#[component]
fn ProgressBar() -> impl IntoView {
    let ui = ui();
    move || {
        ui.progress.get().map(|p| {
            let pct = if p.total > 0 { p.done as f64 * 100.0 / p.total as f64 } else { 0.0 };
            let speed = if p.bytes_per_s > 0.0 {
                format!(" · {}/s · {} left", format_bytes(p.bytes_per_s as u64), format_duration(p.eta_s))
            } else {
                String::new()
            };
            let cancel = p.download.clone().map(|id| {
                view! {
                    <button type="button" class="secondary small" data-testid="cancel-download" on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        controller::cancel_download(&id);
                        #[cfg(not(feature = "hydrate"))]
                        let _ = &id;
                    }>"Cancel"</button>
                }
            });
            view! {
                <div class="progress" data-testid="download-progress" role="progressbar" aria-label=p.label.clone()
                    aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{pct:.0}")>
                    <div class="progress-text">
                        <span>{p.label.clone()}</span>
                        <span>{format!("{} of {} ({pct:.0}%){speed}", format_bytes(p.done), format_bytes(p.total))}</span>
                        {cancel}
                    </div>
                    <div class="bar"><div class="fill" style=format!("width: {pct:.1}%")></div></div>
                    {p.note.clone().map(|n| view! { <div class="progress-note">{n}</div> })}
                </div>
            }
        })
    }
}

#[component]
fn Notice() -> impl IntoView {
    let ui = ui();
    view! {
        {dismissable(ui.notice, "notice error", "alert", "notice")}
        {dismissable(ui.info, "notice info", "status", "info")}
    }
}

/// A message shown while `text` holds one, with a button that clears it.
fn dismissable(text: RwSignal<Option<String>>, class: &'static str, role: &'static str, testid: &'static str) -> impl IntoView {
    move || {
        text.get().map(|t| {
            view! {
                <div class=class role=role data-testid=testid>
                    <span>{t}</span>
                    <button type="button" class="icon" aria-label="Dismiss" on:click=move |_| text.set(None)>"✕"</button>
                </div>
            }
        })
    }
}

/// A new release is installed: offer the reload that switches to it.
#[component]
fn UpdateReady() -> impl IntoView {
    let ui = ui();
    view! {
        <Show when=move || ui.update_ready.get()>
            <div class="notice info" role="status" data-testid="update-ready">
                <span>"A new version of Eddy is ready."</span>
                <button type="button" data-testid="update-reload" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    crate::pwa::apply_update();
                }>"Reload to update"</button>
            </div>
        </Show>
    }
    .into_any()
}

#[component]
fn ContextFull() -> impl IntoView {
    let ui = ui();
    view! {
        <Show when=move || ui.context_full.get()>
            <div class="notice warning" role="alert" data-testid="context-full">
                <span>"The conversation has filled the model's context window."</span>
                <button type="button" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    controller::new_chat(ui);
                }>"Start a new chat"</button>
                <button type="button" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    controller::drop_oldest_turns(ui);
                }>"Drop the oldest turns"</button>
            </div>
        </Show>
    }
    .into_any()
}

fn stats_line(s: &GenerationStats) -> String {
    let mut parts = vec![
        format!("prefill {:.0} tok/s", s.prefill_tokens_per_s),
        format!("decode {:.1} tok/s", s.decode_tokens_per_s),
        format!("{} tokens", s.generated_tokens),
        format!("context {}/{}", s.context_used, s.context_size),
    ];
    if s.reused_tokens > 0 {
        parts.push(format!("reused {} tokens (saved {:.2} s of prefill)", s.reused_tokens, s.prefill_seconds_saved));
    }
    parts.join(" · ")
}

/// ‹ 2/3 › for a message with versions (edits, regenerated replies).
fn version_nav(index: usize, m: &Message) -> Option<impl IntoView> {
    let (shown, total) = (m.version + 1, m.versions());
    (total > 1).then(|| {
        let ui = ui();
        let busy = move || ui.generating.get();
        view! {
            <span class="versions">
                <button type="button" class="icon small" data-testid="branch-prev" aria-label="Previous version"
                    disabled=move || busy() || shown == 1
                    on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        controller::switch_version(ui, index, -1);
                        #[cfg(not(feature = "hydrate"))]
                        let _ = (ui, index);
                    }>"‹"</button>
                <span data-testid="branch-index">{format!("{shown}/{total}")}</span>
                <button type="button" class="icon small" data-testid="branch-next" aria-label="Next version"
                    disabled=move || busy() || shown == total
                    on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        controller::switch_version(ui, index, 1);
                    }>"›"</button>
            </span>
        }
    })
}

fn message_view(index: usize, m: Message, editing: RwSignal<Option<usize>>) -> impl IntoView {
    let ui = ui();
    let ids = m.token_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let nav = version_nav(index, &m);
    let idle = move || !ui.generating.get() && ui.status.get() == ModelStatus::Ready;
    if m.role == "assistant" {
        let parts = crate::thinking::split(&m.text);
        let html = markdown::to_html(parts.answer);
        let thinking = parts.thinking.map(|t| {
            let (html, n, done) = (markdown::to_html(t), m.thinking_tokens, parts.done);
            let label = if done { format!("Thought for {n} tokens") } else { format!("Thinking… {n} tokens") };
            // Open while it streams, folded once the answer starts.
            view! {
                <details class="thinking" data-testid="thinking" data-thinking-tokens=n.to_string() open=!done>
                    <summary>{label}</summary>
                    <div class="body markdown" inner_html=html></div>
                </details>
            }
        });
        let stats = m.stats.as_ref().map(stats_line);
        let (reused, prefilled) = m.stats.as_ref().map_or((String::new(), String::new()), |s| (s.reused_tokens.to_string(), s.prefill_tokens.to_string()));
        // Where decode time went (benchmarks read these): CPU recording, waiting for the GPU.
        let (record_ms, wait_ms) = m.stats.as_ref().map_or((String::new(), String::new()), |s| (format!("{:.3}", s.decode_record_ms_per_token), format!("{:.3}", s.decode_wait_ms_per_token)));
        let pending = m.pending;
        view! {
            <article class="msg assistant" class:pending=m.pending data-testid="message-assistant" data-token-ids=ids
                data-reused-tokens=reused data-prefill-tokens=prefilled data-record-ms=record_ms data-wait-ms=wait_ms
                aria-busy=m.pending.to_string()>
                <div class="who">"Assistant"</div>
                {thinking}
                <div class="body markdown" inner_html=html></div>
                {tool_cards(index, &m)}
                {stats.map(|s| view! { <div class="stats" data-testid="message-stats">{s}</div> })}
                <div class="msg-actions" hidden=pending>
                    {nav}
                    <button type="button" class="secondary small" data-testid="regenerate" disabled=move || !idle()
                        title="Write this reply again (this version stays)"
                        on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            controller::regenerate(ui, index);
                        }>"Regenerate"</button>
                </div>
            </article>
        }
        .into_any()
    } else if m.role == "tool" {
        view! {
            <article class="msg tool" data-testid="message-tool">
                <div class="who">"Tool result"</div>
                <pre class="body" data-testid="tool-result">{m.text.clone()}</pre>
            </article>
        }
        .into_any()
    } else {
        let draft = RwSignal::new(m.text.clone());
        let text = m.text.clone();
        let save = move || {
            let t = draft.get_untracked();
            editing.set(None);
            #[cfg(feature = "hydrate")]
            controller::edit_message(ui, index, t);
            #[cfg(not(feature = "hydrate"))]
            let _ = t;
        };
        view! {
            <article class="msg user" data-testid="message-user">
                <div class="who">"You"</div>
                <Show when=move || editing.get() == Some(index)
                    fallback=move || view! { <div class="body">{text.clone()}</div> }>
                    <textarea class="edit" data-testid="edit-input" rows="3" aria-label="Edit the message"
                        prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev))
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                                ev.prevent_default();
                                save();
                            } else if ev.key() == "Escape" {
                                editing.set(None);
                            }
                        }></textarea>
                    <div class="msg-actions">
                        <button type="button" class="secondary small" on:click=move |_| editing.set(None)>"Cancel"</button>
                        <button type="button" class="primary small" data-testid="edit-save" disabled=move || !idle()
                            on:click=move |_| save()>"Save and ask"</button>
                    </div>
                </Show>
                <div class="msg-actions" hidden=move || editing.get() == Some(index)>
                    {nav}
                    <button type="button" class="secondary small" data-testid="edit-message" disabled=move || !idle()
                        title="Change this message and ask again (this version stays)"
                        on:click=move |_| editing.set(Some(index))>"Edit"</button>
                </div>
            </article>
        }
        .into_any()
    }
}

/// The tool calls of a reply, as cards: what would run, with what, and the
/// user's choice. Nothing runs until the user says so; a tool of the user's
/// own gets its result typed in.
fn tool_cards(index: usize, m: &Message) -> Option<impl IntoView> {
    if m.tool_calls.is_empty() {
        return None;
    }
    let ui = ui();
    let (answered, last) = ui.conversation.with_untracked(|c| c.tool_results(index));
    let cards = m
        .tool_calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let args = serde_json::to_string_pretty(&serde_json::Value::Object(call.arguments.clone())).unwrap_or_default();
            let waiting = last && j == answered && !m.pending;
            let state = if j < answered { "answered" } else if waiting { "waiting" } else { "pending" };
            let builtin = crate::tools::is_builtin(&call.name);
            let typed = RwSignal::new(String::new());
            let idle = move || !ui.generating.get() && ui.status.get() == ModelStatus::Ready;
            let actions = waiting.then(|| {
                let run = builtin.then(|| view! {
                    <button type="button" class="primary small" data-testid="tool-run" disabled=move || !idle()
                        on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            controller::run_tool_call(ui, index, j);
                        }>"Run"</button>
                });
                let own = (!builtin).then(|| view! {
                    <textarea rows="2" data-testid="tool-result-input" aria-label="The tool's result"
                        placeholder="This tool is yours: type its result"
                        prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev))></textarea>
                    <button type="button" class="primary small" data-testid="tool-send-result" disabled=move || !idle() || typed.get().trim().is_empty()
                        on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            controller::answer_tool_call(ui, index, j, typed.get_untracked());
                        }>"Send result"</button>
                });
                view! {
                    <div class="msg-actions">
                        {run}
                        {own}
                        <button type="button" class="secondary small" data-testid="tool-decline" disabled=move || !idle()
                            on:click=move |_| {
                                #[cfg(feature = "hydrate")]
                                controller::answer_tool_call(ui, index, j, "The user declined to run this call.".into());
                            }>"Decline"</button>
                    </div>
                }
            });
            view! {
                <div class="tool-call" data-testid="tool-call" data-tool=call.name.clone() data-state=state>
                    <div class="tool-name">"Calls "<code>{call.name.clone()}</code></div>
                    <pre class="tool-args" data-testid="tool-args">{args}</pre>
                    {actions}
                </div>
            }
        })
        .collect_view();
    Some(view! { <div class="tool-calls">{cards}</div> })
}

#[component]
fn Messages() -> impl IntoView {
    let ui = ui();
    let list = NodeRef::<leptos::html::Div>::new();
    // The user message being edited, if any.
    let editing = RwSignal::new(None::<usize>);
    // Keep the newest text in view while it streams.
    Effect::new(move |_| {
        ui.conversation.track();
        #[cfg(feature = "hydrate")]
        if let Some(el) = list.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let on_click = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(target) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
            if target.has_attribute("data-copy") {
                let code = target.closest(".code-block").ok().flatten().and_then(|b| b.query_selector("code").ok().flatten()).and_then(|c| c.text_content());
                if let (Some(code), Some(w)) = (code, web_sys::window()) {
                    let _ = w.navigator().clipboard().write_text(&code);
                    target.set_text_content(Some("Copied"));
                }
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    view! {
        <div class="messages" node_ref=list on:click=on_click aria-live="polite">
            {move || {
                let msgs = ui.conversation.with(|c| c.messages.clone());
                if msgs.is_empty() {
                    view! { <p class="empty">"Ask anything. The model runs on your GPU; nothing you type leaves this device."</p> }.into_any()
                } else {
                    msgs.into_iter().enumerate().map(|(i, m)| message_view(i, m, editing)).collect_view().into_any()
                }
            }}
        </div>
    }
    .into_any()
}

#[component]
fn PromptBox() -> impl IntoView {
    let ui = ui();
    let text = RwSignal::new(String::new());
    let ready = move || ui.status.get() == ModelStatus::Ready && !ui.generating.get();
    let submit = move || {
        let t = text.get_untracked();
        if t.trim().is_empty() || !ready() {
            return;
        }
        text.set(String::new());
        #[cfg(feature = "hydrate")]
        controller::send_message(ui, t);
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        } else if ev.key() == "Escape" {
            #[cfg(feature = "hydrate")]
            controller::stop();
        }
    };
    let usage = move || {
        ui.conversation.with(|c| c.messages.iter().rev().find_map(|m| m.stats.clone())).map(|s| format!("{} of {} context tokens used", s.context_used, s.context_size))
    };
    view! {
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); submit(); }>
            <label class="visually-hidden" for="prompt">"Message"</label>
            <textarea id="prompt" data-testid="prompt" rows="2" placeholder="Message Eddy (Enter to send, Shift+Enter for a new line, Esc to stop)"
                prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) on:keydown=on_keydown></textarea>
            <div class="composer-actions">
                <label class="secondary button small" title="Attach text files for the file tool to read">
                    "Attach"
                    <input type="file" multiple class="visually-hidden" data-testid="attach" accept=".txt,.md,.csv,.json,.log,text/*"
                        on:change=move |ev| {
                            #[cfg(feature = "hydrate")]
                            controller::attach_files(ui, &ev);
                            #[cfg(not(feature = "hydrate"))]
                            let _ = ev;
                        }/>
                </label>
                <span class="attachments" data-testid="attachments">
                    {move || ui.attachments.get().into_iter().map(|a| {
                        let name = a.name.clone();
                        view! {
                            <span class="chip" data-testid="attachment">{a.name.clone()}
                                <button type="button" class="icon small" aria-label=format!("Remove {}", a.name)
                                    on:click=move |_| ui.attachments.update(|all| all.retain(|f| f.name != name))>"✕"</button>
                            </span>
                        }
                    }).collect_view()}
                </span>
                <span class="usage" data-testid="context-usage">{usage}</span>
                <button type="button" class="secondary" data-testid="stop" disabled=move || !ui.generating.get()
                    on:click=move |_| {
                        #[cfg(feature = "hydrate")]
                        controller::stop();
                    }>"Stop"</button>
                <button type="submit" class="primary" data-testid="send" disabled=move || !ready()>"Send"</button>
            </div>
        </form>
    }
    .into_any()
}

#[component]
fn Sidebar(sidebar_open: RwSignal<bool>, storage_open: RwSignal<bool>) -> impl IntoView {
    let ui = ui();
    let query = RwSignal::new(String::new());
    let import_input = NodeRef::<leptos::html::Input>::new();
    let on_import = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = import_input.get() else { return };
            let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
            let promise = file.text();
            leptos::task::spawn_local(async move {
                if let Ok(v) = wasm_bindgen_futures::JsFuture::from(promise).await {
                    if let Some(t) = v.as_string() {
                        controller::import_chats(ui, t);
                    }
                }
            });
            let _ = input.unchecked_ref::<web_sys::HtmlInputElement>().set_value("");
        }
    };
    view! {
        <aside class="sidebar" aria-label="Conversations and models">
            <div class="sidebar-head">
                <button type="button" class="primary wide" data-testid="new-chat" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    controller::new_chat(ui);
                    sidebar_open.set(false);
                }>"New chat"</button>
                <button type="button" class="icon sidebar-close" aria-label="Close the conversation list"
                    on:click=move |_| sidebar_open.set(false)>"✕"</button>
            </div>
            <input type="search" class="conversation-search" placeholder="Search conversations" aria-label="Search conversations"
                data-testid="conversation-search" prop:value=move || query.get()
                on:input=move |ev| query.set(event_target_value(&ev))/>
            <Show when=move || !query.get().trim().is_empty()>
                <ul class="search-results" aria-label="Search results" data-testid="search-results">
                    {move || {
                        let hits = ui.conversations.with(|c| crate::state::search(c, &query.get()));
                        if hits.is_empty() {
                            return view! { <li class="muted">"No conversation matches."</li> }.into_any();
                        }
                        hits.into_iter().map(|h| {
                            let id = h.id.clone();
                            view! {
                                <li data-testid="search-result" data-id=h.id.clone()>
                                    <button type="button" class="conv-title" on:click=move |_| {
                                        #[cfg(feature = "hydrate")]
                                        controller::open_chat(ui, &id);
                                        #[cfg(not(feature = "hydrate"))]
                                        let _ = &id;
                                        query.set(String::new());
                                        sidebar_open.set(false);
                                    }>
                                        <span class="name">{h.title}</span>
                                        {(!h.snippet.is_empty()).then(|| view! { <span class="muted snippet">{h.snippet.clone()}</span> })}
                                    </button>
                                </li>
                            }
                        }).collect_view().into_any()
                    }}
                </ul>
            </Show>
            <nav class="conversations" aria-label="Saved conversations" hidden=move || !query.get().trim().is_empty()>
                <ul data-testid="conversation-list">
                    {move || {
                        let current = ui.conversation.with(|c| c.id.clone());
                        ui.conversations.with(|all| crate::state::listed(all)).into_iter().map(|c| {
                            let (id_open, id_rename, id_delete, id_pin) = (c.id.clone(), c.id.clone(), c.id.clone(), c.id.clone());
                            let pinned = c.pinned;
                            let title = c.title.clone();
                            let old_title = c.title.clone();
                            view! {
                                <li class:current=c.id == current class:pinned=pinned data-testid="conversation" data-id=c.id.clone() data-pinned=pinned.to_string()>
                                    <button type="button" class="conv-title" on:click=move |_| {
                                        #[cfg(feature = "hydrate")]
                                        controller::open_chat(ui, &id_open);
                                        #[cfg(not(feature = "hydrate"))]
                                        let _ = &id_open;
                                        sidebar_open.set(false);
                                    }>{title.clone()}</button>
                                    <button type="button" class="icon small pin" aria-pressed=pinned.to_string()
                                        aria-label=if pinned { format!("Unpin {title}") } else { format!("Pin {title}") } data-testid="pin-conversation" on:click=move |_| {
                                        #[cfg(feature = "hydrate")]
                                        controller::toggle_pin(ui, &id_pin);
                                        #[cfg(not(feature = "hydrate"))]
                                        let _ = &id_pin;
                                    }>{if pinned { "★" } else { "☆" }}</button>
                                    <button type="button" class="icon small" aria-label=format!("Rename {title}") data-testid="rename-conversation" on:click=move |_| {
                                        #[cfg(feature = "hydrate")]
                                        if let Some(w) = web_sys::window() {
                                            if let Ok(Some(t)) = w.prompt_with_message_and_default("Rename this conversation", &old_title) {
                                                if !t.trim().is_empty() {
                                                    controller::rename_chat(ui, &id_rename, t.trim().to_string());
                                                }
                                            }
                                        }
                                        #[cfg(not(feature = "hydrate"))]
                                        let _ = (&id_rename, &old_title);
                                    }>"✎"</button>
                                    <button type="button" class="icon small" aria-label="Delete conversation" data-testid="delete-conversation" on:click=move |_| {
                                        #[cfg(feature = "hydrate")]
                                        controller::delete_chat(ui, &id_delete);
                                        #[cfg(not(feature = "hydrate"))]
                                        let _ = &id_delete;
                                    }>"✕"</button>
                                </li>
                            }
                        }).collect_view()
                    }}
                </ul>
            </nav>
            <div class="sidebar-tools">
                <button type="button" class="secondary" data-testid="export-chats" on:click=move |_| {
                    #[cfg(feature = "hydrate")]
                    controller::export_chats(ui);
                }>"Export"</button>
                <label class="button secondary">
                    "Import"
                    <input type="file" accept="application/json,.json" class="visually-hidden" node_ref=import_input on:change=on_import data-testid="import-chats"/>
                </label>
            </div>
            <ModelStorage storage_open sidebar_open/>
            <details class="device">
                <summary>"This device"</summary>
                <GpuPanel/>
            </details>
        </aside>
    }
    .into_any()
}

#[component]
fn ModelStorage(storage_open: RwSignal<bool>, sidebar_open: RwSignal<bool>) -> impl IntoView {
    let ui = ui();
    let model_input = NodeRef::<leptos::html::Input>::new();
    let folder_input = NodeRef::<leptos::html::Input>::new();
    // A folder picker (`webkitdirectory`, which Leptos has no attribute for).
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    let on_open_folder = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        if let Some(list) = folder_input.get().and_then(|i| i.files()) {
            let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            controller::open_model_folder(ui, files);
            sidebar_open.set(false);
        }
    };
    let on_open = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        if let Some(file) = model_input.get().and_then(|i| i.files()).and_then(|f| f.get(0)) {
            controller::open_model_file(ui, file);
            // At phone width the sidebar covers the progress.
            sidebar_open.set(false);
        }
    };
    view! {
        <section class="storage" aria-label="Models on this device">
            <h2>"Models on this device"</h2>
            {move || ui.storage.get().map(|st| {
                let kept = if st.persisted { "kept by the browser" } else { "the browser may clear it when the disk runs low" };
                view! {
                    <p class="muted storage-quota" data-testid="storage-quota" data-usage=st.usage.to_string()
                        data-quota=st.quota.to_string() data-persisted=st.persisted.to_string()>
                        {format!("{} used of the {} this browser allows this site; {kept}", format_bytes(st.usage), format_bytes(st.quota))}
                    </p>
                }
            })}
            <ul data-testid="cached-models">
                {move || {
                    let cached = ui.cached.get();
                    if cached.is_empty() {
                        return view! { <li class="muted">"None yet."</li> }.into_any();
                    }
                    cached.into_iter().map(|m| {
                        let id = m.id.clone();
                        let state = if m.complete() { format_bytes(m.stored_bytes) } else { format!("{} of {}", format_bytes(m.stored_bytes), format_bytes(m.total_bytes)) };
                        view! {
                            <li data-testid="cached-model" data-id=m.id.clone() data-complete=m.complete().to_string()>
                                <span class="name">{m.name.clone()}</span>
                                <span class="size">{state}</span>
                                <button type="button" class="icon small" aria-label=format!("Delete {} from this device", m.name) data-testid="delete-model" on:click=move |_| {
                                    #[cfg(feature = "hydrate")]
                                    controller::delete_model(ui, &id);
                                    #[cfg(not(feature = "hydrate"))]
                                    let _ = &id;
                                }>"✕"</button>
                            </li>
                        }
                    }).collect_view().into_any()
                }}
            </ul>
            <label class="button secondary" title="A GGUF file on this device: stored here like a download, never uploaded">
                "Open a model file…"
                <input type="file" accept=".gguf" class="visually-hidden" node_ref=model_input on:change=on_open data-testid="open-model-file"/>
            </label>
            <label class="button secondary" title="A Hugging Face model folder on this device (config.json, tokenizer.json, .safetensors): stored here, never uploaded">
                "Open a model folder…"
                <input type="file" multiple class="visually-hidden" node_ref=folder_input on:change=on_open_folder data-testid="open-model-folder"/>
            </label>
            <button type="button" class="secondary" data-testid="storage-page" on:click=move |_| {
                #[cfg(feature = "hydrate")]
                leptos::task::spawn_local(crate::storage::refresh(ui));
                // At phone width the sidebar would cover the panel.
                sidebar_open.set(false);
                storage_open.set(true);
            }>"Manage storage"</button>
        </section>
    }
    .into_any()
}

/// Everything Eddy keeps on this device, with its size, and the way to remove it.
#[component]
fn StoragePanel(storage_open: RwSignal<bool>) -> impl IntoView {
    let ui = ui();
    let delete_everything = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let sure = web_sys::window()
                .and_then(|w| w.confirm_with_message("Delete every model and every conversation from this device?").ok())
                .unwrap_or(false);
            if sure {
                controller::delete_everything(ui);
            }
        }
    };
    view! {
        <aside class="settings storage-panel" aria-label="Storage on this device">
            <div class="settings-head">
                <h2>"Storage on this device"</h2>
                <button type="button" class="icon" aria-label="Close storage" data-testid="storage-close" on:click=move |_| storage_open.set(false)>"✕"</button>
            </div>
            {move || ui.storage.get().map(|st| view! {
                <dl class="storage-summary">
                    <dt>"Used"</dt><dd>{format_bytes(st.usage)}</dd>
                    <dt>"This browser allows this site"</dt><dd>{format_bytes(st.quota)}</dd>
                    <dt>"Kept when the disk runs low"</dt><dd data-testid="storage-persisted">{if st.persisted { "yes" } else { "no" }}</dd>
                </dl>
            })}
            <h3>"Models"</h3>
            <ul class="storage-rows">
                {move || ui.cached.get().into_iter().map(|m| {
                    let id = m.id.clone();
                    view! {
                        <li data-testid="storage-row" data-kind="model" data-id=m.id.clone() data-bytes=m.stored_bytes.to_string()>
                            <span class="name">{m.name.clone()}</span>
                            <span class="size">{format_bytes(m.stored_bytes)}</span>
                            <button type="button" class="icon small" aria-label=format!("Delete {}", m.name) data-testid="storage-delete" on:click=move |_| {
                                #[cfg(feature = "hydrate")]
                                controller::delete_model(ui, &id);
                                #[cfg(not(feature = "hydrate"))]
                                let _ = &id;
                            }>"✕"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <h3>"Conversations"</h3>
            <ul class="storage-rows">
                {move || ui.conversations.get().into_iter().map(|c| {
                    let id = c.id.clone();
                    let bytes = conversation_bytes(&c);
                    view! {
                        <li data-testid="storage-row" data-kind="conversation" data-id=c.id.clone() data-bytes=bytes.to_string()>
                            <span class="name">{c.title.clone()}</span>
                            <span class="size">{format_bytes(bytes)}</span>
                            <button type="button" class="icon small" aria-label=format!("Delete {}", c.title) data-testid="storage-delete" on:click=move |_| {
                                #[cfg(feature = "hydrate")]
                                controller::delete_chat(ui, &id);
                                #[cfg(not(feature = "hydrate"))]
                                let _ = &id;
                            }>"✕"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <button type="button" class="danger" data-testid="delete-everything" on:click=delete_everything>"Delete everything"</button>
        </aside>
    }
    .into_any()
}

/// A conversation's size as stored (its JSON record).
fn conversation_bytes(c: &crate::state::Conversation) -> u64 {
    serde_json::to_string(c).map_or(0, |j| j.len() as u64)
}

/// Choose, save or delete a preset (a system prompt with its sampling) for this conversation.
#[component]
fn Presets() -> impl IntoView {
    let ui = ui();
    let name = RwSignal::new(String::new());
    let chosen = move || ui.conversation.with(|c| c.preset.clone()).unwrap_or_default();
    view! {
        <div class="field presets">
            <label for="preset-select"><span>"Preset"</span></label>
            <div class="row">
                <select id="preset-select" data-testid="preset-select" prop:value=chosen
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        #[cfg(feature = "hydrate")]
                        controller::choose_preset(ui, (!v.is_empty()).then_some(v));
                        #[cfg(not(feature = "hydrate"))]
                        let _ = v;
                    }>
                    <option value="">"The model's settings"</option>
                    {move || ui.presets.get().into_iter().map(|p| {
                        let selected = ui.conversation.with(|c| c.preset.as_deref() == Some(p.name.as_str()));
                        view! { <option value=p.name.clone() selected=selected>{p.name.clone()}</option> }
                    }).collect_view()}
                </select>
                <button type="button" class="secondary small" data-testid="preset-delete" disabled=move || chosen().is_empty()
                    on:click=move |_| {
                        let n = chosen();
                        #[cfg(feature = "hydrate")]
                        controller::delete_preset(ui, &n);
                        #[cfg(not(feature = "hydrate"))]
                        let _ = n;
                    }>"Delete"</button>
            </div>
            <div class="row">
                <input type="text" data-testid="preset-name" placeholder="Name" aria-label="Preset name"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                <button type="button" class="secondary small" data-testid="preset-save" disabled=move || name.with(|n| n.trim().is_empty())
                    title="Keep this system prompt and these settings under a name"
                    on:click=move |_| {
                        let n = name.get_untracked();
                        name.set(String::new());
                        #[cfg(feature = "hydrate")]
                        controller::save_preset(ui, n);
                        #[cfg(not(feature = "hydrate"))]
                        let _ = n;
                    }>"Save as preset"</button>
            </div>
        </div>
    }
    .into_any()
}

/// Which tools the model may call: the two built-in ones, and the user's own
/// as JSON (OpenAI's function definitions with JSON Schema parameters).
#[component]
fn ToolSettings() -> impl IntoView {
    let ui = ui();
    let calculator = RwSignal::new(false);
    let reader = RwSignal::new(false);
    let own = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let apply = move || {
        let builtins = crate::tools::builtin_definitions();
        let mut tools = Vec::new();
        if calculator.get_untracked() {
            tools.push(builtins[0].clone());
        }
        if reader.get_untracked() {
            tools.push(builtins[1].clone());
        }
        match crate::tools::parse_definitions(&own.get_untracked()) {
            Ok(mine) => {
                error.set(None);
                tools.extend(mine);
            }
            Err(e) => error.set(Some(e.to_string())),
        }
        ui.tools.set(tools);
    };
    view! {
        <fieldset class="tools" data-testid="tools">
            <legend>"Tools the model may call"</legend>
            <label class="check"><input type="checkbox" data-testid="tool-calculator" prop:checked=move || calculator.get()
                on:change=move |ev| { calculator.set(event_target_checked(&ev)); apply(); }/>" Calculator"</label>
            <label class="check"><input type="checkbox" data-testid="tool-read-file" prop:checked=move || reader.get()
                on:change=move |ev| { reader.set(event_target_checked(&ev)); apply(); }/>" Read attached text files"</label>
            <label class="field">
                <span>"Your own tools (JSON: a list of functions)"</span>
                <textarea rows="3" data-testid="custom-tools" placeholder=r#"[{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]"#
                    prop:value=move || own.get() on:change=move |ev| { own.set(event_target_value(&ev)); apply(); }></textarea>
            </label>
            <label class="check"><input type="checkbox" data-testid="tools-required" prop:checked=move || ui.tools_required.get()
                on:change=move |ev| ui.tools_required.set(event_target_checked(&ev))/>" The reply to a message must call a tool"</label>
            {move || error.get().map(|e| view! { <p class="error" role="alert" data-testid="tools-error">{e}</p> })}
            <p class="muted">"Every call is shown to you first; nothing runs until you allow it."</p>
        </fieldset>
    }
    .into_any()
}

#[component]
fn SettingsPanel(settings_open: RwSignal<bool>) -> impl IntoView {
    let ui = ui();
    let num = move |label: &'static str, id: &'static str, min: &'static str, max: &'static str, step: &'static str, get: fn(&crate::protocol::GenerationParams) -> String, set: fn(&mut crate::protocol::GenerationParams, &str)| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input type="number" data-testid=id min=min max=max step=step prop:value=move || ui.params.with(get)
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        ui.params.update(|p| set(p, &v));
                        #[cfg(feature = "hydrate")]
                        controller::save_settings(ui);
                    }/>
            </label>
        }
    };
    view! {
        <aside class="settings" aria-label="Settings">
            <div class="settings-head">
                <h2>"Settings"</h2>
                <button type="button" class="icon" aria-label="Close settings" data-testid="settings-close" on:click=move |_| settings_open.set(false)>"✕"</button>
            </div>
            <Presets/>
            <label class="field">
                <span>"System prompt"</span>
                <textarea rows="3" data-testid="system-prompt" prop:value=move || ui.conversation.with(|c| c.system_prompt.clone())
                    on:change=move |ev| ui.conversation.update(|c| c.system_prompt = event_target_value(&ev))></textarea>
            </label>
            {num("Temperature", "temperature", "0", "2", "0.05", |p| p.temperature.to_string(), |p, v| if let Ok(x) = v.parse() { p.temperature = x })}
            {num("Top-k (0: off)", "top-k", "0", "1000", "1", |p| p.top_k.to_string(), |p, v| if let Ok(x) = v.parse() { p.top_k = x })}
            {num("Top-p", "top-p", "0", "1", "0.01", |p| p.top_p.to_string(), |p, v| if let Ok(x) = v.parse() { p.top_p = x })}
            {num("Min-p", "min-p", "0", "1", "0.01", |p| p.min_p.to_string(), |p, v| if let Ok(x) = v.parse() { p.min_p = x })}
            {num("Repetition penalty", "repetition-penalty", "1", "2", "0.01", |p| p.repetition_penalty.to_string(), |p, v| if let Ok(x) = v.parse() { p.repetition_penalty = x })}
            {num("Max tokens", "max-tokens", "1", "4096", "1", |p| p.max_tokens.to_string(), |p, v| if let Ok(x) = v.parse() { p.max_tokens = x })}
            <p class="muted">"Settings are kept per model on this device."</p>
            <ToolSettings/>
        </aside>
    }
    .into_any()
}
