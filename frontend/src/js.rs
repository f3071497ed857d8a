//! Small bridges to browser APIs that work the same in a window and in a
//! worker (everything goes through the global object).

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

pub fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

pub fn global() -> JsValue {
    js_sys::global().into()
}

pub fn navigator() -> Option<JsValue> {
    get(&global(), "navigator")
}

/// Calls `target.method(args...)`.
pub fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(target, method).ok_or_else(|| JsValue::from_str(&format!("no {method}()")))?.dyn_into()?;
    let array: js_sys::Array = args.iter().collect();
    f.apply(target, &array)
}

pub async fn promise(value: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(value.dyn_into::<Promise>()?).await
}

/// A JS error's message, or its string form.
pub fn message(e: &JsValue) -> String {
    get(e, "message").and_then(|m| m.as_string()).or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"))
}


pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

pub async fn sleep_ms(ms: u32) {
    let p = Promise::new(&mut |resolve, _| {
        let _ = call(&global(), "setTimeout", &[resolve.into(), JsValue::from(ms)]);
    });
    let _ = JsFuture::from(p).await;
}

/// The size of this module's wasm memory.
pub fn wasm_memory_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

/// `fetch(url, {cache: "no-store", headers})`. Rejections (network errors) become `Err`.
pub async fn fetch(url: &str, headers: &[(&str, String)]) -> Result<web_sys::Response, JsValue> {
    let init = Object::new();
    Reflect::set(&init, &"cache".into(), &"no-store".into())?;
    let h = Object::new();
    for (k, v) in headers {
        Reflect::set(&h, &JsValue::from_str(k), &JsValue::from_str(v))?;
    }
    Reflect::set(&init, &"headers".into(), &h)?;
    let response = promise(call(&global(), "fetch", &[JsValue::from_str(url), init.into()])?).await?;
    response.dyn_into()
}

pub async fn response_bytes(response: &web_sys::Response) -> Result<js_sys::ArrayBuffer, JsValue> {
    promise(response.array_buffer()?.into()).await?.dyn_into()
}

/// Stops a response's body from arriving (`response.body.cancel()`).
pub fn cancel_body(response: &web_sys::Response) {
    if let Some(body) = get(response, "body") {
        if let Ok(p) = call(&body, "cancel", &[]) {
            // A rejection here only means the body had already ended.
            let _ = call(&p, "catch", &[wasm_bindgen::closure::Closure::once_into_js(|_: JsValue| {})]);
        }
    }
}

pub async fn response_text(response: &web_sys::Response) -> Result<String, JsValue> {
    Ok(promise(response.text()?.into()).await?.as_string().unwrap_or_default())
}

/// SHA-256 of `data` by the browser's SubtleCrypto, as lowercase hex.
pub async fn sha256_hex(data: &js_sys::ArrayBuffer) -> Result<String, JsValue> {
    let crypto = get(&global(), "crypto").ok_or("no crypto")?;
    let subtle = get(&crypto, "subtle").ok_or("no crypto.subtle (the page needs https or localhost)")?;
    let digest = promise(call(&subtle, "digest", &[JsValue::from_str("SHA-256"), data.into()])?).await?;
    Ok(hex::encode(Uint8Array::new(&digest).to_vec()))
}

/// `navigator.storage.estimate()`: (usage, quota) in bytes.
pub async fn storage_estimate() -> Option<(f64, f64)> {
    let storage = get(&navigator()?, "storage")?;
    let est = promise(call(&storage, "estimate", &[]).ok()?).await.ok()?;
    Some((get(&est, "usage")?.as_f64()?, get(&est, "quota")?.as_f64()?))
}

/// Runs `work` while holding the Web Lock `name`, unless another tab (or
/// worker) holds it: then `None`. Without Web Locks it just runs.
pub async fn with_lock<T: 'static>(name: &str, work: impl std::future::Future<Output = T> + 'static) -> Option<T> {
    use wasm_bindgen::closure::Closure;
    let Some(locks) = navigator().and_then(|n| get(&n, "locks")) else {
        return Some(work.await);
    };
    let (tx, rx) = futures::channel::oneshot::channel::<Option<T>>();
    let callback = Closure::once(move |lock: JsValue| -> JsValue {
        if lock.is_null() || lock.is_undefined() {
            let _ = tx.send(None);
            return Promise::resolve(&JsValue::UNDEFINED).into();
        }
        wasm_bindgen_futures::future_to_promise(async move {
            let result = work.await;
            let _ = tx.send(Some(result));
            Ok(JsValue::UNDEFINED)
        })
        .into()
    });
    let options = Object::new();
    let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    if call(&locks, "request", &[JsValue::from_str(name), options.into(), callback.as_ref().clone()]).is_err() {
        return None;
    }
    callback.forget();
    rx.await.ok().flatten()
}
