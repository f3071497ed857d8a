//! The site's storage as the page sees it: how much the browser lets it use
//! (`navigator.storage.estimate()`) and whether it keeps the data under
//! pressure (`persist()`, which exists in windows only, not in the worker
//! that downloads). Browser only.

use js_sys::{Function, Promise, Reflect};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::state::{StorageInfo, Ui};

fn storage_manager() -> Option<JsValue> {
    let navigator = web_sys::window()?.navigator();
    Reflect::get(&navigator, &"storage".into()).ok().filter(|s| !s.is_undefined())
}

async fn call(target: &JsValue, method: &str) -> Option<JsValue> {
    let f: Function = Reflect::get(target, &method.into()).ok()?.dyn_into().ok()?;
    let p: Promise = f.call0(target).ok()?.dyn_into().ok()?;
    JsFuture::from(p).await.ok()
}

fn number(v: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(v, &key.into()).ok()?.as_f64()
}

/// Reads usage, quota and persistence into `ui.storage`.
pub async fn refresh(ui: Ui) {
    let Some(storage) = storage_manager() else { return };
    let Some(estimate) = call(&storage, "estimate").await else { return };
    let persisted = call(&storage, "persisted").await.and_then(|v| v.as_bool()).unwrap_or(false);
    if let (Some(usage), Some(quota)) = (number(&estimate, "usage"), number(&estimate, "quota")) {
        ui.storage.set(Some(StorageInfo { usage: usage as u64, quota: quota as u64, persisted }));
    }
}

/// Asks the browser to keep this site's data under storage pressure, before
/// a download puts gigabytes there (a no-op once granted). Browsers decide
/// on their own (Chromium by engagement, Firefox by asking the user).
pub async fn request_persistence(ui: Ui) {
    let Some(storage) = storage_manager() else { return };
    if call(&storage, "persisted").await.and_then(|v| v.as_bool()) != Some(true) {
        let _ = call(&storage, "persist").await;
    }
    refresh(ui).await;
}
