use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why no usable GPU device could be had.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error("this browser does not expose WebGPU (navigator.gpu is missing)")]
    WebGpuUnavailable,
    #[error("no GPU adapter was found: {0}")]
    NoAdapter(String),
    #[error("the GPU adapter refused to create a device: {0}")]
    RequestDevice(String),
    #[error("reading a GPU buffer back failed: {0}")]
    Readback(String),
}

/// What the engine may use from the adapter. Tests turn features off to cover
/// every kernel variant (the browser's SwiftShader has no `shader-f16`).
#[derive(Debug, Clone, Copy)]
pub struct GpuOptions {
    pub allow_f16: bool,
    pub allow_subgroups: bool,
    /// Keep wgpu's bounds checks in the kernels (natively; the browser
    /// compiles WGSL with its own). Off only to measure what they cost.
    pub bounds_checks: bool,
    /// Use the GPU's matrix units through wgpu's experimental cooperative
    /// matrices where the adapter offers 16×16×16 f16 products with f32 sums
    /// (natively only; the browser's WebGPU has none yet).
    pub allow_coop_matrix: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self { allow_f16: true, allow_subgroups: true, bounds_checks: true, allow_coop_matrix: true }
    }
}

/// The limits that decide which models fit and how kernels are tiled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LimitsReport {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
}

/// A description of the adapter, for people (the first page) and for checks
/// (does a model's manifest fit this device?).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub driver: String,
    pub shader_f16: bool,
    pub subgroups: bool,
    /// Whether the engine's kernels can use subgroups here (wgpu may not pass them on).
    pub subgroups_in_kernels: bool,
    pub timestamp_query: bool,
    pub limits: LimitsReport,
}

/// A device and its queue, with the capabilities the kernels were built for.
#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub adapter_features: wgpu::Features,
    pub limits: wgpu::Limits,
    /// `shader-f16` is enabled on the device and kernels may use `f16`.
    pub f16: bool,
    /// Subgroup operations are enabled on the device.
    pub subgroups: bool,
    /// The smallest subgroup the device may run (0 without subgroups).
    pub subgroup_min_size: u32,
    /// Kernels using subgroups must say `enable subgroups;`: the browser's
    /// WGSL compiler requires the directive, and Naga (native) rejects it.
    pub wgsl_enables_subgroups: bool,
    /// Features the browser lists for its adapter (empty natively); wgpu's
    /// WebGPU backend does not pass all of them on.
    pub browser_features: Vec<String>,
    /// See [`GpuOptions::bounds_checks`].
    pub bounds_checks: bool,
    /// Prefill mat-mats may run on the matrix units (matmul_coop.wgsl): the
    /// device has cooperative matrices of 16×16×16 f16 → f32, shader-f16 and
    /// subgroups of exactly 32 lanes (the kernel's tile layout).
    pub coop_matrix: bool,
    /// Why the device was lost, once it is, and who waits to hear of it
    /// (set by wgpu's device-lost callback).
    lost: std::sync::Arc<std::sync::Mutex<Lost>>,
}

#[derive(Default)]
struct Lost {
    reason: Option<String>,
    waiters: Vec<futures::channel::oneshot::Sender<String>>,
}

/// Whether matmul_coop.wgsl can run on this adapter: cooperative matrices of
/// 16×16×16 with f16 inputs and f32 sums, and subgroups of exactly 32 lanes.
fn coop_matrix_usable(adapter: &wgpu::Adapter, info: &wgpu::AdapterInfo) -> bool {
    let features = adapter.features();
    let needed = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
    if !features.contains(needed) || info.subgroup_min_size != 32 || info.subgroup_max_size != 32 {
        return false;
    }
    adapter.cooperative_matrix_properties().iter().any(|p| {
        p.m_size == 16 && p.n_size == 16 && p.k_size == 16 && p.ab_type == wgpu::CooperativeScalarType::F16 && p.cr_type == wgpu::CooperativeScalarType::F32
    })
}

