//! `eddy`: run and benchmark models natively on any Vulkan/Metal/DX12 adapter.

use std::{
    io::Write,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
};

use clap::{Args, Parser, Subcommand};
use engine::{
    chat::ChatMessage,
    constrain::{Grammar, Grammars},
    gpu::{Gpu, GpuOptions},
    model::ModelError,
    runtime::session::{Generate, Sampling, Session, SessionOptions, TokenConstraint},
    text::TextModel,
    tokenizer::TextStream,
};
use serde_json::json;

#[derive(Parser)]
#[command(name = "eddy", version, about = "Eddy's inference engine on the command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt.
    Generate(GenerateArgs),
    /// Measure prefill and decode speed, like llama-bench.
    Bench(BenchArgs),
}

#[derive(Args)]
struct DeviceArgs {
    /// Do not use shader-f16 even where the adapter has it.
    #[arg(long)]
    no_f16: bool,
    /// Tokens the context holds.
    #[arg(long, default_value_t = 4096)]
    context: usize,
    /// Compile the kernels without wgpu's bounds checks (to measure their cost).
    #[arg(long)]
    no_bounds_checks: bool,
    /// Keep prefill mat-mats off the matrix units (cooperative matrices).
    #[arg(long)]
    no_coop: bool,
    /// Mat-vec workgroup size (64, 128 or 256).
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.matvec_wg)]
    matvec_wg: u32,
    /// Mat-vec lanes sharing an output's columns.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.matvec_lanes)]
    matvec_lanes: u32,
    /// Use the reference mat-vec (x staged in workgroup memory) everywhere.
    #[arg(long)]
    matvec_ref: bool,
    /// Use the x-in-registers mat-vec wherever the matrix allows.
    #[arg(long)]
    matvec_xr_always: bool,
    /// Keep x in float32 in every mat-vec (no two-level int8 products).
    #[arg(long)]
    no_int8: bool,
    /// Matrices of at least this many weights take x as two int8 levels.
    #[arg(long, default_value_t = engine::runtime::ops::INT8_MIN_WEIGHTS)]
    int8_min_weights: u64,
    /// Weight bytes each lane of the x-in-registers mat-vec loads at once.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.xr_bytes)]
    xr_bytes: u32,
    /// The fewest rows per group of the x-in-registers mat-vec.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.xr_min_rows)]
    xr_min_rows: u32,
    /// Lanes per output of the MoE experts' mat-vecs.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.moe_lanes)]
    moe_lanes: u32,
    /// Outputs per lane group of the staged mat-vec.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.matvec_rows)]
    matvec_rows: u32,
    /// Outputs per lane group of the MoE experts' mat-vecs.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.moe_rows)]
    moe_rows: u32,
    /// Decode runs a routing kernel between the MoE router and the experts
    /// instead of choosing the experts inside the gate/up mat-vec.
    #[arg(long)]
    route_kernel: bool,
    /// Prompt chunks of at most this many tokens run token by token through the decode pass.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.prefill_by_token)]
    prefill_by_token: u32,
    /// Staged mat-vecs with fewer workgroups keep one output per group.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.rows_min_workgroups)]
    rows_min_workgroups: u32,
    /// Staged mat-vecs with fewer workgroups widen their lane groups (0: never).
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.min_workgroups)]
    min_workgroups: u32,
    /// Prefill mat-mats on the matrix units over at least this many rows take 128-token tiles.
    #[arg(long, default_value_t = engine::runtime::ops::Tuning::DEFAULT.coop_wide_rows)]
    coop_wide_rows: u64,
    /// Decode steps in flight ahead of the token being read (1 to 3).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=engine::runtime::session::MAX_DECODE_AHEAD as i64))]
    decode_ahead: u16,
}

impl DeviceArgs {
    fn session_options(&self) -> SessionOptions {
        SessionOptions {
            context: self.context,
            tuning: engine::runtime::ops::Tuning {
                matvec_wg: self.matvec_wg,
                matvec_lanes: self.matvec_lanes,
                matvec_xr: !self.matvec_ref,
                xr_always: self.matvec_xr_always,
                int8_min_weights: if self.no_int8 { u64::MAX } else { self.int8_min_weights },
                xr_bytes: self.xr_bytes,
                xr_min_rows: self.xr_min_rows,
                moe_lanes: self.moe_lanes,
                matvec_rows: self.matvec_rows,
                moe_rows: self.moe_rows,
                rows_min_workgroups: self.rows_min_workgroups,
                min_workgroups: self.min_workgroups,
                route_in_gate_up: !self.route_kernel,
                prefill_by_token: self.prefill_by_token,
                coop_wide_rows: self.coop_wide_rows,
            },
            decode_ahead: usize::from(self.decode_ahead),
            ..Default::default()
        }
    }
}

