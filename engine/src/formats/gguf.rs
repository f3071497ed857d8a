//! GGUF (versions 2 and 3): the header, every metadata value type, tensor infos
//! and the aligned data section. Parsing works on a prefix of the file, so a
//! streaming source can hand over just the first bytes.

use std::collections::BTreeMap;

use thiserror::Error;

use super::DType;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Bounds that keep a corrupt or hostile header from asking for absurd
/// allocations. Real models stay far below them: LFM2 has ~300 tensors and a
/// 65536-token vocabulary (with its merges, ~200k strings); Gemma 3's
/// vocabulary is 262144.
const MAX_TENSORS: u64 = 1 << 16;
const MAX_KV: u64 = 1 << 14;
/// Values in one array, and in all of the header's arrays together.
const MAX_ARRAY: u64 = 1 << 22;
const MAX_VALUES: u64 = 1 << 23;
/// Bytes of one string (a chat template, a tensor name, a token).
const MAX_STRING: u64 = 1 << 22;
const MAX_DIMS: u32 = 4;

#[derive(Debug, Error, PartialEq)]
pub enum GgufError {
    #[error("not a GGUF file (it starts with {0:02x?}, not \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("GGUF version {0} is not supported (versions 2 and 3 are)")]
    UnsupportedVersion(u32),
    /// The header runs past the bytes given: hand over at least `needed` bytes
    /// (or, if that was the whole file, it is truncated).
    #[error("the GGUF header is truncated: it needs at least {needed} bytes, {available} are there")]
    Truncated { needed: u64, available: u64 },
    #[error("corrupt GGUF header: {0}")]
    Corrupt(String),
    #[error("tensor {name} has type {dtype}, which Eddy cannot read (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K)")]
    UnsupportedType { name: String, dtype: String },
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// Any integer type as u64 (negative values are `None`).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            Value::Bool(v) => Some(v.into()),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => self.as_u64().map(|v| v != 0),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor's description; `offset` is relative to the start of the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGML order: `dims[0]` is the innermost (contiguous) dimension.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    pub offset: u64,
}

impl TensorInfo {
    /// Values in the tensor (parse checked that the product does not overflow).
    pub fn elems(&self) -> u64 {
        self.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX)
    }
}

/// A parsed GGUF header.
#[derive(Debug, Clone)]
pub struct GgufFile {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

impl GgufFile {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// Checks every tensor against the file: a known type, a whole number of
    /// blocks, an aligned offset, bytes inside the file, and no two tensors
    /// overlapping. `file_len` is the whole file's size.
    pub fn validate(&self, file_len: u64) -> Result<(), GgufError> {
        let mut spans = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let dtype = DType::from_ggml(t.ggml_type)
                .map_err(|dtype| GgufError::UnsupportedType { name: t.name.clone(), dtype })?;
            let bytes = dtype.bytes_for(t.elems()).ok_or_else(|| {
                GgufError::Corrupt(format!(
                    "tensor {} has {} values, not a whole number of {dtype} blocks of {}",
                    t.name,
                    t.elems(),
                    dtype.block_elems()
                ))
            })?;
            if t.offset % self.alignment != 0 {
                return Err(GgufError::Corrupt(format!(
                    "tensor {} starts at data offset {}, which is not a multiple of the alignment {}",
                    t.name, t.offset, self.alignment
                )));
            }
            let end = self.data_offset.checked_add(t.offset).and_then(|s| s.checked_add(bytes));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(GgufError::Corrupt(format!(
                        "tensor {} ({bytes} bytes at data offset {}) runs past the end of the {file_len}-byte file: is it truncated?",
                        t.name, t.offset
                    )))
                }
            }
            spans.push((t.offset, t.offset.saturating_add(bytes), &t.name));
        }
        spans.sort();
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(GgufError::Corrupt(format!("tensors {} and {} overlap", pair[0].2, pair[1].2)));
            }
        }
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Array values read so far (see MAX_VALUES).
    values: u64,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let available = self.bytes.len() as u64;
        let end = (self.pos as u64).checked_add(n).ok_or_else(|| GgufError::Corrupt("length overflows".into()))?;
        if end > available {
            return Err(GgufError::Truncated { needed: end, available });
        }
        let s = &self.bytes[self.pos..end as usize];
        self.pos = end as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        Ok(self.take(N as u64)?.try_into().expect("length checked"))
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(GgufError::Corrupt(format!("a string of {len} bytes")));
        }
        let bytes = self.take(len)?;
        // Token lists of real models contain invalid UTF-8 pieces only as byte tokens,
        // which GGUF stores as "<0xNN>" text; anything else is replaced, not fatal.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(self.array::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(GgufError::Corrupt(format!("bool value {b}"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth > 2 {
                    return Err(GgufError::Corrupt("arrays nested too deeply".into()));
                }
                let elem_ty = self.u32()?;
                let n = self.u64()?;
                self.values = self.values.saturating_add(n);
                if n > MAX_ARRAY || self.values > MAX_VALUES {
                    return Err(GgufError::Corrupt(format!("an array of {n} values ({} in all)", self.values)));
                }
                let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    items.push(self.value(elem_ty, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(GgufError::Corrupt(format!("unknown metadata value type {other}"))),
        })
    }
}

/// Parses the header from the first bytes of a GGUF file. Returns
/// [`GgufError::Truncated`] when `bytes` ends inside the header.
pub fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    let mut r = Reader { bytes, pos: 0, values: 0 };
    let magic: [u8; 4] = r.array()?;
    if &magic != MAGIC {
        return Err(GgufError::BadMagic(magic));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    if n_tensors > MAX_TENSORS || n_kv > MAX_KV {
        return Err(GgufError::Corrupt(format!("{n_tensors} tensors and {n_kv} metadata keys")));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(GgufError::Corrupt(format!("metadata key {key} appears twice")));
        }
    }
    // Capacity grows with what actually parses, not with what the header claims.
    let mut tensors = Vec::with_capacity(n_tensors.min(1024) as usize);
    for _ in 0..n_tensors {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::Corrupt(format!("tensor {name} has {n_dims} dimensions")));
        }
        let dims = (0..n_dims).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
        if dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).is_none() {
            return Err(GgufError::Corrupt(format!("tensor {name} has an impossible shape {dims:?}")));
        }
        let ggml_type = r.u32()?;
        let offset = r.u64()?;
        tensors.push(TensorInfo { name, dims, ggml_type, offset });
    }
    let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
        return Err(GgufError::Corrupt(format!("tensor {} appears twice", pair[0])));
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
            _ => return Err(GgufError::Corrupt(format!("general.alignment is {v:?}"))),
        },
    };
    let data_offset = (r.pos as u64).div_ceil(alignment).saturating_mul(alignment);
    Ok(GgufFile { version, metadata, tensors, alignment, data_offset })
}
