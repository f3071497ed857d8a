//! Reading weights back from the GPU, dequantized by the same kernels that
//! use them: what tests compare with reference dequantizations.

use super::{kernels::uniform, model::Model, ops::Ops};
use crate::{gpu::read_buffer, model::ModelError};

const ROWS_PER_PASS: usize = 4096;

/// The values of source weight `name` (rows in file order) as the GPU holds them.
pub async fn weight_values(model: &Model, name: &str) -> Result<Vec<f32>, ModelError> {
    let gpu = &model.gpu;
    if let Some(v) = model.weights.vectors.get(name) {
        let bytes = read_buffer(gpu, &v.buffer, v.len * 4).await?;
        return Ok(bytemuck::cast_slice::<u8, f32>(&bytes)[..v.len as usize].to_vec());
    }
    let (matrix, map) = model
        .weights
        .matrices
        .values()
        .find_map(|m| m.sources.iter().find(|s| s.weight == name).map(|s| (m, s)))
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    let spec = model.spec.weight(name)?;
    let src_rows = spec.dims[1..].iter().product::<u64>();
    let cols = matrix.cols() as usize;
    let step = uniform(gpu, "inspect-step", &[0; 4]);
    let ops = Ops { gpu, kernels: &model.kernels, step: &step, tuning: Default::default() };
    let mut out = Vec::with_capacity(src_rows as usize * cols);
    let rows: Vec<u32> = (0..src_rows).map(|r| map.dst_row(r) as u32).collect();
    for chunk in rows.chunks(ROWS_PER_PASS) {
        let tokens = wgpu::util::DeviceExt::create_buffer_init(
            &gpu.device,
            &wgpu::util::BufferInitDescriptor { label: Some("rows"), contents: bytemuck::cast_slice(chunk), usage: wgpu::BufferUsages::STORAGE },
        );
        let x = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("values"),
            size: (chunk.len() * cols * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        gpu.queue.write_buffer(&step, 0, bytemuck::cast_slice(&[chunk.len() as u32, 0, 0, 0]));
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in ops.embed(matrix, &tokens, &x, 1.0) {
                d.record(&mut pass, chunk.len() as u32, 0);
            }
        }
        gpu.queue.submit([enc.finish()]);
        let bytes = read_buffer(gpu, &x, x.size()).await?;
        out.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&bytes));
    }
    Ok(out)
}