#[derive(Args)]
struct GenerateArgs {
    /// A .gguf file, or a Hugging Face folder (config.json, *.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Prompt text, tokenized as the model's tokenizer says (BOS where it adds one).
    #[arg(long, conflicts_with = "prompt_ids")]
    prompt: Option<String>,
    /// Prompt token ids, used exactly as given: 1,2,3.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// Render the prompt as one user turn through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// A system turn before the user turn (with --chat).
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Include the logits at the last prompt position (before sampling).
    #[arg(long)]
    dump_logits: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    constraint: ConstraintArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// What the reply must be (at most one).
#[derive(Args)]
struct ConstraintArgs {
    /// The reply is a JSON object.
    #[arg(long, conflicts_with_all = ["json_schema", "grammar"])]
    json_object: bool,
    /// The reply is JSON valid under the JSON Schema in FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "grammar")]
    json_schema: Option<PathBuf>,
    /// The reply is in the language of the Lark grammar in FILE.
    #[arg(long, value_name = "FILE")]
    grammar: Option<PathBuf>,
}

impl ConstraintArgs {
    fn grammar(&self) -> Result<Option<Grammar>, ModelError> {
        let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| ModelError::Io { path: p.display().to_string(), message: e.to_string() });
        Ok(match (self.json_object, &self.json_schema, &self.grammar) {
            (true, _, _) => Some(Grammar::JsonObject),
            (_, Some(p), _) => Some(Grammar::JsonSchema(
                serde_json::from_str(&read(p)?).map_err(|e| ModelError::Constraint(format!("{}: not JSON: {e}", p.display())))?,
            )),
            (_, _, Some(p)) => Some(Grammar::Lark(read(p)?)),
            _ => None,
        })
    }
}

/// The constraint for one reply of `tm`.
fn make_constraint(tm: &TextModel, grammar: &Grammar) -> Result<engine::constrain::Constraint, ModelError> {
    let end = tm.end_of_reply().ok_or_else(|| ModelError::Constraint("the model has no end-of-reply token".into()))?;
    Grammars::new(tm, end)?.constraint(grammar)
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 512)]
    prompt_len: usize,
    #[arg(long, default_value_t = 128)]
    gen_len: usize,
    /// Timed repetitions (the best and the mean are reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also print GPU time per dispatch (timestamp queries): every dispatch of
    /// a prefill and of a decode step, alone and repeated back to back.
    #[arg(long)]
    profile: bool,
    /// Repetitions of each decode dispatch in the repeated profile.
    #[arg(long, default_value_t = 32)]
    profile_reps: usize,

    /// Tokens already in the context before each timed run (llama-bench -d).
    #[arg(long, default_value_t = 0)]
    depth: usize,
    /// Sampling for the timed runs (default greedy): temperature, min-p, repetition penalty.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Memory bandwidth for the roofline, in bytes per second.
    #[arg(long, default_value_t = 4.2e12)]
    bandwidth: f64,
    #[arg(long)]
    json: bool,
    /// Also time decoding under this JSON Schema (each timed run generates
    /// until the schema's value is complete, at most --gen-len tokens).
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate(args),
        Command::Bench(args) => bench(args),
    };
    if let Err(e) = result {
        eprintln!("eddy: {e}");
        std::process::exit(1);
    }
}

fn open_gpu(device: &DeviceArgs) -> Result<Gpu, ModelError> {
    Ok(pollster::block_on(Gpu::new(GpuOptions { allow_f16: !device.no_f16, allow_subgroups: true, bounds_checks: !device.no_bounds_checks, allow_coop_matrix: !device.no_coop }))?)
}

