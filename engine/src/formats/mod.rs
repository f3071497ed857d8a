//! Model file formats. Both readers parse only the header from a prefix of the
//! file: tensor bytes are streamed later, straight to the GPU.

mod dtype;
pub mod gguf;
pub mod quant;
pub mod safetensors;

pub use dtype::DType;
