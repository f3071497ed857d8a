//! Seconds from an arbitrary origin, natively and in the browser.

#[cfg(not(target_arch = "wasm32"))]
pub fn now() -> f64 {
    use std::{sync::OnceLock, time::Instant};
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

#[cfg(target_arch = "wasm32")]
pub fn now() -> f64 {
    js_sys::Date::now() / 1000.0
}