fn load(path: &std::path::Path, gpu: &Gpu, quiet: bool) -> Result<(TextModel, f64), ModelError> {
    let t0 = engine::clock::now();
    let local = engine::source::open(path)?;
    let mut last = 0;
    let model = local.load(gpu, &mut |done, total| {
        let pct = if total > 0 { done * 100 / total } else { 100 };
        if !quiet && pct >= last + 10 {
            eprint!("\rloading {pct}%");
            last = pct;
        }
    })?;
    if !quiet {
        eprint!("\r");
    }
    let text = TextModel::new(model)?;
    Ok((text, engine::clock::now() - t0))
}

fn generate(args: GenerateArgs) -> Result<(), ModelError> {
    let gpu = open_gpu(&args.device)?;
    let (tm, load_seconds) = load(&args.model, &gpu, args.json)?;
    let prompt_ids = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(text)) if args.chat => {
            let mut messages = Vec::new();
            if let Some(system) = &args.system {
                messages.push(ChatMessage::new("system", system));
            }
            messages.push(ChatMessage::new("user", text));
            tm.chat_ids(&messages)?
        }
        (None, Some(text)) => tm.tokenizer.encode(text)?,
        (None, None) => return Err(ModelError::Invalid("give --prompt or --prompt-ids".into())),
    };
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        seed: args.seed,
    };
    let options = args.device.session_options();
    let mut session = Session::new(tm.model.clone(), options)?;
    ctrlc_cancel();
    let mut stream = TextStream::default();
    let stops = tm.stop_ids();
    let mut out = std::io::stdout();
    let json_mode = args.json;
    let mut constraint = match args.constraint.grammar()? {
        Some(g) => Some(make_constraint(&tm, &g)?),
        None => None,
    };
    let constraint = constraint.as_mut().map(|c| c as &mut dyn TokenConstraint);
    let result = pollster::block_on(session.generate(Generate { stop_ids: &stops, dump_logits: args.dump_logits, constraint, ..Generate::new(&prompt_ids, args.max_tokens, &sampling) }, &mut |id| {
        if !json_mode && !stops.contains(&id) {
            let _ = write!(out, "{}", stream.push(&tm.tokenizer, id));
            let _ = out.flush();
        }
        !CANCELLED.load(Ordering::Relaxed)
    }))?;
    let text = tm.tokenizer.decode(&result.tokens, true);
    if json_mode {
        let mut obj = json!({
            "prompt_ids": prompt_ids,
            "generated_ids": result.tokens,
            "text": text,
            "stop_reason": result.stop,
            "prefill_tokens_per_s": result.prefill_tokens_per_s(),
            "decode_tokens_per_s": result.decode_tokens_per_s(),
            "load_seconds": load_seconds,
            "adapter": gpu.report().name,
        });
        if let Some(l) = &result.last_logits {
            obj["last_logits"] = json!(l);
        }
        println!("{obj}");
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, load {:.2} s, {}]",
            result.prefill_tokens,
            result.prefill_tokens_per_s(),
            result.tokens.len(),
            result.decode_tokens_per_s(),
            load_seconds,
            gpu.report().name
        );
    }
    Ok(())
}

/// Weight bytes one decoded token reads: everything, but only the chosen
/// fraction of each MoE layer's experts.
fn bytes_per_token(spec: &engine::model::ModelSpec) -> u64 {
    let active = spec.config.moe.as_ref().map_or(1.0, |m| m.top_k as f64 / m.n_experts as f64);
    spec.weights
        .values()
        .map(|w| if w.name.contains("_exps.") { (w.bytes() as f64 * active) as u64 } else { w.bytes() })
        .sum()
}

