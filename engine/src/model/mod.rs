//! Model descriptions: configuration, weights and their sources.

pub mod arch;
pub mod config;
mod error;
pub mod spec;

pub use arch::{Activation, Arch, Block, Family, Recommended, RopeStyle};
pub use config::{LayerKind, ModelConfig, MoeConfig, SlidingWindow};
pub use error::ModelError;
pub use spec::{hf_weight_files, HfFolder, ModelSpec, TokenizerSpec, WeightSpec, HF_INDEX, HF_TEXT_FILES};
