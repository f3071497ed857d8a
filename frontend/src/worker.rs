//! The engine host in a dedicated Web Worker: requests arrive as JSON by
//! postMessage, events leave the same way. `public/worker.js` loads the wasm
//! module and calls `worker_main` with the messages that arrived meanwhile.

use app::protocol::{Event, Request};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::host::Host;

fn post(scope: &DedicatedWorkerGlobalScope, event: &Event) {
    let json = serde_json::to_string(event).expect("events serialize");
    let _ = scope.post_message(&JsValue::from_str(&json));
}

fn dispatch(host: &Host, scope: &DedicatedWorkerGlobalScope, data: JsValue) {
    // Files from the user's disk travel as themselves (a File is cloned to the
    // worker without copying its bytes), beside the JSON requests.
    if let (Some(id), Some(files)) = (crate::js::get(&data, "open_file").and_then(|v| v.as_string()), crate::js::get(&data, "files")) {
        let folder = crate::js::get(&data, "folder").and_then(|v| v.as_string());
        let picked: Vec<web_sys::File> = js_sys::Array::from(&files).iter().filter_map(|f| f.dyn_into().ok()).collect();
        host.open_files(id, folder, picked);
        return;
    }
    let Some(text) = data.as_string() else { return };
    match serde_json::from_str::<Request>(&text) {
        Ok(request) => host.handle(request),
        Err(e) => post(scope, &Event::Error { message: format!("bad request: {e}") }),
    }
}

pub fn run(queued: js_sys::Array) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let post_scope = scope.clone();
    let host = Host::new(move |event| post(&post_scope, &event));
    for data in queued.iter() {
        dispatch(&host, &scope, data);
    }
    let (h, s) = (host.clone(), scope.clone());
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |e: MessageEvent| dispatch(&h, &s, e.data()));
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
}
