//! Model descriptions: configuration, weights and their sources.

pub mod config;
mod error;
pub mod spec;

pub use config::{Arch, LayerKind, ModelConfig, MoeConfig, RopeStyle};
pub use error::ModelError;
pub use spec::{hf_weight_files, HfFolder, ModelSpec, TokenizerSpec, WeightSpec, HF_INDEX, HF_TEXT_FILES};