fn bench(args: BenchArgs) -> Result<(), ModelError> {
    let gpu = open_gpu(&args.device)?;
    let (tm, load_seconds) = load(&args.model, &gpu, args.json)?;
    let vocab = tm.model.config().vocab as u32;
    let mut seed = 12345u32;
    let prompt: Vec<u32> = (0..args.depth + args.prompt_len)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) % vocab
        })
        .collect();
    let options = SessionOptions {
        context: args.device.context.max(args.depth + args.prompt_len + args.gen_len + 8),
        prefill_chunk: 512,
        ..args.device.session_options()
    };
    let mut session = Session::new(tm.model.clone(), options)?;
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        seed: 1,
    };
    let (context, prompt) = prompt.split_at(args.depth);
    // Warm up: first submissions page in memory and finish driver compilation.
    pollster::block_on(session.generate(Generate::new(&prompt[..prompt.len().min(16)], 4, &sampling), &mut |_| true))?;
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    let (mut sum_pp, mut sum_tg) = (0f64, 0f64);
    // CPU time per decode token spent recording and submitting, and waiting for the GPU.
    let (mut record_ms, mut wait_ms) = (0f64, 0f64);
    for _ in 0..args.repeat.max(1) {
        session.reset();
        if !context.is_empty() {
            pollster::block_on(session.generate(Generate::new(context, 0, &sampling), &mut |_| true))?;
        }
        let g = pollster::block_on(session.generate(Generate::new(prompt, args.gen_len, &sampling), &mut |_| true))?;
        best_pp = best_pp.max(g.prefill_tokens_per_s());
        best_tg = best_tg.max(g.decode_tokens_per_s());
        sum_pp += g.prefill_tokens_per_s();
        sum_tg += g.decode_tokens_per_s();
        let steps = g.tokens.len().max(1) as f64;
        record_ms += 1000.0 * g.record_seconds / steps / args.repeat.max(1) as f64;
        wait_ms += 1000.0 * g.wait_seconds / steps / args.repeat.max(1) as f64;
    }
    let constrained = match &args.json_schema {
        Some(path) => Some(bench_constrained(&args, &tm, &mut session, prompt, &sampling, path)?),
        None => None,
    };
    let profile = if args.profile { Some(pollster::block_on(session.profile(prompt, args.profile_reps))?) } else { None };
    if let Some(p) = &profile {
        print_profile(p);
    }
    let bpt = bytes_per_token(&tm.model.spec);
    let roofline = args.bandwidth / bpt as f64;
    let report = json!({
        "model": args.model.display().to_string(),
        "quantization": tm.model.spec.quantization,
        "parameters": tm.model.config().parameter_count(),
        "prompt_len": args.prompt_len,
        "gen_len": args.gen_len,
        "depth": args.depth,
        "sampling": format!("{sampling:?}"),
        "prefill_tokens_per_s": best_pp,
        "decode_tokens_per_s": best_tg,
        "repeat": args.repeat.max(1),
        "prefill_tokens_per_s_mean": sum_pp / args.repeat.max(1) as f64,
        "decode_tokens_per_s_mean": sum_tg / args.repeat.max(1) as f64,
        "decode_record_ms_per_token": record_ms,
        "decode_wait_ms_per_token": wait_ms,
        "weight_bytes_per_token": bpt,
        "roofline_tokens_per_s": roofline,
        "fraction_of_roofline": best_tg / roofline,
        "load_seconds": load_seconds,
        "adapter": gpu.report().name,
        "matvec_wg": args.device.matvec_wg,
        "matvec_lanes": args.device.matvec_lanes,
        "shader_f16": gpu.f16,
        "subgroups": gpu.subgroups,
        "coop_matrix": gpu.coop_matrix,
    });
    let mut report = report;
    if let Some(c) = &constrained {
        report["constrained"] = c.clone();
        if !args.json {
            println!(
                "constrained by {}: {:.1} tok/s decode over {} tokens ({:.1}% of unconstrained), {:.2} ms per token computing masks, {:.0} ms to compile",
                c["schema"].as_str().unwrap_or_default(),
                c["decode_tokens_per_s"].as_f64().unwrap_or(0.0),
                c["tokens"].as_u64().unwrap_or(0),
                100.0 * c["decode_tokens_per_s"].as_f64().unwrap_or(0.0) / best_tg.max(1e-9),
                c["mask_ms_per_token"].as_f64().unwrap_or(0.0),
                c["compile_ms"].as_f64().unwrap_or(0.0),
            );
        }
    }
    if let Some(p) = &profile {
        report["profile"] = json!(p);
    }
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{}  {}  pp{}: {:.1} tok/s  tg{}: {:.1} tok/s  ({:.1}% of the {:.0} tok/s roofline at {:.2} TB/s)  [{}]",
            args.model.display(),
            tm.model.spec.quantization,
            args.prompt_len,
            best_pp,
            args.gen_len,
            best_tg,
            100.0 * best_tg / roofline,
            roofline,
            args.bandwidth / 1e12,
            gpu.report().name
        );
    }
    Ok(())
}

