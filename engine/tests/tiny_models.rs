//! tiny-lfm2, tiny-lfm2-moe, tiny-qwen3, tiny-gemma3 and tiny-lfm2.5-moe against transformers' float32
//! outputs (fixtures/models/*/reference.json), from safetensors and from the
//! f32 GGUF.

mod common;

use common::*;
use engine::runtime::session::{Generate, Sampling};
use serde_json::Value;

fn reference(name: &str) -> Value {
    let path = models_dir().join(name).join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// A logit vector of the reference, with the rows it leaves out (`zero_rows`,
/// half-open id ranges whose logits are exactly 0) put back.
fn logits(r: &Value, v: &Value) -> Vec<f32> {
    let mut out = floats(v);
    if let Some(ranges) = r.get("zero_rows") {
        for range in ranges.as_array().unwrap() {
            let (lo, hi) = (range[0].as_u64().unwrap() as usize, range[1].as_u64().unwrap() as usize);
            out.splice(lo..lo, std::iter::repeat_n(0.0, hi - lo));
        }
    }
    out
}

const TOL: f32 = 1e-3;

fn check_model(name: &str, source: &str, kv_f16: bool, tol: f32) {
    let gpu = gpu(kv_f16);
    let path = models_dir().join(name).join(source);
    let model = load(&gpu, &path);
    let r = reference(name);
    for prompt in r["prompts"].as_array().unwrap() {
        let pname = prompt["name"].as_str().unwrap();
        let input = ids(&prompt["input_ids"]);
        // Every position's logits, where the reference has them.
        if let Some(all) = prompt.get("all_logits") {
            let mut s = session(&model, true, kv_f16);
            let got = pollster::block_on(s.forward_all_logits(&input)).unwrap();
            for (pos, want) in all.as_array().unwrap().iter().enumerate() {
                let e = rel_err(&got[pos], &logits(&r, want));
                assert!(e < tol, "{name}/{source} {pname}: position {pos} logits off by {e:.2e} (relative)");
            }
        }
        // Last logits and 20 greedy tokens.
        let mut s = session(&model, false, kv_f16);
        let want_greedy = ids(&prompt["greedy_ids"]);
        let out = pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(&input, want_greedy.len(), &Sampling::default()) }, &mut |_| true)).unwrap();
        let e = rel_err(out.last_logits.as_ref().unwrap(), &logits(&r, &prompt["last_logits"]));
        assert!(e < tol, "{name}/{source} {pname}: last logits off by {e:.2e}");
        assert_eq!(out.tokens, want_greedy, "{name}/{source} {pname}: greedy tokens");
        eprintln!("{name}/{source} {pname}: last logits within {e:.1e}, {} greedy tokens equal", out.tokens.len());
    }
}

#[test]
fn tiny_lfm2_safetensors() {
    check_model("tiny-lfm2", ".", false, TOL);
}

#[test]
fn tiny_lfm2_gguf_f32() {
    check_model("tiny-lfm2", "tiny-lfm2-f32.gguf", false, TOL);
}

/// Qwen3: QK-norm, NeoX RoPE in GGUF too, an untied head, no BOS, a model
/// vocabulary padded past the tokenizer's.
#[test]
fn tiny_qwen3_safetensors() {
    check_model("tiny-qwen3", ".", false, TOL);
}

#[test]
fn tiny_qwen3_gguf_f32() {
    check_model("tiny-qwen3", "tiny-qwen3-f32.gguf", false, TOL);
}

/// Gemma 3: sandwich norms (gains stored as g - 1 in safetensors, g in GGUF),
/// GeGLU, the embedding scaled by √hidden, five local layers with a 4-token
/// window and RoPE base 1e4 before a global one (1e6), query_pre_attn_scalar
/// 24 for a head of 16. Every prompt runs past the window.
#[test]
fn tiny_gemma3_safetensors() {
    check_model("tiny-gemma3", ".", false, TOL);
}

