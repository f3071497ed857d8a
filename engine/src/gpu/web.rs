//! What the browser says about its WebGPU adapter, read directly from
//! `navigator.gpu`: wgpu 30's WebGPU backend leaves the adapter's vendor and
//! architecture empty and hides `subgroups` even where the browser has them.
//! [`SubgroupsRequest`] asks for `subgroups` on the device wgpu creates.

use std::{cell::Cell, rc::Rc};

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
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

/// Makes the next device wgpu requests from `navigator.gpu` have `subgroups`.
///
/// wgpu 30's WebGPU backend translates only the features of its own table, and
/// `subgroups` is not in it, so the device it creates never has them, though
/// it passes WGSL to the browser untouched (where `enable subgroups;` then
/// works). While this value lives, `navigator.gpu.requestAdapter` is wrapped:
/// the adapter it returns, if it has `subgroups`, gets its own `requestDevice`
/// that adds `subgroups` to the descriptor's `requiredFeatures`. The wrappers
/// are own properties that shadow the prototypes' methods, removed on drop, so
/// nothing else on the page is changed. The alternatives were a fork of wgpu
/// (to patch its table) or a device made in JS and handed to wgpu, which its
/// API does not take.
pub struct SubgroupsRequest {
    gpu: JsValue,
    added: Rc<Cell<bool>>,
    _wrapper: Closure<dyn FnMut(JsValue) -> JsValue>,
}

impl SubgroupsRequest {
    /// Installs the wrapper; `None` without `navigator.gpu`.
    pub fn install() -> Option<Self> {
        let gpu = navigator_gpu()?;
        let original: Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
        let added = Rc::new(Cell::new(false));
        let on_device = added.clone();
        let target = gpu.clone();
        let wrapper = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |options: JsValue| {
            let promise: Promise = match original.call1(&target, &options).and_then(|p| p.dyn_into().map_err(JsValue::from)) {
                Ok(p) => p,
                Err(e) => return Promise::reject(&e).into(),
            };
            let added = on_device.clone();
            wasm_bindgen_futures::future_to_promise(async move {
                let adapter = JsFuture::from(promise).await?;
                wrap_request_device(&adapter, added);
                Ok(adapter)
            })
            .into()
        });
        Reflect::set(&gpu, &JsValue::from_str("requestAdapter"), wrapper.as_ref()).ok()?;
        Some(Self { gpu, added, _wrapper: wrapper })
    }

    /// Whether a device was requested with `subgroups` (and, since the request
    /// resolved, has them).
    pub fn granted(&self) -> bool {
        self.added.get()
    }
}

impl Drop for SubgroupsRequest {
    fn drop(&mut self) {
        let _ = Reflect::delete_property(self.gpu.unchecked_ref::<js_sys::Object>(), &JsValue::from_str("requestAdapter"));
    }
}

/// Gives `adapter` (if it has `subgroups`) a `requestDevice` that asks for them.
fn wrap_request_device(adapter: &JsValue, added: Rc<Cell<bool>>) {
    let has = get(adapter, "features")
        .and_then(|set| {
            let has: Function = get(&set, "has")?.dyn_into().ok()?;
            has.call1(&set, &JsValue::from_str("subgroups")).ok()
        })
        .is_some_and(|v| v.is_truthy());
    let Some(original) = get(adapter, "requestDevice").and_then(|f| f.dyn_into::<Function>().ok()) else { return };
    if !has {
        return;
    }
    let target = adapter.clone();
    // An adapter makes one device: the wrapper is called once (or never, and leaks a few bytes).
    let request = Closure::once_into_js(move |descriptor: JsValue| -> JsValue {
        let descriptor = if descriptor.is_object() { descriptor } else { js_sys::Object::new().into() };
        let features = get(&descriptor, "requiredFeatures").map(|f| Array::from(&f)).unwrap_or_default();
        if !features.includes(&JsValue::from_str("subgroups"), 0) {
            features.push(&JsValue::from_str("subgroups"));
        }
        let _ = Reflect::set(&descriptor, &JsValue::from_str("requiredFeatures"), &features);
        match original.call1(&target, &descriptor) {
            Ok(p) => {
                added.set(true);
                p
            }
            Err(e) => Promise::reject(&e).into(),
        }
    });
    let _ = Reflect::set(adapter, &JsValue::from_str("requestDevice"), &request);
}
