//! The wasm client. `hydrate` takes over the server-rendered page;
//! `worker_main` runs the engine host in a Web Worker.

mod download;
mod host;
mod js;
mod loading;
mod open_file;
mod resume;
mod store;
mod worker;

use app::client::Client;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // `?engine=page` runs the engine host in the page instead of a worker.
    let in_page = web_sys_search().contains("engine=page");
    // The client registers itself for the UI (app::client::Client::get).
    let _client = if in_page {
        Client::in_page(|emit| {
            let host = host::Host::new(move |e| emit(e));
            let files = host.clone();
            (Box::new(move |r| host.handle(r)), Box::new(move |id, folder, picked| files.open_files(id, folder, picked)))
        })
    } else {
        Client::worker("/worker.js")
    };
    leptos::mount::hydrate_body(app::App);
}

fn web_sys_search() -> String {
    js::get(&js::global(), "location").and_then(|l| js::get(&l, "search")).and_then(|s| s.as_string()).unwrap_or_default()
}

/// The worker's entry point (see `public/worker.js`).
#[wasm_bindgen]
pub fn worker_main(queued: js_sys::Array) {
    console_error_panic_hook::set_once();
    worker::run(queued);
}
