//! Opening models from the local file system (native only): a `.gguf` file or
//! a Hugging Face folder, read in chunks into the streaming loader.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use crate::{
    formats::{gguf, safetensors},
    gpu::Gpu,
    model::{hf_weight_files, HfFolder, ModelError, ModelSpec, HF_INDEX},
    runtime::model::Model,
};

const CHUNK: usize = 16 << 20;

fn io_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Reads a growing prefix of `path` until `parse` stops asking for more.
fn parse_prefix<T, E>(
    path: &Path,
    mut parse: impl FnMut(&[u8]) -> Result<T, E>,
    needed: impl Fn(&E) -> Option<u64>,
) -> Result<Result<T, E>, ModelError> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut buf = Vec::new();
    let mut want = (1u64 << 20).min(len);
    loop {
        let have = buf.len() as u64;
        if want > have {
            buf.resize(want as usize, 0);
            file.read_exact(&mut buf[have as usize..]).map_err(|e| io_err(path, e))?;
        }
        match parse(&buf) {
            Err(e) => match needed(&e) {
                Some(n) if n <= len && n > buf.len() as u64 => want = (n.max(2 * buf.len() as u64)).min(len),
                _ => return Ok(Err(e)),
            },
            ok => return Ok(ok),
        }
    }
}

/// A model on disk: its description and the files its bytes come from.
pub struct LocalModel {
    pub spec: ModelSpec,
    pub paths: Vec<PathBuf>,
}

fn file_len(path: &Path) -> Result<u64, ModelError> {
    Ok(std::fs::metadata(path).map_err(|e| io_err(path, e))?.len())
}

fn read_text(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| io_err(path, e))
}

fn read_optional(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Opens a `.gguf` file or a Hugging Face folder (config.json, *.safetensors, tokenizer.json).
pub fn open(path: &Path) -> Result<LocalModel, ModelError> {
    if path.is_dir() {
        return open_hf(path);
    }
    let header = parse_prefix(path, gguf::parse, |e| match e {
        gguf::GgufError::Truncated { needed, .. } => Some(*needed),
        _ => None,
    })?
    .map_err(|e| match e {
        gguf::GgufError::Truncated { needed, available } => gguf::GgufError::Corrupt(format!(
            "the file ends at byte {available}, inside its header (which needs {needed} bytes): it is truncated"
        )),
        other => other,
    })
    .map_err(|e| ModelError::Io { path: path.display().to_string(), message: e.to_string() })?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let spec = ModelSpec::from_gguf(&header, &name, file_len(path)?).map_err(|e| with_path(path, e))?;
    Ok(LocalModel { spec, paths: vec![path.to_path_buf()] })
}

fn with_path(path: &Path, e: ModelError) -> ModelError {
    match e {
        ModelError::Gguf(g) => ModelError::Io { path: path.display().to_string(), message: g.to_string() },
        ModelError::Safetensors(s) => ModelError::Io { path: path.display().to_string(), message: s.to_string() },
        other => other,
    }
}

fn open_hf(dir: &Path) -> Result<LocalModel, ModelError> {
    let present: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .collect();
    let index = read_optional(&dir.join(HF_INDEX));
    let files: Vec<PathBuf> = hf_weight_files(index.as_deref(), &present).map_err(|e| io_err(dir, e))?.into_iter().map(|n| dir.join(n)).collect();
    let mut safetensors_headers = Vec::new();
    for f in &files {
        let header = parse_prefix(f, safetensors::parse, |e| match e {
            safetensors::SafetensorsError::Truncated { needed, .. } => Some(*needed),
            _ => None,
        })?
        .map_err(|e| io_err(f, e))?;
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        safetensors_headers.push((name, header, file_len(f)?));
    }
    let folder = HfFolder {
        name: dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        config_json: read_text(&dir.join("config.json"))?,
        tokenizer_json: read_text(&dir.join("tokenizer.json"))?,
        tokenizer_config_json: read_optional(&dir.join("tokenizer_config.json")),
        chat_template_jinja: read_optional(&dir.join("chat_template.jinja")),
        generation_config_json: read_optional(&dir.join("generation_config.json")),
        safetensors: safetensors_headers,
    };
    let spec = ModelSpec::from_hf(&folder).map_err(|e| with_path(dir, e))?;
    Ok(LocalModel { spec, paths: files })
}

impl LocalModel {
    /// Streams the files into GPU buffers, reading only the byte ranges that
    /// hold needed tensors, `CHUNK` bytes at a time. `progress(done, total)`.
    pub fn load(self, gpu: &Gpu, progress: &mut dyn FnMut(u64, u64)) -> Result<std::rc::Rc<Model>, ModelError> {
        let mut load = Model::begin_load(gpu, self.spec)?;
        let mut buf = vec![0u8; CHUNK];
        for (i, path) in self.paths.iter().enumerate() {
            let mut file = File::open(path).map_err(|e| io_err(path, e))?;
            let len = file.metadata().map_err(|e| io_err(path, e))?.len();
            // Merge the needed ranges into spans and read each span sequentially.
            let mut spans: Vec<(u64, u64)> = Vec::new();
            for (s, e) in load.loader.needed_ranges(i) {
                match spans.last_mut() {
                    Some(last) if s <= last.1 + CHUNK as u64 => last.1 = last.1.max(e),
                    _ => spans.push((s, e)),
                }
            }
            for (start, end) in spans {
                if end > len {
                    return Err(io_err(path, format!("the file has {len} bytes but its tensors need {end}: it is truncated")));
                }
                file.seek(SeekFrom::Start(start)).map_err(|e| io_err(path, e))?;
                let mut at = start;
                while at < end {
                    let n = ((end - at) as usize).min(CHUNK);
                    file.read_exact(&mut buf[..n]).map_err(|e| io_err(path, e))?;
                    load.feed(i, at, &buf[..n])?;
                    at += n as u64;
                    let (done, total) = load.loader.progress();
                    progress(done, total);
                }
            }
        }
        load.finish()
    }
}