/// Decode under a JSON Schema, timed like the plain runs: the best of
/// --repeat runs, each from the same prompt until the value is complete.
fn bench_constrained(args: &BenchArgs, tm: &TextModel, session: &mut Session, prompt: &[u32], sampling: &Sampling, path: &std::path::Path) -> Result<serde_json::Value, ModelError> {
    let grammar = ConstraintArgs { json_object: false, json_schema: Some(path.to_path_buf()), grammar: None }.grammar()?.expect("a schema");
    let end = tm.end_of_reply().ok_or_else(|| ModelError::Constraint("the model has no end-of-reply token".into()))?;
    let t0 = engine::clock::now();
    let grammars = Grammars::new(tm, end)?;
    let factory_ms = (engine::clock::now() - t0) * 1000.0;
    let (mut best, mut tokens, mut mask_ms, mut compile_ms) = (0f64, 0usize, 0f64, 0f64);
    let mut text = String::new();
    for _ in 0..args.repeat.max(1) {
        session.reset();
        let t = engine::clock::now();
        let mut c = grammars.constraint(&grammar)?;
        compile_ms = (engine::clock::now() - t) * 1000.0;
        let mut timed = Timed { inner: &mut c, seconds: 0.0 };
        let g = pollster::block_on(session.generate(Generate { stop_ids: &[end], constraint: Some(&mut timed as &mut dyn TokenConstraint), ..Generate::new(prompt, args.gen_len, sampling) }, &mut |_| true))?;
        if g.decode_tokens_per_s() >= best {
            best = g.decode_tokens_per_s();
            tokens = g.tokens.len();
            mask_ms = 1000.0 * timed.seconds / g.tokens.len().max(1) as f64;
            text = tm.tokenizer.decode(&g.tokens, true);
        }
    }
    Ok(json!({
        "schema": path.display().to_string(),
        "decode_tokens_per_s": best,
        "tokens": tokens,
        "mask_ms_per_token": mask_ms,
        "compile_ms": compile_ms,
        "tokenizer_setup_ms": factory_ms,
        "reply": text,
    }))
}

/// A constraint that counts the CPU time of its masks.
struct Timed<'a> {
    inner: &'a mut dyn TokenConstraint,
    seconds: f64,
}

impl TokenConstraint for Timed<'_> {
    fn allowed(&mut self) -> Result<&[u32], ModelError> {
        let t = engine::clock::now();
        let r = self.inner.allowed();
        self.seconds += engine::clock::now() - t;
        r
    }

    fn consume(&mut self, token: u32) -> Result<(), ModelError> {
        let t = engine::clock::now();
        let r = self.inner.consume(token);
        self.seconds += engine::clock::now() - t;
        r
    }
}

fn print_profile(p: &engine::runtime::session::Profile) {
    use engine::runtime::session::PassProfile;
    let show = |name: &str, list: &[engine::runtime::session::DispatchTime], whole: f64| {
        let total: f64 = list.iter().map(|d| d.ms).sum();
        eprintln!("{name}: {} dispatches, {total:.3} ms summed, {whole:.3} ms as one pass", list.len());
        for e in PassProfile::by_label(list) {
            eprintln!("  {:8.1} us {:5.1}%  {:4}x {:7.1} us each  {}", e.ms * 1e3, 100.0 * e.ms / total, e.count, e.ms * 1e3 / e.count as f64, e.label);
        }
    };
    show("prefill (each dispatch alone)", &p.prefill.dispatches, p.prefill.whole_ms);
    show("decode (each dispatch alone)", &p.decode.dispatches, p.decode.whole_ms);
    if !p.decode.repeated.is_empty() {
        show(&format!("decode (each dispatch repeated {}x, per repetition)", p.decode.reps), &p.decode.repeated, p.decode.whole_ms);
    }
    eprintln!("dependent tiny dispatch (mark-seen repeated): {:.2} us", p.dispatch_floor_us);
    eprintln!("decode step: {:.3} ms of CPU to record and submit ({:.3} ms to record without submitting)", p.encode_ms, p.record_ms);
}

/// Ctrl-C stops generation after the current token; a second one exits.
fn ctrlc_cancel() {
    let _ = ctrlc::set_handler(|| {
        if CANCELLED.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    });
}
