//! A mutation fuzzer over the readers of untrusted files (GGUF, safetensors,
//! config.json), run as a test: seeds from the tiny test models, random
//! mutations aimed at lengths, counts and offsets, every input through
//! `engine::fuzz`. A panic fails the test and prints the input's seed and
//! iteration; `fuzz/` has the same entry points for cargo-fuzz (coverage
//! guided, for long runs). EDDY_FUZZ_ITERS sets the inputs per reader
//! (default 20000, a few seconds each).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break size arithmetic.
const INTERESTING: [u64; 12] = [0, 1, 2, 7, 0x7F, 0xFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, u64::MAX >> 1, u64::MAX];

fn mutate(rng: &mut Rng, seed: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(seed);
    for _ in 0..1 + rng.below(6) {
        if out.is_empty() {
            out.push(rng.next() as u8);
        }
        let at = rng.below(out.len());
        match rng.below(8) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = INTERESTING[rng.below(INTERESTING.len())] as u8,
            2 | 3 => {
                // An 8- or 4-byte little-endian field set to a hostile value.
                let v = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let n = if rng.below(2) == 0 { 8 } else { 4 };
                for (i, b) in v.iter().take(n).enumerate() {
                    if let Some(x) = out.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            4 => out.truncate(at),
            5 => {
                let len = rng.below(64).min(out.len() - at);
                let chunk = out[at..at + len].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, chunk);
            }
            6 => {
                let len = rng.below(64).min(out.len() - at);
                out.drain(at..at + len);
            }
            _ => {
                // In text (JSON): a number made huge or negative.
                if out[at].is_ascii_digit() {
                    let s = ["99999999999999999999", "-1", "0", "4294967296", "1e300", "65536"][rng.below(6)];
                    out.splice(at..at + 1, s.bytes());
                }
            }
        }
    }
}

fn iterations() -> usize {
    std::env::var("EDDY_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
}

fn run(name: &str, seeds: &[Vec<u8>], target: fn(&[u8])) {
    let n = iterations();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let mut input = Vec::new();
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let s = rng.below(seeds.len());
        let state = rng.0;
        mutate(&mut rng, &seeds[s], &mut input);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let path = std::env::temp_dir().join(format!("eddy-fuzz-{name}-{i}.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!("{name}: input {i} (seed {s}, rng state {state:#x}) panicked; it is saved in {}", path.display());
        }
    }
    eprintln!("{name}: {n} inputs in {:.1} s, no panic", t0.elapsed().as_secs_f64());
}

/// The header of a GGUF file (its first bytes, up to the data section).
fn gguf_header(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let h = engine::formats::gguf::parse(&bytes).unwrap();
    bytes[..h.data_offset as usize + 64].to_vec()
}

#[test]
fn fuzz_gguf_headers() {
    let seeds = vec![
        gguf_header(&models_dir().join("tiny-lfm2/tiny-lfm2-f32.gguf")),
        gguf_header(&models_dir().join("tiny-lfm2-moe/tiny-lfm2-moe-q8_0.gguf")),
    ];
    // The seeds themselves reach the model description.
    let h = engine::formats::gguf::parse(&seeds[0]).unwrap();
    assert!(engine::model::ModelSpec::from_gguf(&h, "x.gguf", u64::MAX >> 8).is_ok());
    run("gguf", &seeds, engine::fuzz::gguf);
}

#[test]
fn fuzz_safetensors_headers() {
    let bytes = std::fs::read(models_dir().join("tiny-lfm2-moe/model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let seeds = vec![bytes[..8 + n + 64].to_vec()];
    run("safetensors", &seeds, engine::fuzz::safetensors);
}

#[test]
fn fuzz_hf_configs() {
    let seeds: Vec<Vec<u8>> = ["tiny-lfm2", "tiny-lfm2-moe"].iter().map(|m| std::fs::read(models_dir().join(m).join("config.json")).unwrap()).collect();
    assert!(engine::model::ModelConfig::from_hf(&serde_json::from_slice(&seeds[0]).unwrap()).is_ok());
    run("hf_config", &seeds, engine::fuzz::hf_config);
}
