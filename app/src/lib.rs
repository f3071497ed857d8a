#![recursion_limit = "512"]
//! Eddy's user interface (Leptos). Rendered on the server (`ssr`) and hydrated
//! in the browser (`hydrate`), where it drives the engine.

pub mod branches;
pub mod components;
pub mod manifest;
pub mod markdown;
pub mod state;
#[cfg(feature = "hydrate")]
pub mod chats;
#[cfg(feature = "hydrate")]
pub mod client;
#[cfg(feature = "hydrate")]
pub mod controller;
pub mod presets;
pub mod protocol;
pub mod thinking;
pub mod tools;
#[cfg(feature = "hydrate")]
pub mod pwa;
#[cfg(feature = "hydrate")]
pub mod storage;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    StaticSegment,
};

use components::chat::ChatApp;

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                // Scripts: this site's files, and the inline hydration script carrying this
                // response's nonce (the server also sends a header policy; see server/src/site.rs).
                {leptos::nonce::use_nonce().map(|n| view! {
                    <meta http-equiv="Content-Security-Policy" content=format!("script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'")/>
                })}
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="theme-color" content="#0f766e"/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="apple-touch-icon" href="/icons/apple-touch-icon.png"/>
                // The service worker and install offer, before the wasm app hydrates.
                <script src="/pwa.js" defer></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/eddy.css"/>
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml"/>
        <Meta name="description" content="Private LLM chat that runs entirely in your browser, on your own GPU."/>
        <Title text="Eddy"/>
        <Router>
            <Routes fallback=|| view! { <main><p class="not-found">"Page not found."</p></main> }>
                <Route path=StaticSegment("") view=HomePage/>
            </Routes>
        </Router>
    }
}

#[component]
fn HomePage() -> impl IntoView {
    view! { <ChatApp/> }
}
