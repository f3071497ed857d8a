//! Weights on the GPU. Matrices stay in their file's quantization, rearranged
//! per row so that kernels read aligned 32-bit words: each row's block payloads
//! (the quantized values) first, then, in a second region, each row's block
//! scales. Rows of several source tensors can be assembled into one matrix
//! (Q|K|V, gate/up pairs, MoE experts), and a matrix larger than one binding
//! is split by rows into parts.

use crate::formats::DType;

/// How one GGML block is split into a payload (kept in the payload region) and
/// a scale (moved to the scale region). Bytes; the payload is a multiple of 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSplit {
    pub payload_bytes: u32,
    pub scale_bytes: u32,
    /// The scale is at the block's end (Q6_K's `d`) rather than its start.
    pub scale_last: bool,
}

impl BlockSplit {
    pub fn of(dtype: DType) -> Self {
        let (payload_bytes, scale_bytes, scale_last) = match dtype {
            // Float types: a "block" is one value; rows are copied as they are.
            DType::F32 => (4, 0, false),
            DType::F16 | DType::BF16 => (2, 0, false),
            DType::Q8_0 => (32, 2, false),
            DType::Q4_0 => (16, 2, false),
            DType::Q4_1 => (16, 4, false),
            // The fifth bits (4 bytes) and the nibbles (16) stay together.
            DType::Q5_0 => (20, 2, false),
            DType::Q5_1 => (20, 4, false),
            DType::Q4K => (144, 0, false),
            DType::Q5K => (176, 0, false),
            DType::Q6K => (208, 2, true),
            // Scales and 2-bit values (80 bytes) stay; d|dmin (the block's end) move.
            DType::Q2K => (80, 4, true),
            // High-bit mask, 2-bit values and 12 scale bytes (108) stay; d moves.
            DType::Q3K => (108, 2, true),
            DType::IQ4NL => (16, 2, false),
        };
        Self { payload_bytes, scale_bytes, scale_last }
    }
}

/// The per-row geometry of a matrix of `cols` columns of `dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    pub dtype: DType,
    pub cols: u64,
    pub blocks: u64,
    pub payload_words: u64,
    pub scale_words: u64,
    /// Bytes of one row in the source file.
    pub source_bytes: u64,
}

impl RowLayout {
    pub fn new(dtype: DType, cols: u64) -> Option<Self> {
        if cols % dtype.block_elems() != 0 {
            return None;
        }
        let split = BlockSplit::of(dtype);
        let blocks = cols / dtype.block_elems();
        let payload = blocks * u64::from(split.payload_bytes);
        if payload % 4 != 0 {
            return None;
        }
        Some(Self {
            dtype,
            cols,
            blocks,
            payload_words: payload / 4,
            scale_words: (blocks * u64::from(split.scale_bytes)).div_ceil(4),
            source_bytes: blocks * dtype.block_bytes(),
        })
    }

    pub fn gpu_row_bytes(&self) -> u64 {
        4 * (self.payload_words + self.scale_words)
    }

    /// Splits one source row into its payload and (padded) scale bytes.
    pub fn repack_row(&self, src: &[u8], payload: &mut Vec<u8>, scales: &mut Vec<u8>) {
        debug_assert_eq!(src.len() as u64, self.source_bytes);
        let split = BlockSplit::of(self.dtype);
        if split.scale_bytes == 0 {
            payload.extend_from_slice(src);
            return;
        }
        let (p, s) = (split.payload_bytes as usize, split.scale_bytes as usize);
        let scale_start = scales.len();
        for block in src.chunks_exact(self.dtype.block_bytes() as usize) {
            if split.scale_last {
                payload.extend_from_slice(&block[..p]);
                scales.extend_from_slice(&block[p..]);
            } else {
                scales.extend_from_slice(&block[..s]);
                payload.extend_from_slice(&block[s..]);
            }
        }
        scales.resize(scale_start + 4 * self.scale_words as usize, 0);
    }
}

/// One binding's worth of a matrix: rows `first_row..first_row + rows`.
#[derive(Clone)]
pub struct MatrixPart {
    pub buffer: wgpu::Buffer,
    pub first_row: u64,
    pub rows: u64,
    /// Word offset of the scale region in `buffer`.
    pub scale_offset_words: u64,
}