#[test]
fn tiny_gemma3_gguf_f32() {
    check_model("tiny-gemma3", "tiny-gemma3-f32.gguf", false, TOL);
}

/// With an f16 KV cache where the device has shader-f16.
#[test]
fn tiny_gemma3_gguf_f16_cache() {
    check_model("tiny-gemma3", "tiny-gemma3-f32.gguf", true, 2e-3);
}

/// LFM2.5-style: a 124,160-row vocabulary whose specials sit above id
/// 124,000 (bos 124,001, eos 124,007), rope theta 5e6, bfloat16 weights.
#[test]
fn tiny_lfm25_moe_safetensors_bf16() {
    check_model("tiny-lfm2.5-moe", ".", false, TOL);
}

#[test]
fn tiny_lfm25_moe_gguf_bf16() {
    let gguf = models_dir().join("tiny-lfm2.5-moe/tiny-lfm2.5-moe-bf16.gguf");
    assert!(gguf.exists(), "{} is written by scripts/fetch-models.sh", gguf.display());
    check_model("tiny-lfm2.5-moe", "tiny-lfm2.5-moe-bf16.gguf", false, TOL);
}

#[test]
fn tiny_lfm2_moe_safetensors() {
    check_model("tiny-lfm2-moe", ".", false, TOL);
}

#[test]
fn tiny_lfm2_moe_gguf_f32() {
    check_model("tiny-lfm2-moe", "tiny-lfm2-moe-f32.gguf", false, TOL);
}

/// With an f16 KV cache (the default where the device has shader-f16), the
/// same bounds hold (llama.cpp's f16 cache is off by 3e-3 on this model).
#[test]
fn tiny_lfm2_f16_kv_cache() {
    check_model("tiny-lfm2", "tiny-lfm2-f32.gguf", true, TOL);
    check_model("tiny-lfm2-moe", ".", true, TOL);
}

/// The streaming loader holds at most one run of staged rows (a few MiB), not
/// one per matrix: with runs left open until the end, its memory grew with
/// the model (301 MiB of wasm heap for a 4.7 GB model in the browser).
#[test]
fn loader_memory_does_not_grow_with_the_model() {
    let gpu = gpu(false);
    for (name, file) in [("tiny-lfm2", "tiny-lfm2-f32.gguf"), ("tiny-lfm2-moe", "tiny-lfm2-moe-f32.gguf"), ("tiny-lfm2", ".")] {
        let model = load(&gpu, &models_dir().join(name).join(file));
        let weights = model.spec.weight_bytes();
        let largest = model.weights.matrices.values().map(|m| m.gpu_bytes()).max().unwrap();
        eprintln!("{name}/{file}: loader peak {} bytes for {weights} bytes of weights (largest matrix {largest})", model.peak_loader_bytes.get());
        assert!(model.peak_loader_bytes.get() <= largest, "{name}/{file}: the loader held {} bytes at once, more than the largest matrix ({largest})", model.peak_loader_bytes.get());
        assert!(model.peak_loader_bytes.get() * 2 < weights, "{name}/{file}: the loader held {} of {weights} bytes", model.peak_loader_bytes.get());
    }
}

/// Warming a session up (every pass run once, so a browser compiles its
/// pipelines before the first prompt) leaves no trace: the same prompt then
/// gives bit-identical logits and tokens to a fresh session's, also with a
/// repetition penalty, which reads the set of tokens seen so far.
#[test]
fn a_warmed_up_session_answers_as_a_fresh_one() {
    let gpu = gpu(false);
    for name in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let model = load(&gpu, &models_dir().join(name).join("."));
        let r = reference(name);
        let input = ids(&r["prompts"][0]["input_ids"]);
        let penalised = Sampling { repeat_penalty: 1.3, ..Sampling::default() };
        for sampling in [Sampling::default(), penalised] {
            let run = |warm: bool| {
                let mut s = session(&model, false, false);
                if warm {
                    pollster::block_on(s.warm_up()).unwrap();
                    assert!(s.history().is_empty(), "{name}: the warm-up is forgotten");
                }
                pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(&input, 12, &sampling) }, &mut |_| true)).unwrap()
            };
            let (fresh, warmed) = (run(false), run(true));
            assert_eq!(warmed.tokens, fresh.tokens, "{name} {sampling:?}: tokens after a warm-up");
            assert_eq!(warmed.last_logits, fresh.last_logits, "{name} {sampling:?}: logits after a warm-up");
        }
    }
}

