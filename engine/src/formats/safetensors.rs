//! safetensors: an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range, then the raw little-endian data.

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

use super::DType;

const MAX_HEADER: u64 = 100 << 20;
const MAX_TENSORS: usize = 1 << 16;
const MAX_DIMS: usize = 8;

#[derive(Debug, Error, PartialEq)]
pub enum SafetensorsError {
    #[error("the safetensors header is truncated: it needs at least {needed} bytes, {available} are there")]
    Truncated { needed: u64, available: u64 },
    #[error("corrupt safetensors header: {0}")]
    Corrupt(String),
    #[error("tensor {name} has dtype {dtype}, which Eddy cannot read (F32, F16 and BF16 are supported)")]
    UnsupportedDType { name: String, dtype: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SafeTensorInfo {
    pub name: String,
    pub dtype: DType,
    /// PyTorch order: the last dimension is contiguous.
    pub shape: Vec<u64>,
    /// Absolute byte range in the file.
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone)]
pub struct SafetensorsFile {
    pub tensors: Vec<SafeTensorInfo>,
    pub metadata: BTreeMap<String, String>,
    /// Absolute offset of the data section (8 + header length).
    pub data_offset: u64,
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Parses the header from the first bytes of a safetensors file.
pub fn parse(bytes: &[u8]) -> Result<SafetensorsFile, SafetensorsError> {
    let available = bytes.len() as u64;
    if available < 8 {
        return Err(SafetensorsError::Truncated { needed: 8, available });
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(SafetensorsError::Corrupt(format!("a header of {n} bytes")));
    }
    if available < 8 + n {
        return Err(SafetensorsError::Truncated { needed: 8 + n, available });
    }
    let json: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n as usize])
        .map_err(|e| SafetensorsError::Corrupt(format!("the header is not a JSON object: {e}")))?;
    let data_offset = 8 + n;
    if json.len() > MAX_TENSORS {
        return Err(SafetensorsError::Corrupt(format!("{} entries", json.len())));
    }
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, value) in json {
        if name == "__metadata__" {
            if let Some(map) = value.as_object() {
                for (k, v) in map {
                    metadata.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                }
            }
            continue;
        }
        let raw: RawEntry = serde_json::from_value(value)
            .map_err(|e| SafetensorsError::Corrupt(format!("entry {name}: {e}")))?;
        let dtype = DType::from_safetensors(&raw.dtype)
            .ok_or_else(|| SafetensorsError::UnsupportedDType { name: name.clone(), dtype: raw.dtype.clone() })?;
        if raw.shape.len() > MAX_DIMS {
            return Err(SafetensorsError::Corrupt(format!("tensor {name} has {} dimensions", raw.shape.len())));
        }
        let [begin, end] = raw.data_offsets;
        let elems = raw.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let expected = elems.and_then(|e| e.checked_mul(dtype.block_bytes()));
        if end < begin || Some(end - begin) != expected {
            return Err(SafetensorsError::Corrupt(format!(
                "tensor {name}: shape {:?} of {dtype} does not match its byte range {begin}..{end}",
                raw.shape
            )));
        }
        let (Some(start), Some(end)) = (data_offset.checked_add(begin), data_offset.checked_add(end)) else {
            return Err(SafetensorsError::Corrupt(format!("tensor {name}: byte range {begin}..{end} overflows")));
        };
        tensors.push(SafeTensorInfo { name, dtype, shape: raw.shape, start, end });
    }
    tensors.sort_by_key(|t| t.start);
    Ok(SafetensorsFile { tensors, metadata, data_offset })
}

impl SafetensorsFile {
    /// Checks that every tensor lies inside a file of `file_len` bytes.
    pub fn validate(&self, file_len: u64) -> Result<(), SafetensorsError> {
        for t in &self.tensors {
            if t.end > file_len {
                return Err(SafetensorsError::Corrupt(format!(
                    "tensor {} ends at byte {} of a {file_len}-byte file",
                    t.name, t.end
                )));
            }
        }
        for pair in self.tensors.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(SafetensorsError::Corrupt(format!("tensors {} and {} overlap", pair[0].name, pair[1].name)));
            }
        }
        Ok(())
    }
}