/// A weight matrix of `rows` × `cols` on the GPU (y = W·x reads rows).
#[derive(Clone)]
pub struct GpuMatrix {
    pub name: String,
    pub layout: RowLayout,
    pub rows: u64,
    pub parts: Vec<MatrixPart>,
    /// The source weights whose rows it holds.
    pub sources: Vec<RowMap>,
}

impl GpuMatrix {
    pub fn dtype(&self) -> DType {
        self.layout.dtype
    }

    pub fn cols(&self) -> u64 {
        self.layout.cols
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.buffer.size()).sum()
    }

    /// The part holding `row`, and the row's index within it.
    pub fn locate(&self, row: u64) -> (usize, u64) {
        let i = self.parts.iter().rposition(|p| p.first_row <= row).unwrap_or(0);
        (i, row - self.parts[i].first_row)
    }
}

/// A small f32 weight (norm gains, conv taps, expert bias).
#[derive(Clone)]
pub struct GpuVector {
    pub name: String,
    pub buffer: wgpu::Buffer,
    pub len: u64,
}

/// Where the rows of one source weight go in an assembled matrix:
/// `dst = offset + (src / tile) * tile * interleave + phase + src % tile`.
/// Plain concatenation has `interleave = 1, phase = 0`; gate/up pairs use
/// `interleave = 2` with phases `0` and `tile`, so pairs sit in the same tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMap {
    pub weight: String,
    pub offset: u64,
    pub tile: u64,
    pub interleave: u64,
    pub phase: u64,
}

impl RowMap {
    pub fn plain(weight: &str, offset: u64) -> Self {
        Self { weight: weight.to_string(), offset, tile: 1, interleave: 1, phase: 0 }
    }

    pub fn dst_row(&self, src: u64) -> u64 {
        self.offset + (src / self.tile) * self.tile * self.interleave + self.phase + src % self.tile
    }
}

/// How to assemble one GPU matrix.
#[derive(Debug, Clone)]
pub struct MatrixPlan {
    pub name: String,
    pub dtype: DType,
    pub rows: u64,
    pub cols: u64,
    pub sources: Vec<RowMap>,
    /// Parts may only split at multiples of this many rows.
    pub split_granularity: u64,
}

/// The tile used to interleave gate and up rows: the largest of 32, 16, 8 dividing `width`.
pub fn pair_tile(width: u64) -> u64 {
    [32, 16, 8, 4, 2, 1].into_iter().find(|t| width % t == 0).unwrap_or(1)
}

/// Uploads a whole matrix from GGML bytes (row-major, `rows` rows of `cols`),
/// split into parts of at most `part_limit` bytes. The streaming loader is the
/// way models arrive; this serves tests and small generated weights.
pub fn upload_matrix(gpu: &crate::gpu::Gpu, name: &str, dtype: DType, rows: u64, cols: u64, bytes: &[u8], part_limit: u64) -> GpuMatrix {
    let layout = RowLayout::new(dtype, cols).expect("columns fit whole blocks");
    assert_eq!(bytes.len() as u64, rows * layout.source_bytes, "{name}: byte count");
    let rows_per_part = (part_limit / layout.gpu_row_bytes()).clamp(1, rows.max(1));
    let mut parts = Vec::new();
    let mut first_row = 0;
    while first_row < rows {
        let n = rows_per_part.min(rows - first_row);
        let (mut payload, mut scales) = (Vec::new(), Vec::new());
        for r in first_row..first_row + n {
            let src = &bytes[(r * layout.source_bytes) as usize..((r + 1) * layout.source_bytes) as usize];
            layout.repack_row(src, &mut payload, &mut scales);
        }
        payload.extend_from_slice(&scales);
        // Kernels read parts as vec4<u32>: keep every word reachable.
        payload.resize(payload.len().div_ceil(16) * 16, 0);
        let buffer = wgpu::util::DeviceExt::create_buffer_init(
            &gpu.device,
            &wgpu::util::BufferInitDescriptor { label: Some(name), contents: &payload, usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC },
        );
        parts.push(MatrixPart { buffer, first_row, rows: n, scale_offset_words: n * layout.payload_words });
        first_row += n;
    }
    GpuMatrix { name: name.to_string(), layout, rows, parts, sources: vec![RowMap::plain(name, 0)] }
}
