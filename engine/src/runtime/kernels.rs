//! Compute pipelines, created once per variant and cached, with explicit bind
//! group layouts; and recorded dispatches that are replayed every pass.

use std::{
    cell::RefCell,
    collections::HashMap,
    rc::Rc,
};

use crate::{formats::DType, gpu::Gpu, shaders};

/// What a binding is, in declaration order (binding 0, 1, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Uniform,
    Read,
    Write,
}

pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub slots: Vec<Slot>,
}

/// Which shader variant: the file, the weight type it reads, its defines and
/// the lanes per output of mat-vec kernels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelKey {
    pub file: &'static str,
    pub wtype: Option<DType>,
    pub defines: Vec<&'static str>,
    /// Mat-vec workgroup size and lanes per output (0: not a mat-vec), and
    /// the vec4s of x staged in workgroup memory (0: none).
    pub wg: u32,
    pub tpr: u32,
    pub xs4: u32,
    /// Other pipeline-overridable constants.
    pub consts: Vec<(&'static str, u32)>,
}

impl KernelKey {
    pub fn new(file: &'static str) -> Self {
        Self { file, wtype: None, defines: Vec::new(), wg: 0, tpr: 0, xs4: 0, consts: Vec::new() }
    }

    pub fn constant(mut self, name: &'static str, value: u32) -> Self {
        self.consts.push((name, value));
        self
    }

    pub fn weight(mut self, dtype: DType) -> Self {
        self.wtype = Some(dtype);
        self
    }

    pub fn define(mut self, name: &'static str) -> Self {
        self.defines.push(name);
        self
    }

    pub fn matvec_shape(mut self, wg: u32, tpr: u32) -> Self {
        self.wg = wg;
        self.tpr = tpr;
        self
    }
}

fn wtype_file(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::Q8_0 => "q8_0",
        DType::Q4_0 => "q4_0",
        DType::Q4_1 => "q4_1",
        DType::Q5_0 => "q5_0",
        DType::Q5_1 => "q5_1",
        DType::Q4K => "q4_k",
        DType::Q5K => "q5_k",
        DType::Q6K => "q6_k",
        DType::Q2K => "q2_k",
        DType::Q3K => "q3_k",
        DType::IQ4NL => "iq4_nl",
    }
}

/// The bindings of an expanded shader, in binding order, read from its
/// `@group(0) @binding(N) var<…>` declarations: the shader is the one
/// definition of its signature (a table kept beside it had to follow every
/// `#if` by hand).
pub fn slots_of(source: &str) -> Vec<Slot> {
    let mut found: Vec<(u32, Slot)> = source
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let rest = line.strip_prefix("@group(0) @binding(")?;
            let (index, rest) = rest.split_once(')')?;
            let space = rest.split_once("var<")?.1.split_once('>')?.0;
            let slot = match space.replace(' ', "").as_str() {
                "uniform" => Slot::Uniform,
                "storage,read" => Slot::Read,
                "storage,read_write" => Slot::Write,
                other => panic!("binding {index}: unknown address space {other}"),
            };
            Some((index.parse().expect("a binding number"), slot))
        })
        .collect();
    found.sort_by_key(|&(i, _)| i);
    for (n, &(i, _)) in found.iter().enumerate() {
        assert_eq!(i as usize, n, "bindings must be numbered 0, 1, 2, … without gaps");
    }
    found.into_iter().map(|(_, slot)| slot).collect()
}

/// Creates pipelines on first use and keeps them.
pub struct Kernels {
    cache: RefCell<HashMap<KernelKey, Rc<Kernel>>>,
}

impl Default for Kernels {
    fn default() -> Self {
        Self::new()
    }
}

impl Kernels {
    pub fn new() -> Self {
        Self { cache: RefCell::new(HashMap::new()) }
    }

    /// Pipelines built so far.
    pub fn len(&self) -> usize {
        self.cache.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, gpu: &Gpu, key: &KernelKey) -> Rc<Kernel> {
        if let Some(k) = self.cache.borrow().get(key) {
            return k.clone();
        }
        let kernel = Rc::new(Self::build(gpu, key));
        self.cache.borrow_mut().insert(key.clone(), kernel.clone());
        kernel
    }

