//! Tensor element types and their GGML block layouts.

use std::fmt;

/// The tensor types the engine reads. Quantized types are stored in blocks of
/// `block_elems()` values taking `block_bytes()` bytes, exactly as GGML lays them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4K,
    Q5K,
    Q6K,
    Q2K,
    Q3K,
    IQ4NL,
}

impl DType {
    pub const ALL: [DType; 14] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q4K,
        DType::Q5K,
        DType::Q6K,
        DType::Q2K,
        DType::Q3K,
        DType::IQ4NL,
    ];

    /// Maps a GGML type id; `Err` carries the GGML name of a type we do not read.
    pub fn from_ggml(id: u32) -> Result<Self, String> {
        Ok(match id {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::Q4_0,
            3 => DType::Q4_1,
            6 => DType::Q5_0,
            7 => DType::Q5_1,
            8 => DType::Q8_0,
            12 => DType::Q4K,
            13 => DType::Q5K,
            10 => DType::Q2K,
            11 => DType::Q3K,
            14 => DType::Q6K,
            20 => DType::IQ4NL,
            30 => DType::BF16,
            other => return Err(ggml_type_name(other)),
        })
    }

    pub fn ggml_id(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Q4_0 => 2,
            DType::Q4_1 => 3,
            DType::Q5_0 => 6,
            DType::Q5_1 => 7,
            DType::Q8_0 => 8,
            DType::Q4K => 12,
            DType::Q5K => 13,
            DType::Q6K => 14,
            DType::Q2K => 10,
            DType::Q3K => 11,
            DType::IQ4NL => 20,
            DType::BF16 => 30,
        }
    }

    /// Maps a safetensors dtype string.
    pub fn from_safetensors(name: &str) -> Option<Self> {
        match name {
            "F32" => Some(DType::F32),
            "F16" => Some(DType::F16),
            "BF16" => Some(DType::BF16),
            _ => None,
        }
    }

    pub fn block_elems(self) -> u64 {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8_0 | DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::IQ4NL => 32,
            DType::Q4K | DType::Q5K | DType::Q6K | DType::Q2K | DType::Q3K => 256,
        }
    }

    pub fn block_bytes(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8_0 => 34,
            DType::Q4_0 => 18,
            DType::Q4_1 => 20,
            DType::Q5_0 => 22,
            DType::Q5_1 => 24,
            DType::Q4K => 144,
            DType::Q5K => 176,
            DType::Q6K => 210,
            DType::Q2K => 84,
            DType::Q3K => 110,
            DType::IQ4NL => 18,
        }
    }

    pub fn is_quantized(self) -> bool {
        self.block_elems() > 1
    }

    /// Bytes of `elems` values; `None` when `elems` is not a whole number of blocks.
    /// Also `None` when the byte count overflows (a hostile shape).
    pub fn bytes_for(self, elems: u64) -> Option<u64> {
        if elems % self.block_elems() != 0 {
            return None;
        }
        (elems / self.block_elems()).checked_mul(self.block_bytes())
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::Q8_0 => "Q8_0",
            DType::Q4_0 => "Q4_0",
            DType::Q4_1 => "Q4_1",
            DType::Q5_0 => "Q5_0",
            DType::Q5_1 => "Q5_1",
            DType::Q4K => "Q4_K",
            DType::Q5K => "Q5_K",
            DType::Q6K => "Q6_K",
            DType::Q2K => "Q2_K",
            DType::Q3K => "Q3_K",
            DType::IQ4NL => "IQ4_NL",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// GGML's names for its type ids, for error messages about types we do not support.
fn ggml_type_name(id: u32) -> String {
    const NAMES: [&str; 42] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4",
        "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4", "Q1_0",
    ];
    NAMES.get(id as usize).map_or_else(|| format!("GGML type {id}"), |n| format!("{n} (GGML type {id})"))
}