/// A snapshot at a turn boundary takes the session back there (regenerate,
/// edit, switch branches): the next turn is bit for bit what a session that
/// never went further answers, also with a repetition penalty, which reads
/// the tokens seen so far, and on the hybrid model, whose conv layers carry
/// the last inputs they saw. With its KV rows, a snapshot survives the
/// session starting another conversation (a prefix cache).
#[test]
fn a_restored_snapshot_answers_as_if_nothing_came_after_it() {
    use engine::runtime::session::RestoreError;
    let gpu = gpu(true);
    for name in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let model = load(&gpu, &models_dir().join(name).join("."));
        let r = reference(name);
        let first = ids(&r["prompts"][0]["input_ids"]);
        let vocab = model.config().vocab as u32;
        // Tokens the first turn never saw, so the repetition penalty tells the branches apart.
        let detour: Vec<u32> = (1..8).map(|i| (first[0] + 97 * i) % vocab).collect();
        let second: Vec<u32> = (3..8).map(|i| (first[0] + 31 * i) % vocab).collect();
        let sampling = Sampling { repeat_penalty: 1.3, ..Sampling::default() };
        for kv_f16 in [false, true] {
            let turn = |s: &mut engine::runtime::session::Session, prompt: &[u32]| {
                pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(prompt, 6, &sampling) }, &mut |_| true)).unwrap()
            };
            let mut straight = session(&model, false, kv_f16);
            turn(&mut straight, &first);
            let want = turn(&mut straight, &second);

            let mut s = session(&model, false, kv_f16);
            turn(&mut s, &first);
            let snap = s.snapshot(false);
            let with_kv = s.snapshot(true);
            assert!(with_kv.gpu_bytes() > snap.gpu_bytes());
            turn(&mut s, &detour);
            s.restore(&snap).unwrap();
            assert_eq!(s.history(), snap.tokens());
            let got = turn(&mut s, &second);
            assert_eq!(got.tokens, want.tokens, "{name} kv_f16={kv_f16}: tokens after going back");
            assert_eq!(got.last_logits, want.last_logits, "{name} kv_f16={kv_f16}: logits after going back");

            // Another conversation overwrites the KV rows: only the snapshot with them comes back.
            s.reset();
            turn(&mut s, &detour);
            assert_eq!(s.can_restore(&snap), Err(RestoreError::Diverged));
            s.restore(&with_kv).unwrap();
            let got = turn(&mut s, &second);
            assert_eq!(got.tokens, want.tokens, "{name} kv_f16={kv_f16}: tokens from a snapshot with KV rows");
            assert_eq!(got.last_logits, want.last_logits, "{name} kv_f16={kv_f16}: logits from a snapshot with KV rows");
            let other = session(&model, false, kv_f16);
            assert_eq!(other.can_restore(&with_kv), Err(RestoreError::OtherSession));
        }

        // A prompt run as all but its last token (snapshotted there, so a
        // regenerated reply prefills one token) and then that token answers
        // as the prompt run whole.
        let mut whole = session(&model, false, false);
        let want = pollster::block_on(whole.generate(Generate { dump_logits: true, ..Generate::new(&first, 6, &sampling) }, &mut |_| true)).unwrap();
        let mut split = session(&model, false, false);
        pollster::block_on(split.extend(&first[..first.len() - 1])).unwrap();
        let got = pollster::block_on(split.generate(Generate { dump_logits: true, ..Generate::new(&first[first.len() - 1..], 6, &sampling) }, &mut |_| true)).unwrap();
        let e = rel_err(got.last_logits.as_ref().unwrap(), want.last_logits.as_ref().unwrap());
        assert!(e < 1e-5, "{name}: a split prompt's logits off by {e:.1e}");
        assert_eq!(got.tokens, want.tokens, "{name}: a split prompt's tokens");
    }
}