    fn build(gpu: &Gpu, key: &KernelKey) -> Kernel {
        let wtype = key.wtype.map(wtype_file).unwrap_or("f32");
        let mut source = shaders::compile(key.file, &key.defines, &[("WTYPE", wtype)]);
        if gpu.wgsl_enables_subgroups {
            source.insert_str(0, "enable subgroups;\n");
        }
        let slots = slots_of(&source);
        let label = format!("{}:{}:{}", key.file, wtype, key.defines.join(","));
        let desc = wgpu::ShaderModuleDescriptor { label: Some(&label), source: wgpu::ShaderSource::Wgsl(source.into()) };
        // wgpu's default checks bound every loop with a hidden counter (which
        // stops drivers from unrolling and pipelining the loads of the hot
        // loops) and guard every integer division. These kernels are ours:
        // their loops end and their divisors are checked model dimensions.
        // Buffer bounds checks stay on unless a benchmark turns them off.
        let checks = wgpu::ShaderRuntimeChecks {
            bounds_checks: gpu.bounds_checks,
            force_loop_bounding: false,
            int_div_checks: false,
            ..wgpu::ShaderRuntimeChecks::checked()
        };
        // SAFETY: see above; the shaders come from this crate, not from a model file.
        let module = unsafe { gpu.device.create_shader_module_trusted(desc, checks) };
        let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match slot {
                    Slot::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Slot::Read | Slot::Write => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: *slot == Slot::Read },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                },
                count: None,
            })
            .collect();
        let layout = gpu.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
        let pipeline_layout = gpu.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut constants: Vec<(&str, f64)> = Vec::new();
        if key.tpr > 0 {
            constants.extend([("WG", f64::from(key.wg)), ("TPR", f64::from(key.tpr))]);
        }
        if key.xs4 > 0 {
            constants.push(("XS4", f64::from(key.xs4)));
        }
        constants.extend(key.consts.iter().map(|&(n, v)| (n, f64::from(v))));
        let pipeline = gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            // Every kernel writes its workgroup memory before reading it.
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        Kernel { pipeline, layout, slots }
    }
}

/// A workgroup count along one axis, fixed or proportional to the pass's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Fixed(u32),
    /// ceil(n_tokens * per / div)
    Tokens { per: u32, div: u32 },
    /// ceil((pos0 + n_tokens) / div): tiles of the keys the pass attends to.
    Keys { div: u32 },
    /// ceil(n_tokens * per / div) + plus: the most tiles a grouping can make.
    TokensPlus { per: u32, div: u32, plus: u32 },
    /// ceil(n_tokens / div) for passes of `from..below` tokens, else none: one
    /// of two kernels for the same work, chosen by the pass's length.
    TokensWithin { div: u32, from: u32, below: u32 },
}

impl Count {
    pub fn tokens() -> Self {
        Count::Tokens { per: 1, div: 1 }
    }

    fn eval(self, n_tokens: u32, pos0: u32) -> u32 {
        match self {
            Count::Fixed(n) => n,
            Count::Tokens { per, div } => (n_tokens * per).div_ceil(div),
            Count::Keys { div } => (pos0 + n_tokens).div_ceil(div),
            Count::TokensPlus { per, div, plus } => (n_tokens * per).div_ceil(div) + plus,
            Count::TokensWithin { div, from, below } => if (from..below).contains(&n_tokens) { n_tokens.div_ceil(div) } else { 0 },
        }
    }
}

/// One recorded dispatch: a pipeline, its bindings, and its grid.
pub struct Dispatch {
    pub kernel: Rc<Kernel>,
    pub bind_group: wgpu::BindGroup,
    /// x may exceed the 65535 limit: it then folds into z.
    pub groups: [Count; 2],
    /// What it computes, for profiles ("matvec Q4_0 6144x2048").
    pub label: String,
}

impl Dispatch {
    pub fn new(gpu: &Gpu, kernel: Rc<Kernel>, buffers: &[&wgpu::Buffer], groups: [Count; 2], label: impl Into<String>) -> Self {
        let label = label.into();
        assert_eq!(buffers.len(), kernel.slots.len(), "{label}: {} buffers for {} bindings", buffers.len(), kernel.slots.len());
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(&label), layout: &kernel.layout, entries: &entries });
        Self { kernel, bind_group, groups, label }
    }

    /// Records the dispatch for a pass of `n_tokens` tokens after `pos0` cached ones.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32, pos0: u32) {
        let x = self.groups[0].eval(n_tokens, pos0);
        let y = self.groups[1].eval(n_tokens, pos0);
        if x == 0 || y == 0 {
            return;
        }
        let (gx, gz) = if x <= 65_535 { (x, 1) } else { (65_535, x.div_ceil(65_535)) };
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(gx, y, gz);
    }
}

/// A uniform buffer holding `words` (u32s and f32 bit patterns), padded to 16 bytes.
pub fn uniform(gpu: &Gpu, label: &str, words: &[u32]) -> wgpu::Buffer {
    uniform_bytes(gpu, label, bytemuck::cast_slice(words))
}

/// A uniform buffer holding `bytes` (a kernel's parameters: runtime/params.rs),
/// padded to 16 bytes.
pub fn uniform_bytes(gpu: &Gpu, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    let mut data = bytes.to_vec();
    data.resize(bytes.len().div_ceil(16).max(1) * 16, 0);
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: &data,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}
