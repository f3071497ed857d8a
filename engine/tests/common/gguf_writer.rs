//! Writes GGUF files for tests: a parsed header (edited) with tensor data.

use engine::formats::gguf::{GgufFile, TensorInfo, Value};

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn type_of(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => put_str(out, s),
        Value::Array(items) => {
            out.extend(items.first().map_or(4, type_of).to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i);
            }
        }
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
    }
}

/// Serializes `header` (its tensors' offsets as given) followed by `data`.
pub fn write(header: &GgufFile, data: &[u8]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(header.version.to_le_bytes());
    out.extend((header.tensors.len() as u64).to_le_bytes());
    out.extend((header.metadata.len() as u64).to_le_bytes());
    for (k, v) in &header.metadata {
        put_str(&mut out, k);
        out.extend(type_of(v).to_le_bytes());
        put_value(&mut out, v);
    }
    for TensorInfo { name, dims, ggml_type, offset } in &header.tensors {
        put_str(&mut out, name);
        out.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(ggml_type.to_le_bytes());
        out.extend(offset.to_le_bytes());
    }
    out.resize(out.len().div_ceil(header.alignment as usize) * header.alignment as usize, 0);
    out.extend_from_slice(data);
    out
}

/// Parses `bytes`, lets `edit` change the header, and writes it back with the same data.
pub fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut GgufFile)) -> Vec<u8> {
    let mut header = engine::formats::gguf::parse(bytes).unwrap();
    let data = bytes[header.data_offset as usize..].to_vec();
    edit(&mut header);
    write(&header, &data)
}
