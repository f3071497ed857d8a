use thiserror::Error;

use crate::formats::{gguf::GgufError, safetensors::SafetensorsError};

/// Why a model cannot be described, loaded or run. Every variant names the problem.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    #[error("unsupported architecture \"{0}\" (Eddy runs lfm2, lfm2moe and llama)")]
    UnsupportedArchitecture(String),
    #[error("the model's metadata has no {0}")]
    MissingMetadata(String),
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
    #[error("the model file has no tensor {0}")]
    MissingTensor(String),
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<u64>, found: Vec<u64> },
    #[error("tensor {name} is {dtype}, which Eddy cannot use there")]
    UnsupportedTensorType { name: String, dtype: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("the model data is incomplete: {0}")]
    Incomplete(String),
    #[error("GPU: {0}")]
    Gpu(String),
    #[error("the prompt has {tokens} tokens but the context holds {context}")]
    ContextOverflow { tokens: usize, context: usize },
    /// A JSON schema or grammar that cannot be used, or a constraint that failed mid-reply.
    #[error("constraint: {0}")]
    Constraint(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<crate::gpu::GpuError> for ModelError {
    fn from(e: crate::gpu::GpuError) -> Self {
        ModelError::Gpu(e.to_string())
    }
}
