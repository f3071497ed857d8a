//! Every kernel's parameter struct (runtime/params.rs) against the WGSL struct
//! it fills, in every shader that declares it: member names, byte offsets and
//! sizes from naga's layouter, as wgpu will lay the uniform out.

use engine::{
    runtime::{
        kernels::{slots_of, Slot},
        params::*,
    },
    shaders,
};

/// What is wrong between `T` and struct `T::WGSL_STRUCT` in `source`, if anything.
fn mismatches<T: KernelParams>(source: &str) -> Vec<String> {
    let module = match naga::front::wgsl::parse_str(source) {
        Ok(m) => m,
        Err(e) => return vec![format!("does not parse: {}", e.emit_to_string(source))],
    };
    let mut layouter = naga::proc::Layouter::default();
    if let Err(e) = layouter.update(module.to_ctx()) {
        return vec![format!("no layout: {e}")];
    }
    let Some((_, ty)) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(T::WGSL_STRUCT)) else {
        return vec![format!("no struct {}", T::WGSL_STRUCT)];
    };
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        return vec![format!("{} is not a struct", T::WGSL_STRUCT)];
    };
    let size = std::mem::size_of::<T>();
    let fields = T::fields();
    let mut out = Vec::new();
    if *span as usize > size {
        out.push(format!("WGSL struct is {span} bytes, the Rust one {size}"));
    }
    for m in members {
        let name = m.name.clone().unwrap_or_default();
        let (offset, bytes) = (m.offset as usize, layouter[m.ty].size as usize);
        if name.starts_with('_') {
            if offset + bytes > size {
                out.push(format!("padding {name} at {offset} lies past the Rust struct"));
            }
            continue;
        }
        match fields.iter().find(|f| f.0 == name) {
            None => out.push(format!("member {name} has no Rust field")),
            Some(&(_, o, b)) if o != offset || b != bytes => out.push(format!("{name}: WGSL offset {offset} size {bytes}, Rust offset {o} size {b}")),
            Some(_) => {}
        }
    }
    out
}

fn check<T: KernelParams>(failures: &mut Vec<String>) {
    let name = std::any::type_name::<T>().rsplit("::").next().unwrap_or_default();
    let mut used = std::collections::HashSet::new();
    for file in T::SHADERS {
        // The mat-vecs need a dot product and a mode to be whole programs.
        let defines: &[&str] = if file.starts_with("matvec") { &["DOT", "STORE"] } else { &[] };
        let source = shaders::compile(file, defines, &[("WTYPE", "q4_0")]);
        failures.extend(mismatches::<T>(&source).into_iter().map(|m| format!("{name} in {file}: {m}")));
        if let Ok(module) = naga::front::wgsl::parse_str(&source) {
            for (_, t) in module.types.iter().filter(|(_, t)| t.name.as_deref() == Some(T::WGSL_STRUCT)) {
                if let naga::TypeInner::Struct { members, .. } = &t.inner {
                    used.extend(members.iter().filter_map(|m| m.name.clone()));
                }
            }
        }
    }
    for (field, _, _) in T::fields() {
        if !field.starts_with('_') && !used.contains(field) {
            failures.push(format!("{name}: field {field} is read by none of {:?}", T::SHADERS));
        }
    }
}

#[test]
fn every_kernel_parameter_struct_matches_its_wgsl() {
    let mut failures = Vec::new();
    check::<WeightGeom>(&mut failures);
    check::<Step>(&mut failures);
    check::<MatvecParams>(&mut failures);
    check::<MatmulParams>(&mut failures);
    check::<EmbedParams>(&mut failures);
    check::<RmsnormParams>(&mut failures);
    check::<SwigluParams>(&mut failures);
    check::<ShortconvParams>(&mut failures);
    check::<RopeParams>(&mut failures);
    check::<AttentionParams>(&mut failures);
    check::<AttentionMergeParams>(&mut failures);
    check::<MoeRouteParams>(&mut failures);
    check::<MoePlanParams>(&mut failures);
    check::<MoeCombineParams>(&mut failures);
    check::<SamplerParams>(&mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The check notices what positional arrays let through: two members
/// swapped in the shader, a member the Rust side lacks.
#[test]
fn a_drifted_struct_is_reported() {
    let source = shaders::compile("rope.wgsl", &[], &[("WTYPE", "q4_0")]);
    assert!(mismatches::<RopeParams>(&source).is_empty());
    let swapped = source.replacen("    n_kv_heads: u32,\n    head_dim: u32,", "    head_dim: u32,\n    n_kv_heads: u32,", 1);
    assert_ne!(swapped, source, "rope.wgsl's Params changed; update this test");
    assert_eq!(mismatches::<RopeParams>(&swapped).len(), 2, "{:?}", mismatches::<RopeParams>(&swapped));
    let renamed = source.replace("neox", "rotate_halves");
    assert!(mismatches::<RopeParams>(&renamed).iter().any(|m| m.contains("rotate_halves has no Rust field")));
}

/// A kernel's bind group layout comes from its expanded source: each `#if`
/// that adds a binding adds it to the layout.
#[test]
fn bindings_follow_the_expanded_shader() {
    use Slot::*;
    let slots = |defines: &[&str]| slots_of(&shaders::compile("matvec.wgsl", defines, &[("WTYPE", "q4_0")]));
    assert_eq!(slots(&["DOT", "STORE"]), [Uniform, Uniform, Read, Read, Write]);
    assert_eq!(slots(&["DOT", "STORE", "NORM"]), [Uniform, Uniform, Read, Read, Write, Read]);
    assert_eq!(slots(&["DOT", "MOE", "MOE_GATE_UP", "NORM"]), [Uniform, Uniform, Read, Read, Write, Read, Read, Read]);
    assert_eq!(slots_of(&shaders::compile("sample.wgsl", &[], &[])), [Uniform, Uniform, Read, Read, Write, Write, Read]);
}
