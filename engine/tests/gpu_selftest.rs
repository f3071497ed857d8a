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

/// A host learns of a lost device without polling (how the app reports a driver
/// reset): a waiter registered before the loss and one registered after it both
/// hear the reason.
#[test]
fn a_lost_device_wakes_whoever_waits_for_it() {
    let gpu = pollster::block_on(Gpu::new(GpuOptions::default())).expect("a Vulkan adapter");
    assert_eq!(gpu.lost(), None);
    let before = gpu.when_lost();
    gpu.device.destroy();
    let _ = gpu.device.poll(wgpu::PollType::Poll);
    let why = pollster::block_on(before);
    assert!(why.contains("Destroyed"), "{why}");
    assert_eq!(gpu.lost().as_deref(), Some(why.as_str()));
    assert_eq!(pollster::block_on(gpu.when_lost()), why);
}