/// A session made when the load begins (so its kernels compile while the
/// bytes arrive, as the browser does) runs the model exactly as one made
/// after: every buffer it binds exists from the start and is filled later.
#[test]
fn session_built_before_the_weights_arrive() {
    let gpu = gpu(false);
    for name in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let path = models_dir().join(name).join(format!("{name}-f32.gguf"));
        let local = engine::source::open(&path).unwrap();
        let mut load = engine::runtime::model::Model::begin_load(&gpu, local.spec).unwrap();
        let mut early = session(load.model(), false, false);
        let compiled = load.model().kernels.len();
        assert!(compiled > 5, "{name}: {compiled} pipelines built before any byte arrived");
        let bytes = std::fs::read(&path).unwrap();
        for (i, piece) in bytes.chunks(1 << 16).enumerate() {
            load.feed(0, (i << 16) as u64, piece).unwrap();
        }
        let model = load.finish().unwrap();
        let r = reference(name);
        let prompt = &r["prompts"][0];
        let want = ids(&prompt["greedy_ids"]);
        let out = pollster::block_on(early.generate(Generate { dump_logits: true, ..Generate::new(&ids(&prompt["input_ids"]), want.len(), &Sampling::default()) }, &mut |_| true)).unwrap();
        let e = rel_err(out.last_logits.as_ref().unwrap(), &logits(&r, &prompt["last_logits"]));
        assert!(e < TOL, "{name}: last logits off by {e:.2e}");
        assert_eq!(out.tokens, want, "{name}: greedy tokens");
        assert_eq!(model.kernels.len(), compiled, "{name}: running it built no new pipeline");
    }
}

/// The MoE decode with a routing kernel between the router and the experts
/// (instead of the default, routing inside the gate/up mat-vec) answers as the reference.
#[test]
fn tiny_lfm2_moe_with_a_routing_kernel() {
    use engine::runtime::{ops::Tuning, session::{Session, SessionOptions}};
    let gpu = gpu(false);
    let model = load(&gpu, &models_dir().join("tiny-lfm2-moe").join("tiny-lfm2-moe-f32.gguf"));
    let r = reference("tiny-lfm2-moe");
    let tuning = Tuning { route_in_gate_up: false, ..Tuning::DEFAULT };
    for prompt in r["prompts"].as_array().unwrap() {
        let mut s = Session::new(model.clone(), SessionOptions { context: 512, prefill_chunk: 64, kv_f16: false, tuning, ..Default::default() }).unwrap();
        let want = ids(&prompt["greedy_ids"]);
        let out = pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(&ids(&prompt["input_ids"]), want.len(), &Sampling::default()) }, &mut |_| true)).unwrap();
        assert_eq!(out.tokens, want, "{}: greedy tokens", prompt["name"]);
    }
}

/// Prompts run token by token through the decode pass (as on SwiftShader,
/// `Tuning::prefill_by_token`) answer as the reference: the same greedy
/// tokens and last-position logits.
#[test]
fn prompts_through_the_decode_pass_token_by_token() {
    use engine::runtime::{ops::Tuning, session::{Session, SessionOptions}};
    let gpu = gpu(false);
    for name in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let model = load(&gpu, &models_dir().join(name).join(format!("{name}-f32.gguf")));
        let r = reference(name);
        let tuning = Tuning { prefill_by_token: 4096, ..Tuning::for_adapter(&gpu) };
        for prompt in r["prompts"].as_array().unwrap() {
            let mut s = Session::new(model.clone(), SessionOptions { context: 512, prefill_chunk: 64, kv_f16: false, tuning, ..Default::default() }).unwrap();
            let want = ids(&prompt["greedy_ids"]);
            let out = pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(&ids(&prompt["input_ids"]), want.len(), &Sampling::default()) }, &mut |_| true)).unwrap();
            assert_eq!(out.tokens, want, "{name} {}: greedy tokens", prompt["name"]);
            let e = rel_err(out.last_logits.as_ref().unwrap(), &logits(&r, &prompt["last_logits"]));
            assert!(e < 1e-4, "{name} {}: last logits {e:.2e}", prompt["name"]);
        }
    }
}

