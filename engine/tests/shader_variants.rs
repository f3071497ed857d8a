//! The matrix-unit mat-mat (`matmul_coop.wgsl`) runs only where the GPU has
//! cooperative matrices, which neither lavapipe nor SwiftShader has, so CI
//! cannot run it (its CPU-reference tests in kernels.rs run on such GPUs). Here
//! every variant the engine can ask for goes through what wgpu does with it on
//! Vulkan: naga's WGSL front end, its validator (uniformity included) and its
//! SPIR-V writer. Both ways naga 30 rejected or crashed on the first version of
//! the kernel (`&&` around the matrix loads; a load's index not bound by a
//! `let` beforehand) fail here.

use engine::shaders;

fn spirv(file: &str, wtype: &str, defines: &[&str]) -> Result<Vec<u32>, String> {
    spirv_of(&shaders::compile(file, defines, &[("WTYPE", wtype)]))
}

fn spirv_of(source: &str) -> Result<Vec<u32>, String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| e.emit_to_string(source))?;
    let options = naga::back::spv::Options { lang_version: (1, 3), ..Default::default() };
    std::panic::catch_unwind(|| naga::back::spv::write_vec(&module, &info, &options, None))
        .map_err(|_| "naga's SPIR-V writer panicked".to_string())?
        .map_err(|e| e.to_string())
}

#[test]
fn every_matrix_unit_matmul_variant_compiles_to_spirv() {
    let types = ["f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k", "q2_k", "q3_k", "iq4_nl"];
    let modes: [&[&str]; 11] = [
        &["STORE"],
        &["ADD"],
        &["STORE", "BK64"],
        &["ADD", "BK64"],
        // 128-token tiles (passes of WIDE_FROM tokens and more).
        &["STORE", "BM128"],
        &["STORE", "BM128", "BK64"],
        &["ADD", "BM128", "BK64"],
        &["STORE", "GROUPED"],
        &["STORE", "GROUPED", "BK64"],
        // The benchmarks' diagnostics (staging alone, products alone).
        &["STORE", "NOMMA"],
        &["STORE", "NOSTAGE"],
    ];
    let mut failures = Vec::new();
    for wtype in types {
        for defines in modes {
            match spirv("matmul_coop.wgsl", wtype, defines) {
                Ok(words) => assert!(words.len() > 100 && words[0] == 0x0723_0203, "{wtype} {defines:?}: not a SPIR-V module"),
                Err(e) => failures.push(format!("{wtype} {defines:?}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{} variants fail:\n{}", failures.len(), failures.join("\n"));
}

/// The check itself: the kernel as first written (`&&` in the condition
/// around its matrix loads, a store's index computed in the call) is refused,
/// so the test above would have caught it.
#[test]
fn the_kernels_first_form_is_refused() {
    let good = shaders::compile("matmul_coop.wgsl", &["ADD"], &[("WTYPE", "q4_0")]);
    let uniform = "let direct = (t0 + BM <= n_tok) & (n0 + BN <= P.n_out);";
    assert!(good.contains(uniform), "the kernel's full-tile condition moved; update this test");
    let short_circuit = good.replace(uniform, "let direct = t0 + BM <= n_tok && n0 + BN <= P.n_out;");
    assert!(spirv_of(&short_circuit).is_err(), "a matrix load under `&&` was accepted");
    let bound = "coopStoreT(c00, &Y[o00], ys);";
    assert!(good.contains(bound), "the kernel's first store moved; update this test");
    let inline_index = good.replace(bound, "coopStoreT(c00, &Y[o00 + 0u * ys], ys);");
    assert!(spirv_of(&inline_index).is_err(), "a store whose index is computed in the call was accepted");
}
