//! The uniform parameters of each kernel, one `#[repr(C)]` struct per WGSL
//! struct, written once here. `tests/kernel_params.rs` checks each against the
//! struct of the same name in every shader listed for it (member names and
//! byte offsets, through naga's layouter), so the two cannot drift apart the
//! way positional `[u32; 16]` arrays could.

use bytemuck::{Pod, Zeroable};

/// A kernel's uniform block: its WGSL struct's name and the shaders that
/// declare it, and its fields' names, byte offsets and sizes.
pub trait KernelParams: Pod {
    /// The WGSL struct this mirrors.
    const WGSL_STRUCT: &'static str;
    /// The kernels (shader files) whose module holds it. A kernel may declare
    /// fewer members (a prefix) and name the ones it ignores `_pad…`.
    const SHADERS: &'static [&'static str];
    fn fields() -> Vec<(&'static str, usize, usize)>;
}

macro_rules! kernel_params {
    ($(#[$meta:meta])* $name:ident = $wgsl:literal in [$($file:literal),+ $(,)?] { $($(#[$fmeta:meta])* $field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty),+
        }

        impl KernelParams for $name {
            const WGSL_STRUCT: &'static str = $wgsl;
            const SHADERS: &'static [&'static str] = &[$($file),+];
            fn fields() -> Vec<(&'static str, usize, usize)> {
                vec![$((stringify!($field), std::mem::offset_of!($name, $field), std::mem::size_of::<$ty>())),+]
            }
        }
    };
}

kernel_params! {
    /// Where a matrix part's rows and scales lie in its buffer (quant/common.wgsl).
    WeightGeom = "WeightGeom" in ["matvec.wgsl", "matmul.wgsl", "embed.wgsl"] {
        row_words: u32,
        scale_words: u32,
        scale_off: u32,
        rows: u32,
    }
}

kernel_params! {
    /// Per-submission values (step.wgsl), written before each pass.
    Step = "Step" in ["embed.wgsl", "matvec.wgsl", "sample.wgsl"] {
        n_tokens: u32,
        pos0: u32,
        step: u32,
        _pad: u32,
    }
}

kernel_params! {
    /// The decode mat-vecs (both kernels; matvec.wgsl ignores `cols`).
    MatvecParams = "Params" in ["matvec.wgsl", "matvec_xr.wgsl"] {
        geom: WeightGeom,
        units: u32,
        n_out: u32,
        out_first: u32,
        out_stride: u32,
        x_stride: u32,
        tile: u32,
        e_lo: u32,
        e_hi: u32,
        k: u32,
        rows_per_expert: u32,
        norm_eps: f32,
        cols: u32,
    }
}

kernel_params! {
    /// The prefill mat-mats (matmul64.wgsl has no MoE grouping).
    MatmulParams = "Params" in ["matmul.wgsl", "matmul64.wgsl", "matmul_coop.wgsl"] {
        geom: WeightGeom,
        k: u32,
        n_out: u32,
        out_first: u32,
        out_stride: u32,
        x_stride: u32,
        e_lo: u32,
        e_hi: u32,
        rows_per_expert: u32,
        x_row_div: u32,
        order_off: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

kernel_params! {
    EmbedParams = "Params" in ["embed.wgsl"] {
        geom: WeightGeom,
        first_row: u32,
        groups: u32,
        dim: u32,
        scale: f32,
    }
}

kernel_params! {
    RmsnormParams = "Params" in ["rmsnorm.wgsl"] {
        n: u32,
        eps: f32,
        last_only: u32,
        _pad: u32,
    }
}

kernel_params! {
    SwigluParams = "Params" in ["swiglu.wgsl"] {
        width: u32,
        tile: u32,
        z_stride: u32,
        _pad: u32,
    }
}

kernel_params! {
    ShortconvParams = "Params" in ["shortconv.wgsl"] {
        dim: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

kernel_params! {
    RopeParams = "Params" in ["rope.wgsl"] {
        n_heads: u32,
        n_kv_heads: u32,
        head_dim: u32,
        qkv_stride: u32,
        capacity: u32,
        has_norm: u32,
        neox: u32,
        eps: f32,
    }
}

kernel_params! {
    /// Prefill attention and decode attention's split pass (attention.wgsl
    /// ignores the split fields).
    AttentionParams = "Params" in ["attention.wgsl", "attention_split.wgsl"] {
        n_heads: u32,
        n_kv_heads: u32,
        head_dim: u32,
        capacity: u32,
        scale: f32,
        max_splits: u32,
        heads_per_chunk: u32,
        window: u32,
    }
}

kernel_params! {
    AttentionMergeParams = "Params" in ["attention_merge.wgsl"] {
        n_heads: u32,
        head_dim: u32,
        max_splits: u32,
        _pad: u32,
    }
}

kernel_params! {
    MoeRouteParams = "Params" in ["moe_route.wgsl"] {
        n_experts: u32,
        k: u32,
        norm: u32,
        scale: f32,
    }
}

kernel_params! {
    MoePlanParams = "Params" in ["moe_plan.wgsl"] {
        n_experts: u32,
        k: u32,
        order_off: u32,
        _pad: u32,
    }
}

kernel_params! {
    MoeCombineParams = "Params" in ["moe_combine.wgsl"] {
        dim: u32,
        k: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

kernel_params! {
    SamplerParams = "Params" in ["sample.wgsl"] {
        vocab: u32,
        top_k: u32,
        seed: u32,
        greedy: u32,
        inv_temperature: f32,
        top_p: f32,
        min_p: f32,
        penalty: f32,
    }
}
