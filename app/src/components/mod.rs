pub mod gpu_panel;
