//! The streaming loader: model bytes go to GPU buffers as they arrive, in
//! chunks of any size, from any source (a file, HTTP, IndexedDB). It holds at
//! most one partial row per tensor plus a few MiB of staged rows, never the model.

use std::collections::HashMap;

use super::weights::{GpuMatrix, GpuVector, MatrixPart, MatrixPlan, RowLayout, RowMap};
use crate::{
    formats::quant,
    gpu::Gpu,
    model::{ModelError, ModelSpec},
};

/// Rows staged for one `write_buffer` are flushed at this size.
const STAGE_BYTES: usize = 4 << 20;
/// Staged writes are submitted (and, natively, waited for) after this many bytes.
const SUBMIT_BYTES: u64 = 64 << 20;

/// The weights of a loaded model.
pub struct Weights {
    pub matrices: HashMap<String, GpuMatrix>,
    pub vectors: HashMap<String, GpuVector>,
}

impl Weights {
    pub fn matrix(&self, name: &str) -> &GpuMatrix {
        self.matrices.get(name).unwrap_or_else(|| panic!("matrix {name} was planned but not built"))
    }

    pub fn vector(&self, name: &str) -> &GpuVector {
        self.vectors.get(name).unwrap_or_else(|| panic!("vector {name} was planned but not built"))
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.matrices.values().map(GpuMatrix::gpu_bytes).sum::<u64>() + self.vectors.values().map(|v| v.buffer.size()).sum::<u64>()
    }
}

/// What the loader builds: matrices assembled from rows of source weights, and
/// small vectors converted to f32.
pub struct LoadPlan {
    pub matrices: Vec<MatrixPlan>,
    pub vectors: Vec<String>,
}

enum Target {
    Matrix { matrix: usize, map: RowMap },
    Vector { vector: usize },
}

/// One piece of one weight in one file, and where its bytes go.
struct Route {
    start: u64,
    len: u64,
    weight: String,
    /// Byte offset of the piece's first byte within the weight.
    weight_offset: u64,
    target: Target,
}

struct FileCursor {
    routes: Vec<Route>,
    next_route: usize,
    /// Bytes of the file consumed so far.
    offset: u64,
    /// Bytes of the current route's partial row.
    carry: Vec<u8>,
}

struct Run {
    part: usize,
    first_local_row: u64,
    rows: u64,
    payload: Vec<u8>,
    scales: Vec<u8>,
}

struct PendingMatrix {
    matrix: GpuMatrix,
    run: Option<Run>,
    rows_written: u64,
}

struct PendingVector {
    /// Allocated up front (with the matrices), filled at `finish`.
    vector: GpuVector,
    dtype: crate::formats::DType,
    bytes: Vec<u8>,
    expected: u64,
}

pub struct Loader<'g> {
    gpu: &'g Gpu,
    files: Vec<FileCursor>,
    matrices: Vec<PendingMatrix>,
    vectors: Vec<PendingVector>,
    total: u64,
    fed: u64,
    since_submit: u64,
    scratch: (Vec<u8>, Vec<u8>),
    /// Bytes held in open runs now, and the most ever held (the loader's memory).
    staged: u64,
    peak_staged: u64,
    /// Added to norm gains as they load ([`ModelSpec::norm_shift`]).
    norm_shift: f32,
}

/// The largest single buffer binding kernels may use on this device.
pub fn binding_limit(gpu: &Gpu) -> u64 {
    let l = &gpu.limits;
    (l.max_storage_buffer_binding_size as u64).min(l.max_buffer_size) & !255
}

