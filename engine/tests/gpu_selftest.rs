//! The self-test kernel from `shaders/` on the native adapter (lavapipe in CI).

use engine::gpu::{selftest, Gpu, GpuOptions};

#[test]
fn selftest_kernel_matches_cpu() {
    let gpu = pollster::block_on(Gpu::new(GpuOptions::default())).expect("a Vulkan adapter (install mesa-vulkan-drivers)");
    let report = pollster::block_on(selftest::run(&gpu)).unwrap();
    eprintln!("adapter {:?}: {report:?} (subgroups {}, min size {})", gpu.report(), gpu.subgroups, gpu.subgroup_min_size);
    assert!(report.passed, "{report:?}");
    assert!(report.max_rel_error < report.tolerance);
}
