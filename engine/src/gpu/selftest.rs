//! A quick check that the device computes correctly: a mat-vec on the GPU,
//! compared with the same product on the CPU.

use serde::{Deserialize, Serialize};
use wgpu::util::DeviceExt;

use super::{read_buffer, Gpu, GpuError};

/// The outcome of [`run`], shown on the first page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelfTestReport {
    pub passed: bool,
    pub rows: u32,
    pub cols: u32,
    /// Largest |gpu - cpu| relative to the largest |cpu| value.
    pub max_rel_error: f32,
    pub tolerance: f32,
}

const ROWS: u32 = 256;
const COLS: u32 = 1024;
const TOLERANCE: f32 = 1e-5;

/// Deterministic inputs in [-1, 1): a small LCG so that CPU and GPU see the same data.
fn inputs(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

pub async fn run(gpu: &Gpu) -> Result<SelfTestReport, GpuError> {
    let w = inputs((ROWS * COLS) as usize, 1);
    let x = inputs(COLS as usize, 2);
    let expected: Vec<f32> = w.chunks(COLS as usize).map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum()).collect();

    let device = &gpu.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("selftest"),
        source: wgpu::ShaderSource::Wgsl(crate::shaders::SELFTEST.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("selftest"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let storage = |label, data: &[f32], extra| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE | extra,
        })
    };
    let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("dims"),
        contents: bytemuck::cast_slice(&[ROWS, COLS]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let w_buf = storage("w", &w, wgpu::BufferUsages::empty());
    let x_buf = storage("x", &x, wgpu::BufferUsages::empty());
    let y_buf = storage("y", &vec![0.0; ROWS as usize], wgpu::BufferUsages::COPY_SRC);
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("selftest"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: dims.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: w_buf.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: x_buf.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 3, resource: y_buf.as_entire_binding() },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(ROWS, 1, 1);
    }
    gpu.queue.submit([encoder.finish()]);
    let bytes = read_buffer(gpu, &y_buf, u64::from(ROWS) * 4).await?;
    let got: &[f32] = bytemuck::cast_slice(&bytes);

    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let max_rel_error = got.iter().zip(&expected).fold(0f32, |m, (g, e)| m.max((g - e).abs() / scale));
    Ok(SelfTestReport {
        passed: max_rel_error.is_finite() && max_rel_error <= TOLERANCE,
        rows: ROWS,
        cols: COLS,
        max_rel_error,
        tolerance: TOLERANCE,
    })
}