impl<'g> Loader<'g> {
    /// Allocates every GPU buffer of `plan` (so an out-of-memory device fails
    /// before any download) and prepares to route the spec's bytes.
    pub fn new(gpu: &'g Gpu, spec: &ModelSpec, plan: &LoadPlan) -> Result<Self, ModelError> {
        let limit = binding_limit(gpu);
        let mut matrices = Vec::new();
        let mut targets: HashMap<&str, Target> = HashMap::new();
        for (mi, mp) in plan.matrices.iter().enumerate() {
            let layout = RowLayout::new(mp.dtype, mp.cols).ok_or_else(|| {
                ModelError::Invalid(format!("{}: {} columns do not fit {} blocks", mp.name, mp.cols, mp.dtype))
            })?;
            let row_bytes = layout.gpu_row_bytes();
            let mut rows_per_part = limit / row_bytes / mp.split_granularity * mp.split_granularity;
            if rows_per_part == 0 {
                return Err(ModelError::Gpu(format!(
                    "{} needs {} bytes in one binding, more than this GPU's limit of {limit}",
                    mp.name,
                    row_bytes * mp.split_granularity
                )));
            }
            rows_per_part = rows_per_part.min(mp.rows);
            let mut parts = Vec::new();
            let mut first_row = 0;
            while first_row < mp.rows {
                let rows = rows_per_part.min(mp.rows - first_row);
                let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&mp.name),
                    // Kernels read parts as vec4<u32>: keep every word reachable.
                    size: (rows * row_bytes).div_ceil(16) * 16,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                parts.push(MatrixPart { buffer, first_row, rows, scale_offset_words: rows * layout.payload_words });
                first_row += rows;
            }
            for map in &mp.sources {
                let w = spec.weight(&map.weight)?;
                if w.dtype != mp.dtype {
                    return Err(ModelError::UnsupportedTensorType {
                        name: w.name.clone(),
                        dtype: format!("{} (the rest of {} is {})", w.dtype, mp.name, mp.dtype),
                    });
                }
                targets.insert(&map.weight, Target::Matrix { matrix: mi, map: map.clone() });
            }
            matrices.push(PendingMatrix {
                matrix: GpuMatrix { name: mp.name.clone(), layout, rows: mp.rows, parts, sources: mp.sources.clone() },
                run: None,
                rows_written: 0,
            });
        }
        let mut vectors = Vec::new();
        for (vi, name) in plan.vectors.iter().enumerate() {
            let w = spec.weight(name)?;
            let len = w.elems();
            let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: (len.saturating_mul(4)).max(4),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            vectors.push(PendingVector { vector: GpuVector { name: name.clone(), buffer, len }, dtype: w.dtype, bytes: Vec::new(), expected: w.bytes() });
            targets.insert(name, Target::Vector { vector: vi });
        }
        let mut files: Vec<FileCursor> =
            spec.files.iter().map(|_| FileCursor { routes: Vec::new(), next_route: 0, offset: 0, carry: Vec::new() }).collect();
        let mut total = 0;
        for (name, target) in targets {
            let w = spec.weight(name)?;
            let bpe = w.dtype.block_bytes();
            for p in &w.pieces {
                let target = match &target {
                    Target::Matrix { matrix, map } => Target::Matrix { matrix: *matrix, map: map.clone() },
                    Target::Vector { vector } => Target::Vector { vector: *vector },
                };
                files[p.file].routes.push(Route {
                    start: p.start,
                    len: p.len,
                    weight: name.to_string(),
                    weight_offset: p.first_elem / w.dtype.block_elems() * bpe,
                    target,
                });
                total += p.len;
            }
        }
        for f in &mut files {
            f.routes.sort_by_key(|r| r.start);
        }
        Ok(Self { gpu, files, matrices, vectors, total, fed: 0, since_submit: 0, scratch: (Vec::new(), Vec::new()), staged: 0, peak_staged: 0, norm_shift: spec.norm_shift })
    }

    /// Bytes of tensor data the model needs, and how many have arrived.
    pub fn progress(&self) -> (u64, u64) {
        (self.fed, self.total)
    }

    /// The most bytes of rows the loader held at once (besides the caller's
    /// chunk): at most one staged run, whatever the model's size.
    pub fn peak_staged_bytes(&self) -> u64 {
        self.peak_staged
    }

    /// Byte ranges of `file` that hold needed tensor data, in order.
    pub fn needed_ranges(&self, file: usize) -> Vec<(u64, u64)> {
        self.files[file].routes.iter().map(|r| (r.start, r.start + r.len)).collect()
    }

    /// Feeds the bytes of `file` starting at `offset`. Chunks of one file must
    /// come in order; bytes outside any needed tensor are skipped.
    pub fn feed(&mut self, file: usize, offset: u64, bytes: &[u8]) -> Result<(), ModelError> {
        let cursor = self.files.get_mut(file).ok_or_else(|| ModelError::Invalid(format!("no source file {file}")))?;
        if offset > cursor.offset {
            // Bytes may be skipped only where no needed tensor lies.
            if let Some(route) = cursor.routes.get(cursor.next_route) {
                let next_needed = cursor.offset.max(route.start);
                if offset > next_needed {
                    return Err(ModelError::Invalid(format!(
                        "file {file}: bytes from {offset} arrived before those from {next_needed} (tensor {})",
                        route.weight
                    )));
                }
            }
            cursor.offset = offset;
        }
        // Skip what was already seen (a resent chunk overlaps).
        let skip = (cursor.offset - offset).min(bytes.len() as u64) as usize;
        let mut pos = offset + skip as u64;
        let mut data = &bytes[skip..];
        while !data.is_empty() {
            let f = &mut self.files[file];
            let Some(route) = f.routes.get(f.next_route) else {
                pos += data.len() as u64;
                break;
            };
            if pos < route.start {
                let gap = ((route.start - pos) as usize).min(data.len());
                pos += gap as u64;
                data = &data[gap..];
                continue;
            }
            let route_end = route.start + route.len;
            let n = ((route_end - pos) as usize).min(data.len());
            let within = pos - route.start;
            self.route_bytes(file, within, &data[..n])?;
            pos += n as u64;
            data = &data[n..];
            self.fed += n as u64;
            self.since_submit += n as u64;
            let f = &mut self.files[file];
            if pos == route_end {
                if !f.carry.is_empty() {
                    return Err(ModelError::Invalid(format!("{} ends inside a row", f.routes[f.next_route].weight)));
                }
                // The piece is complete: write its matrix's staged rows now rather
                // than at the end of the load, so that the loader holds one run,
                // not one per matrix (which grew with the model).
                if let Target::Matrix { matrix, .. } = f.routes[f.next_route].target {
                    self.flush_matrix(matrix);
                }
                let f = &mut self.files[file];
                f.next_route += 1;
            }
        }
        self.files[file].offset = pos;
        if self.since_submit >= SUBMIT_BYTES {
            self.submit_staged()?;
        }
        Ok(())
    }

    fn route_bytes(&mut self, file: usize, within: u64, data: &[u8]) -> Result<(), ModelError> {
        let f = &mut self.files[file];
        let route = &f.routes[f.next_route];
        match &route.target {
            Target::Vector { vector } => {
                self.vectors[*vector].bytes.extend_from_slice(data);
                Ok(())
            }
            Target::Matrix { matrix, map } => {
                let (matrix, map) = (*matrix, map.clone());
                let row_bytes = self.matrices[matrix].matrix.layout.source_bytes;
                let weight_offset = route.weight_offset;
                let mut carry = std::mem::take(&mut f.carry);
                // Offset (in the weight) of the first byte not yet in a complete row.
                let mut at = weight_offset + within - carry.len() as u64;
                let mut rest = data;
                if !carry.is_empty() {
                    let need = (row_bytes as usize - carry.len()).min(rest.len());
                    carry.extend_from_slice(&rest[..need]);
                    rest = &rest[need..];
                    if carry.len() as u64 == row_bytes {
                        self.put_row(matrix, map.dst_row(at / row_bytes), &carry)?;
                        at += row_bytes;
                        carry.clear();
                    }
                }
                let whole = rest.len() / row_bytes as usize * row_bytes as usize;
                for row in rest[..whole].chunks_exact(row_bytes as usize) {
                    self.put_row(matrix, map.dst_row(at / row_bytes), row)?;
                    at += row_bytes;
                }
                carry.extend_from_slice(&rest[whole..]);
                let f = &mut self.files[file];
                f.carry = carry;
                Ok(())
            }
        }
    }

    fn put_row(&mut self, matrix: usize, dst_row: u64, src: &[u8]) -> Result<(), ModelError> {
        let m = &mut self.matrices[matrix];
        if dst_row >= m.matrix.rows {
            return Err(ModelError::Invalid(format!("{}: row {dst_row} of {}", m.matrix.name, m.matrix.rows)));
        }
        let (part, local) = m.matrix.locate(dst_row);
        let contiguous = m.run.as_ref().is_some_and(|r| {
            r.part == part && r.first_local_row + r.rows == local && r.payload.len() + r.scales.len() < STAGE_BYTES
        });
        if !contiguous {
            self.flush_matrix(matrix);
            let (payload, scales) = std::mem::take(&mut self.scratch);
            self.matrices[matrix].run = Some(Run { part, first_local_row: local, rows: 0, payload, scales });
        }
        let m = &mut self.matrices[matrix];
        let run = m.run.as_mut().expect("a run is open");
        let before = run.payload.len() + run.scales.len();
        m.matrix.layout.repack_row(src, &mut run.payload, &mut run.scales);
        run.rows += 1;
        m.rows_written += 1;
        self.staged += (run.payload.len() + run.scales.len() - before) as u64;
        self.peak_staged = self.peak_staged.max(self.staged);
        Ok(())
    }

    /// Writes the open run of `matrix`, if any, and keeps its buffers for the next run.
    fn flush_matrix(&mut self, matrix: usize) {
        let m = &mut self.matrices[matrix];
        if let Some(mut run) = m.run.take() {
            Self::flush_run(self.gpu, &m.matrix, &run);
            self.staged -= (run.payload.len() + run.scales.len()) as u64;
            run.payload.clear();
            run.scales.clear();
            self.scratch = (run.payload, run.scales);
        }
    }

    fn flush_run(gpu: &Gpu, matrix: &GpuMatrix, run: &Run) {
        let part = &matrix.parts[run.part];
        let layout = &matrix.layout;
        gpu.queue.write_buffer(&part.buffer, run.first_local_row * layout.payload_words * 4, &run.payload);
        if layout.scale_words > 0 {
            let at = (part.scale_offset_words + run.first_local_row * layout.scale_words) * 4;
            gpu.queue.write_buffer(&part.buffer, at, &run.scales);
        }
    }

    fn submit_staged(&mut self) -> Result<(), ModelError> {
        self.gpu.queue.submit([]);
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| ModelError::Gpu(e.to_string()))?;
        self.since_submit = 0;
        Ok(())
    }

    /// The weights' GPU buffers, all allocated by [`Loader::new`]: kernels
    /// and passes can be built on them while the bytes are still arriving.
    pub fn weights(&self) -> Weights {
        Weights {
            matrices: self.matrices.iter().map(|m| (m.matrix.name.clone(), m.matrix.clone())).collect(),
            vectors: self.vectors.iter().map(|v| (v.vector.name.clone(), v.vector.clone())).collect(),
        }
    }

    /// Checks that every needed byte arrived and uploads the small vectors.
    pub fn finish(mut self) -> Result<(), ModelError> {
        for f in &self.files {
            if let Some(route) = f.routes.get(f.next_route) {
                return Err(ModelError::Incomplete(format!(
                    "tensor {} needs bytes {}..{} of its file, which ended at {}",
                    route.weight,
                    route.start,
                    route.start + route.len,
                    f.offset
                )));
            }
        }
        for i in 0..self.matrices.len() {
            self.flush_matrix(i);
        }
        for m in &self.matrices {
            if m.rows_written != m.matrix.rows {
                return Err(ModelError::Incomplete(format!("{}: {} of {} rows", m.matrix.name, m.rows_written, m.matrix.rows)));
            }
        }
        for v in &self.vectors {
            let name = &v.vector.name;
            if v.bytes.len() as u64 != v.expected {
                return Err(ModelError::Incomplete(format!("{name}: {} of {} bytes", v.bytes.len(), v.expected)));
            }
            let mut values = quant::dequantize(v.dtype, &v.bytes);
            if self.norm_shift != 0.0 && name.ends_with("norm.weight") {
                values.iter_mut().for_each(|g| *g += self.norm_shift);
            }
            if values.len() as u64 != v.vector.len {
                return Err(ModelError::Invalid(format!("{name}: {} values where its shape has {}", values.len(), v.vector.len)));
            }
            self.gpu.queue.write_buffer(&v.vector.buffer, 0, bytemuck::cast_slice(&values));
        }
        self.submit_staged()?;
        Ok(())
    }
}
