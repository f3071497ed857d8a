use super::{Gpu, GpuError};

/// Copies `size` bytes from the start of `src` into a fresh mappable buffer and
/// returns them. The one way the engine reads GPU memory: it waits on the
/// device natively and on the browser's event loop in wasm.
pub async fn read_buffer(gpu: &Gpu, src: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, GpuError> {
    let size = size.div_ceil(wgpu::COPY_BUFFER_ALIGNMENT) * wgpu::COPY_BUFFER_ALIGNMENT;
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(src, 0, &staging, 0, size);
    let submission = gpu.queue.submit([encoder.finish()]);
    map_and_read(gpu, &staging, size, Some(submission)).await
}

/// Maps an already filled `MAP_READ` buffer and copies out its first `size`
/// bytes. Natively it waits for `submission` (the one that filled the buffer)
/// only, not for later ones: a decode step reads its token while the next
/// step runs.
pub async fn map_and_read(gpu: &Gpu, staging: &wgpu::Buffer, size: u64, submission: Option<wgpu::SubmissionIndex>) -> Result<Vec<u8>, GpuError> {
    let (tx, rx) = futures::channel::oneshot::channel();
    staging.map_async(wgpu::MapMode::Read, 0..size, move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    gpu.device
        .poll(wgpu::PollType::Wait { submission_index: submission, timeout: None })
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    #[cfg(target_arch = "wasm32")]
    let _ = (gpu, submission);
    rx.await
        .map_err(|_| GpuError::Readback("the device was lost before the map finished".into()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let bytes = staging
        .get_mapped_range(0..size)
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .to_vec();
    staging.unmap();
    Ok(bytes)
}
