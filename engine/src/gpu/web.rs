//! What the browser says about its WebGPU adapter, read directly from
//! `navigator.gpu`: wgpu 30's WebGPU backend leaves the adapter's vendor and
//! architecture empty and hides `subgroups` even where the browser has them.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The browser's own description of its adapter.
pub struct BrowserAdapter {
    /// "vendor architecture description", whichever parts the browser fills in.
    pub name: String,
    pub features: Vec<String>,
}

fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// `navigator.gpu`, from a window or a worker.
pub fn navigator_gpu() -> Option<JsValue> {
    get(&js_sys::global().into(), "navigator").and_then(|nav| get(&nav, "gpu"))
}

pub async fn browser_adapter() -> Option<BrowserAdapter> {
    let gpu = navigator_gpu()?;
    let request: Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let promise: Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(promise).await.ok().filter(|a| !a.is_null())?;
    let info = get(&adapter, "info");
    let name = info
        .map(|info| {
            ["vendor", "architecture", "description"]
                .iter()
                .filter_map(|k| get(&info, k).and_then(|v| v.as_string()))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let mut features = Vec::new();
    if let Some(set) = get(&adapter, "features") {
        let iter = js_sys::try_iter(&set).ok().flatten();
        for value in iter.into_iter().flatten().flatten() {
            if let Some(s) = value.as_string() {
                features.push(s);
            }
        }
    }
    features.sort();
    Some(BrowserAdapter { name, features })
}
