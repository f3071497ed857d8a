pub mod chat;
pub mod gpu_panel;