/// Decode steps submitted ahead of the token being read (the browser's
/// setting, to hide its readback round trip) answer as one step at a time:
/// the reference's greedy tokens, and after a turn that ends on a stop token
/// or a cancellation with steps still in flight, the next turn is bit for bit
/// the same: the conv layers' state and the repetition penalty's seen tokens
/// are untouched by the steps run past the end.
#[test]
fn decoding_ahead_answers_as_one_step_at_a_time() {
    use engine::runtime::session::{Generation, Session, SessionOptions, MAX_DECODE_AHEAD};
    let gpu = gpu(false);
    for name in ["tiny-lfm2", "tiny-lfm2-moe"] {
        let model = load(&gpu, &models_dir().join(name).join(format!("{name}-f32.gguf")));
        let r = reference(name);
        let prompt = &r["prompts"][0];
        let first = ids(&prompt["input_ids"]);
        let vocab = model.config().vocab as u32;
        let second: Vec<u32> = (3..8).map(|i| (first[0] + 31 * i) % vocab).collect();
        let penalised = Sampling { repeat_penalty: 1.5, ..Sampling::default() };
        let session = |ahead: usize| Session::new(model.clone(), SessionOptions { context: 512, prefill_chunk: 64, kv_f16: false, decode_ahead: ahead, ..Default::default() }).unwrap();
        // The token the first turn stops at: its fourth, so steps are in flight then.
        let free = pollster::block_on(session(1).generate(Generate::new(&first, 12, &penalised), &mut |_| true)).unwrap();
        let stop = free.tokens[3];
        // Two turns: the first ends at `stop` (or is cancelled after 3 tokens), the second runs on.
        let two_turns = |ahead: usize, cancel: bool| -> (Generation, Generation) {
            let mut s = session(ahead);
            let mut n = 0;
            let stops: &[u32] = if cancel { &[] } else { &[stop] };
            let a = pollster::block_on(s.generate(Generate { stop_ids: stops, ..Generate::new(&first, 12, &penalised) }, &mut |_| {
                n += 1;
                !cancel || n < 3
            }))
            .unwrap();
            let mut seen = s.history().to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(pollster::block_on(s.seen_tokens()).unwrap(), seen, "{name} ahead {ahead}: the penalty's seen tokens are the history's");
            let b = pollster::block_on(s.generate(Generate { dump_logits: true, ..Generate::new(&second, 8, &penalised) }, &mut |_| true)).unwrap();
            (a, b)
        };
        for cancel in [false, true] {
            let (want_a, want_b) = two_turns(1, cancel);
            for ahead in 2..=MAX_DECODE_AHEAD {
                let greedy = ids(&prompt["greedy_ids"]);
                let out = pollster::block_on(session(ahead).generate(Generate::new(&first, greedy.len(), &Sampling::default()), &mut |_| true)).unwrap();
                assert_eq!(out.tokens, greedy, "{name} ahead {ahead}: greedy tokens");
                let (a, b) = two_turns(ahead, cancel);
                assert_eq!((a.tokens, a.stop), (want_a.tokens.clone(), want_a.stop), "{name} ahead {ahead} cancel {cancel}: first turn");
                assert_eq!(b.tokens, want_b.tokens, "{name} ahead {ahead} cancel {cancel}: the turn after");
                assert_eq!(b.last_logits, want_b.last_logits, "{name} ahead {ahead} cancel {cancel}: logits of the turn after");
            }
        }
    }
}
