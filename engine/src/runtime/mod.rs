//! The GPU runtime of a model: weights, the streaming loader, kernels and the
//! forward pass.

pub mod inspect;
pub mod kernels;
pub mod loader;
pub mod model;
pub mod ops;
pub mod params;
pub mod session;
pub mod weights;
