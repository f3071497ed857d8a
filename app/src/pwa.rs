//! The installable app, as the page sees it: connectivity, a new release
//! waiting to be applied, and the browser's install offer. The service worker
//! itself and its registration live in `public/sw.js` and `public/pwa.js`
//! (a service worker must be a script; the registration runs before hydration
//! so that an early `beforeinstallprompt` is not missed). Browser only.

use gloo_storage::{LocalStorage, Storage};
use leptos::prelude::*;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};

use crate::{protocol::CatalogModel, state::Ui};

const SAVED_CATALOG: &str = "eddy.catalog";

fn pwa_object() -> Option<JsValue> {
    let window = web_sys::window()?;
    js_sys::Reflect::get(&window, &JsValue::from_str("eddyPwa")).ok().filter(|v| v.is_object())
}

fn flag(object: &JsValue, name: &str) -> bool {
    js_sys::Reflect::get(object, &JsValue::from_str(name)).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

fn call(name: &str) {
    if let Some(o) = pwa_object() {
        if let Ok(f) = js_sys::Reflect::get(&o, &JsValue::from_str(name)).and_then(|f| f.dyn_into::<js_sys::Function>()) {
            let _ = f.call0(&o);
        }
    }
}

fn listen(event: &str, f: impl FnMut() + 'static) {
    let Some(window) = web_sys::window() else { return };
    let closure = Closure::<dyn FnMut()>::new(f);
    let _ = window.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    // The page lives as long as the app: the listener never goes away.
    closure.forget();
}

/// Follows connectivity and the service worker's news. `on_online` runs when
/// the network comes back (to fetch the catalog again).
pub fn watch(ui: Ui, on_online: impl Fn() + 'static) {
    let sync = move || {
        if let Some(o) = pwa_object() {
            ui.update_ready.set(flag(&o, "updateReady"));
            ui.installable.set(flag(&o, "installable"));
        }
    };
    sync();
    listen("eddy-pwa", sync);
    if web_sys::window().is_some_and(|w| !w.navigator().on_line()) {
        ui.offline.set(true);
    }
    listen("offline", move || ui.offline.set(true));
    listen("online", move || {
        ui.offline.set(false);
        on_online();
    });
}

/// Reload into the release that is waiting.
pub fn apply_update() {
    call("update");
}

/// Show the browser's install dialog.
pub fn install() {
    call("install");
}

/// Keeps the catalog seen online, so that offline the picker still lists the
/// models that are not downloaded, as unavailable rather than missing.
pub fn remember_catalog(models: &[CatalogModel]) {
    let _ = LocalStorage::set(SAVED_CATALOG, models);
}

pub fn remembered_catalog() -> Vec<CatalogModel> {
    LocalStorage::get(SAVED_CATALOG).unwrap_or_default()
}
