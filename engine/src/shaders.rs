//! The WGSL sources of `shaders/`, compiled into the engine, and the small
//! preprocessor that specializes them: `#include "file"` (each file once),
//! `#if A || B` / `#else` / `#endif` over a set of defined names, and `{{KEY}}`
//! substitutions.

use std::collections::HashSet;

macro_rules! shader_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../shaders/", $name)))),*]
    };
}

static FILES: &[(&str, &str)] = shader_files!(
    "selftest.wgsl",
    "step.wgsl",
    "reduce.wgsl",
    "embed.wgsl",
    "rmsnorm.wgsl",
    "matvec.wgsl",
    "matvec_xr.wgsl",
    "matmul.wgsl",
    "matmul64.wgsl",
    "matmul_coop.wgsl",
    "matmul_tile.wgsl",
    "swiglu.wgsl",
    "gelu.wgsl",
    "rope.wgsl",
    "attention.wgsl",
    "attention_split.wgsl",
    "attention_merge.wgsl",
    "shortconv.wgsl",
    "moe_topk.wgsl",
    "moe_slots.wgsl",
    "moe_route.wgsl",
    "moe_plan.wgsl",
    "moe_combine.wgsl",
    "sample.wgsl",
    "mark_seen.wgsl",
    "quant/common.wgsl",
    "quant/kquant.wgsl",
    "quant/f32.wgsl",
    "quant/f16.wgsl",
    "quant/bf16.wgsl",
    "quant/q8_0.wgsl",
    "quant/q4_0.wgsl",
    "quant/q4_1.wgsl",
    "quant/q5.wgsl",
    "quant/q5_0.wgsl",
    "quant/q5_1.wgsl",
    "quant/q4_k.wgsl",
    "quant/q5_k.wgsl",
    "quant/q6_k.wgsl",
    "quant/q2_k.wgsl",
    "quant/q3_k.wgsl",
    "quant/iq4_nl.wgsl",
);

pub const SELFTEST: &str = include_str!("../../shaders/selftest.wgsl");

pub fn source(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Expands `name` with the given defines and `{{KEY}}` values.
pub fn compile(name: &str, defines: &[&str], vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut included = HashSet::new();
    expand(name, defines, vars, &mut included, &mut out);
    out
}

fn substitute(line: &str, vars: &[(&str, &str)]) -> String {
    let mut s = line.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

fn expand(name: &str, defines: &[&str], vars: &[(&str, &str)], included: &mut HashSet<String>, out: &mut String) {
    if !included.insert(name.to_string()) {
        return;
    }
    let src = source(name).unwrap_or_else(|| panic!("shader {name} is not compiled into the engine"));
    // A stack of (this branch is taken, the enclosing branches are taken).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |stack: &[(bool, bool)]| stack.last().is_none_or(|&(taken, outer)| taken && outer);
    for line in src.lines() {
        let trimmed = line.trim_start();
        if let Some(cond) = trimmed.strip_prefix("#if ") {
            let outer = active(&stack);
            let taken = cond.split("||").any(|d| defines.contains(&d.trim()));
            stack.push((taken, outer));
        } else if trimmed.starts_with("#else") {
            let top = stack.last_mut().unwrap_or_else(|| panic!("{name}: #else without #if"));
            top.0 = !top.0;
        } else if trimmed.starts_with("#endif") {
            stack.pop().unwrap_or_else(|| panic!("{name}: #endif without #if"));
        } else if !active(&stack) {
            continue;
        } else if let Some(rest) = trimmed.strip_prefix("#include ") {
            let file = substitute(rest.trim().trim_matches('"'), vars);
            expand(&file, defines, vars, included, out);
        } else {
            out.push_str(&substitute(line, vars));
            out.push('\n');
        }
    }
    assert!(stack.is_empty(), "{name}: unterminated #if");
}