impl Gpu {
    /// Opens the best adapter: the browser's WebGPU on wasm32, a high-performance
    /// Vulkan/Metal/DX12 adapter natively.
    pub async fn new(options: GpuOptions) -> Result<Self, GpuError> {
        let backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12
        };
        #[cfg(target_arch = "wasm32")]
        if super::web::navigator_gpu().is_none() || !wgpu::util::is_browser_webgpu_supported().await {
            return Err(GpuError::WebGpuUnavailable);
        }
        #[cfg(target_arch = "wasm32")]
        {
            let browser = super::web::browser_adapter().await;
            let offers_subgroups = browser.as_ref().is_some_and(|b| b.features.iter().any(|f| f == "subgroups"));
            let attempt = if options.allow_subgroups && offers_subgroups {
                let request = super::web::SubgroupsRequest::install();
                let attempt = Self::open(backends, options).await;
                let granted = request.as_ref().is_some_and(|r| r.granted());
                drop(request);
                match attempt {
                    Ok(mut gpu) => {
                        if granted {
                            gpu.subgroups = true;
                            gpu.subgroup_min_size = gpu.info.subgroup_min_size;
                            gpu.wgsl_enables_subgroups = true;
                        }
                        Ok(gpu)
                    }
                    // A device with subgroups was refused: one without them is still a device.
                    Err(_) => Self::open(backends, options).await,
                }
            } else {
                Self::open(backends, options).await
            };
            let mut gpu = attempt?;
            if let Some(browser) = browser {
                if gpu.info.name.is_empty() {
                    gpu.info.name = browser.name;
                }
                gpu.browser_features = browser.features;
            }
            Ok(gpu)
        }
        #[cfg(not(target_arch = "wasm32"))]
        Self::open(backends, options).await
    }

    async fn open(backends: wgpu::Backends, options: GpuOptions) -> Result<Self, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        Self::from_adapter(adapter, options).await
    }

    async fn from_adapter(adapter: wgpu::Adapter, options: GpuOptions) -> Result<Self, GpuError> {
        let adapter_features = adapter.features();
        let mut wanted = wgpu::Features::empty();
        if options.allow_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        if options.allow_subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        wanted |= wgpu::Features::TIMESTAMP_QUERY;
        let info = adapter.get_info();
        let coop_matrix = options.allow_coop_matrix && options.allow_f16 && options.allow_subgroups && coop_matrix_usable(&adapter, &info);
        if coop_matrix {
            wanted |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let required_features = adapter_features & wanted;
        // Ask for everything the adapter offers: models need the largest buffers it allows.
        let required_limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("eddy"),
                required_features,
                required_limits: required_limits.clone(),
                // SAFETY: the one experimental feature asked for is cooperative
                // matrices, used by one kernel whose results the engine's tests
                // check against a CPU reference on devices that have them.
                experimental_features: if coop_matrix { unsafe { wgpu::ExperimentalFeatures::enabled() } } else { wgpu::ExperimentalFeatures::disabled() },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = std::sync::Arc::new(std::sync::Mutex::new(Lost::default()));
        let on_lost = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = on_lost.lock() {
                let why = format!("{reason:?}{}{message}", if message.is_empty() { "" } else { ": " });
                for waiter in l.waiters.drain(..) {
                    let _ = waiter.send(why.clone());
                }
                l.reason = Some(why);
            }
        });
        let features = device.features();
        let subgroups = features.contains(wgpu::Features::SUBGROUP);
        Ok(Self {
            f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups,
            subgroup_min_size: if subgroups { info.subgroup_min_size } else { 0 },
            wgsl_enables_subgroups: false,
            limits: device.limits(),
            info,
            adapter_features,
            browser_features: Vec::new(),
            bounds_checks: options.bounds_checks,
            coop_matrix: coop_matrix && features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP),
            lost,
            device,
            queue,
        })
    }

    /// A CPU implementation of the API (SwiftShader, lavapipe): every
    /// workgroup barrier costs, and a pass over a large model takes seconds.
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Why the device was lost (a driver reset, a crash, `destroy`), if it was:
    /// nothing made on it works any more, and a new `Gpu` is needed.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.reason.clone())
    }

    /// Resolves with the reason once the device is lost (at once if it is).
    /// It holds no reference to the device: a host can wait on it for as long
    /// as it likes, where polling `lost` would only see a loss at its next look
    /// (the browser settles `GPUDevice.lost` when it pleases).
    pub fn when_lost(&self) -> impl std::future::Future<Output = String> + 'static {
        let (tx, rx) = futures::channel::oneshot::channel();
        if let Ok(mut l) = self.lost.lock() {
            match &l.reason {
                Some(why) => {
                    let _ = tx.send(why.clone());
                }
                None => l.waiters.push(tx),
            }
        }
        // A dropped sender (the lock poisoned, or the device freed unlost) never resolves.
        async move {
            match rx.await {
                Ok(why) => why,
                Err(_) => std::future::pending().await,
            }
        }
    }

    fn has_feature(&self, feature: wgpu::Features, browser_name: &str) -> bool {
        self.adapter_features.contains(feature) || self.browser_features.iter().any(|f| f == browser_name)
    }

    pub fn report(&self) -> AdapterReport {
        let l = &self.limits;
        let name = if self.info.name.is_empty() { "unnamed adapter".to_string() } else { self.info.name.clone() };
        AdapterReport {
            name,
            backend: format!("{:?}", self.info.backend),
            driver: [self.info.driver.as_str(), self.info.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            shader_f16: self.has_feature(wgpu::Features::SHADER_F16, "shader-f16"),
            subgroups: self.has_feature(wgpu::Features::SUBGROUP, "subgroups"),
            subgroups_in_kernels: self.subgroups,
            timestamp_query: self.has_feature(wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
            limits: LimitsReport {
                max_buffer_size: l.max_buffer_size,
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size as u64,
                max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
                max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            },
        }
    }
}
