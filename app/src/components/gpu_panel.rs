//! Shows what this device's GPU offers and whether it computes correctly.

use engine::gpu::{selftest::SelfTestReport, AdapterReport};
use leptos::prelude::*;

use crate::state::format_bytes_binary;

/// Where the WebGPU check stands.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuState {
    Checking,
    /// The browser has no WebGPU at all.
    Unavailable,
    /// WebGPU exists but no adapter or device could be had, or the self-test could not run.
    Failed(String),
    Ready { adapter: AdapterReport, selftest: SelfTestReport },
}

#[cfg(feature = "hydrate")]
async fn probe() -> GpuState {
    use engine::gpu::{selftest, Gpu, GpuError, GpuOptions};
    match Gpu::new(GpuOptions::default()).await {
        Err(GpuError::WebGpuUnavailable) => GpuState::Unavailable,
        Err(e) => GpuState::Failed(e.to_string()),
        Ok(gpu) => match selftest::run(&gpu).await {
            Ok(selftest) => GpuState::Ready { adapter: gpu.report(), selftest },
            Err(e) => GpuState::Failed(format!("the GPU self-test could not run: {e}")),
        },
    }
}

/// The page's GPU check, shared by the panel and the chat (which explains a
/// missing WebGPU up front).
#[derive(Clone, Copy)]
pub struct GpuCheck(pub RwSignal<GpuState>);

/// Starts the check (in the browser) and provides it to the components below.
pub fn provide_gpu_check() -> GpuCheck {
    let state = RwSignal::new(GpuState::Checking);
    // Effects run only in the browser, after hydration.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move { state.set(probe().await) });
    });
    let check = GpuCheck(state);
    provide_context(check);
    check
}

#[component]
pub fn GpuPanel() -> impl IntoView {
    let state = expect_context::<GpuCheck>().0;
    view! {
        <section class="card gpu-panel" aria-live="polite" data-testid="gpu-panel">
            <h2>"Your GPU"</h2>
            {move || match state.get() {
                GpuState::Checking => view! {
                    <p data-testid="gpu-checking">"Checking for WebGPU…"</p>
                }.into_any(),
                GpuState::Unavailable => view! { <p data-testid="gpu-none">"This browser does not offer WebGPU."</p> }.into_any(),
                GpuState::Failed(reason) => view! {
                    <div class="notice error" data-testid="gpu-error">
                        <p><strong>"WebGPU is present but unusable: "</strong>{reason}</p>
                        <p>"Update your browser and graphics driver, close other tabs using the GPU, then reload."</p>
                    </div>
                }.into_any(),
                GpuState::Ready { adapter, selftest } => view! { <AdapterDetails adapter selftest/> }.into_any(),
            }}
        </section>
    }
}

#[component]
pub fn NoWebGpu() -> impl IntoView {
    view! {
        <div class="notice warning" data-testid="webgpu-unavailable">
            <p><strong>"This browser does not offer WebGPU"</strong>", so Eddy cannot run models here. "
               "Eddy computes everything on your own GPU through WebGPU; nothing is sent to a server."</p>
            <ul>
                <li>"Chrome or Edge 113 or newer on Windows, macOS, ChromeOS and Android 12+."</li>
                <li>"Safari 26 or newer on macOS, iOS and iPadOS."</li>
                <li>"Firefox 141 or newer on Windows; on other systems enable "<code>"dom.webgpu.enabled"</code>" in "<code>"about:config"</code>"."</li>
                <li>"Chrome on Linux: enable "<code>"chrome://flags/#enable-unsafe-webgpu"</code>" and "<code>"chrome://flags/#enable-vulkan"</code>", then restart the browser."</li>
            </ul>
            <p>"WebGPU also needs a secure page: open Eddy over HTTPS or from localhost. "
               "If your browser is recent, check that hardware acceleration is on in its settings."</p>
        </div>
    }
}

fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

#[component]
fn AdapterDetails(adapter: AdapterReport, selftest: SelfTestReport) -> impl IntoView {
    let l = adapter.limits.clone();
    let subgroups = match (adapter.subgroups, adapter.subgroups_in_kernels) {
        (true, false) => "yes (not used: the device was opened without them)",
        (v, _) => yes_no(v),
    };
    let verdict = if selftest.passed { "passed" } else { "FAILED" };
    view! {
        <dl class="facts">
            <dt>"Adapter"</dt><dd data-testid="adapter-name">{adapter.name.clone()}</dd>
            <dt>"Backend"</dt><dd>{adapter.backend.clone()}</dd>
            <dt><code>"shader-f16"</code></dt><dd data-testid="feature-shader-f16">{yes_no(adapter.shader_f16)}</dd>
            <dt><code>"subgroups"</code></dt><dd data-testid="feature-subgroups">{subgroups}</dd>
            <dt><code>"timestamp-query"</code></dt><dd data-testid="feature-timestamp-query">{yes_no(adapter.timestamp_query)}</dd>
        </dl>
        <h3>"Limits that matter for language models"</h3>
        <dl class="facts" data-testid="limits">
            <dt>"maxBufferSize"</dt><dd>{format_bytes_binary(l.max_buffer_size)}</dd>
            <dt>"maxStorageBufferBindingSize"</dt><dd data-testid="limit-max-storage-binding">{format_bytes_binary(l.max_storage_buffer_binding_size)}</dd>
            <dt>"maxStorageBuffersPerShaderStage"</dt><dd>{l.max_storage_buffers_per_shader_stage}</dd>
            <dt>"maxComputeWorkgroupStorageSize"</dt><dd>{format_bytes_binary(u64::from(l.max_compute_workgroup_storage_size))}</dd>
            <dt>"maxComputeInvocationsPerWorkgroup"</dt><dd>{l.max_compute_invocations_per_workgroup}</dd>
        </dl>
        <p class=if selftest.passed { "selftest ok" } else { "selftest bad" } data-testid="selftest-status" data-passed=selftest.passed.to_string()>
            "GPU self-test ("{selftest.rows}"×"{selftest.cols}" mat-vec checked on the CPU): "
            <strong>{verdict}</strong>
            {format!(" — max relative error {:.2e} (tolerance {:.0e})", selftest.max_rel_error, selftest.tolerance)}
        </p>
    }
}
