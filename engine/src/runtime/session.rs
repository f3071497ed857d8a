//! A conversation's state on the GPU (KV caches, conv states, activations) and
//! the recorded passes that run it: prefill (batched kernels over a chunk of
//! tokens), decode (one token), and the head (final norm, logits, sampling).

use std::rc::Rc;

mod buffers;
mod lower;
mod profile;
mod snapshot;
pub use profile::{DispatchTime, PassProfile, Profile, ProfileEntry};
pub use snapshot::{RestoreError, Snapshot};

use buffers::Buffers;
use lower::{Builder, Pass};

use super::{
    kernels::Dispatch,
    model::Model,
    ops::Tuning,
    params::{SamplerParams, Step},
};
use crate::{
    gpu::{read_buffer, Gpu},
    model::ModelError,
};

#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Tokens the KV cache holds (capped at the model's context length).
    pub context: usize,
    /// Tokens per prefill pass.
    pub prefill_chunk: usize,
    /// Keep the KV cache in f16 where the device has `shader-f16`.
    pub kv_f16: bool,
    /// Also compute the logits of every prompt position (tests).
    pub all_logits: bool,
    /// Kernel shapes (benchmarks sweep them).
    pub tuning: Tuning,
    /// Decode steps submitted ahead of the token being read, 1 to
    /// [`MAX_DECODE_AHEAD`]. Each step takes its token from the one before
    /// on the GPU, so more steps in flight hide a longer readback round trip
    /// (a browser's GPU process) at the cost of up to this many minus one
    /// steps computed past a stop token and thrown away.
    pub decode_ahead: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self { context: 4096, prefill_chunk: 256, kv_f16: true, all_logits: false, tuning: Tuning::default(), decode_ahead: 1 }
    }
}

/// How the next token is chosen; temperature 0 is greedy.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    /// 0: off.
    pub top_k: u32,
    /// 1: off.
    pub top_p: f32,
    /// 0: off.
    pub min_p: f32,
    /// 1: off.
    pub repeat_penalty: f32,
    pub seed: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0, seed: 0 }
    }
}

impl Sampling {
    fn params(&self, vocab: u32) -> SamplerParams {
        let greedy = self.temperature <= 0.0;
        SamplerParams {
            vocab,
            top_k: self.top_k,
            seed: self.seed,
            greedy: greedy as u32,
            inv_temperature: if greedy { 1.0 } else { 1.0 / self.temperature },
            top_p: self.top_p.clamp(0.0, 1.0),
            min_p: self.min_p.clamp(0.0, 1.0),
            penalty: self.repeat_penalty.max(f32::MIN_POSITIVE),
        }
    }
}

/// What [`Session::generate`] runs: a prompt to append to the conversation,
/// how many tokens at most, how to choose them and when to stop.
pub struct Generate<'a> {
    pub prompt: &'a [u32],
    pub max_tokens: usize,
    pub sampling: &'a Sampling,
    /// Ids that end the reply (the stop token is returned, and consumed).
    pub stop_ids: &'a [u32],
    /// Read the prompt's last logits back into [`Generation::last_logits`].
    pub dump_logits: bool,
    /// Each choice restricted to what it allows (JSON, a grammar).
    pub constraint: Option<&'a mut dyn TokenConstraint>,
}

impl<'a> Generate<'a> {
    /// No stop ids, no logits read back, no constraint.
    pub fn new(prompt: &'a [u32], max_tokens: usize, sampling: &'a Sampling) -> Self {
        Self { prompt, max_tokens, sampling, stop_ids: &[], dump_logits: false, constraint: None }
    }
}

/// What a reply may say, as the tokens each choice may be (a JSON schema or
/// a grammar: [`crate::constrain`]). The session asks for a choice's mask once
/// the token before it is known, while the GPU runs that step's forward pass.
pub trait TokenConstraint {
    /// The tokens the next choice may be: bit `t % 32` of word `t / 32`, for
    /// at least the model's vocabulary.
    fn allowed(&mut self) -> Result<&[u32], ModelError>;
    /// Records the token chosen, before the next [`TokenConstraint::allowed`].
    fn consume(&mut self, token: u32) -> Result<(), ModelError>;
}

/// The sampler's mask with every token allowed (no constraint).
fn allow_every_token(gpu: &Gpu, allowed: &wgpu::Buffer, vocab: usize) {
    gpu.queue.write_buffer(allowed, 0, bytemuck::cast_slice(&vec![u32::MAX; vocab.div_ceil(32)]));
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An end-of-sequence or stop token.
    Stop,
    #[default]
    MaxTokens,
    /// The callback asked to stop.
    Cancelled,
    ContextFull,
}

/// What a generation produced.
#[derive(Debug, Clone, Default)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// Logits at the last prompt position, before sampling (when asked).
    pub last_logits: Option<Vec<f32>>,
    pub prefill_tokens: usize,
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    /// CPU time spent recording and submitting the decode steps.
    pub record_seconds: f64,
    /// Time spent waiting for decode steps' tokens (the GPU ahead of the CPU).
    pub wait_seconds: f64,
}

impl Generation {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        if self.prefill_seconds > 0.0 { self.prefill_tokens as f64 / self.prefill_seconds } else { 0.0 }
    }

    /// Decode speed over the tokens after the first (which prefill produced).
    pub fn decode_tokens_per_s(&self) -> f64 {
        let n = self.tokens.len().saturating_sub(1);
        if self.decode_seconds > 0.0 && n > 0 { n as f64 / self.decode_seconds } else { 0.0 }
    }
}

/// The most decode steps in flight ahead of the token being read. Natively
/// on the H200 (2026-12-02) two and three decoded no faster than one (the CPU
/// records a step in 0.2–0.7 ms, well within the GPU's step).
pub const MAX_DECODE_AHEAD: usize = 3;
/// Token readback slots: the one being read and those of the steps ahead.
const RING: usize = MAX_DECODE_AHEAD + 1;
/// Positions each conv layer's state keeps (shortconv.wgsl's SLOTS): the two
/// inputs before the next token, and the positions of the steps run past a
/// stop token, which then do not disturb them.
const CONV_SLOTS: u64 = MAX_DECODE_AHEAD as u64 + 1;

/// One conversation with a model: the tokens it has seen and their state on the GPU.
pub struct Session {
    model: Rc<Model>,
    options: SessionOptions,
    capacity: usize,
    chunk: usize,
    bufs: Buffers,
    prefill: Vec<Dispatch>,
    decode: Vec<Dispatch>,
    head: Vec<Dispatch>,
    all_logits: Vec<Dispatch>,
    readback: Vec<wgpu::Buffer>,
    history: Vec<u32>,
    sampling: Option<Sampling>,
    /// The allowed-token buffer holds a constraint's mask, not all ones.
    constrained_mask: bool,
    /// Whether the KV caches hold f16 (2 bytes per value) or f32.
    kv_f16: bool,
    /// Which session this is (snapshots are restored only into their own).
    id: u64,
}

impl Session {
    pub fn new(model: Rc<Model>, options: SessionOptions) -> Result<Self, ModelError> {
        let c = model.config().clone();
        let gpu = model.gpu.clone();
        let capacity = options.context.min(c.context_length).max(1);
        let mut chunk = options.prefill_chunk.clamp(1, capacity);
        if options.all_logits {
            // Keep the all-logits buffer within a binding.
            chunk = chunk.min((super::loader::binding_limit(&gpu) / (4 * c.vocab as u64)).max(1) as usize);
        }
        if let Some(m) = &c.moe {
            // The batched MoE prefill keeps gate|up rows per (token, slot) in one binding.
            let per_token = 4 * (m.top_k * 2 * m.expert_ffn) as u64;
            chunk = chunk.min((super::loader::binding_limit(&gpu) / per_token.max(1)).max(1) as usize);
        }
        let kv_f16 = options.kv_f16 && gpu.f16;
        let bufs = Buffers::new(&gpu, &c, capacity, chunk, kv_f16, options.all_logits, Sampling::default().params(c.vocab as u32));
        allow_every_token(&gpu, &bufs.allowed, c.vocab);
        let builder = || Builder { model: &model, bufs: &bufs, chunk, kv_f16, tuning: options.tuning, out: Vec::new() };
        let prefill = builder().body(Pass::Prefill);
        let decode = builder().body(Pass::Decode);
        let head = builder().head();
        let all_logits = if options.all_logits { builder().all_logits() } else { Vec::new() };
        let readback = (0..RING)
            .map(|_| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("token-readback"),
                    size: 8,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        Ok(Self { model, options, capacity, chunk, bufs, prefill, decode, head, all_logits, readback, history: Vec::new(), sampling: None, constrained_mask: false, kv_f16, id: snapshot::next_session_id() })
    }

    pub fn model(&self) -> &Rc<Model> {
        &self.model
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Tokens the context holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tokens the repetition penalty counts as seen (read from the GPU),
    /// ascending: the history's, once each.
    pub async fn seen_tokens(&self) -> Result<Vec<u32>, ModelError> {
        let bytes = read_buffer(&self.model.gpu, &self.bufs.seen, self.bufs.seen.size()).await?;
        let words: &[u32] = bytemuck::cast_slice(&bytes);
        Ok((0..self.model.config().vocab as u32).filter(|&t| words[t as usize / 32] & (1 << (t % 32)) != 0).collect())
    }

    /// The tokens whose state the GPU holds, in order.
    pub fn history(&self) -> &[u32] {
        &self.history
    }

    /// Forgets the conversation: the next prompt starts at position 0.
    pub fn reset(&mut self) {
        self.history.clear();
        let gpu = &self.model.gpu;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.bufs.seen, 0, None);
        for l in &self.bufs.layers {
            if let Some(conv) = &l.conv {
                enc.clear_buffer(conv, 0, None);
            }
        }
        gpu.queue.submit([enc.finish()]);
    }

    /// Runs every pass a chat uses once (a two-token prompt, one decode step)
    /// and forgets it. A browser finishes compiling a pipeline at its first
    /// use, so without this the user's first prompt pays for all of them.
    pub async fn warm_up(&mut self) -> Result<(), ModelError> {
        self.reset();
        if self.capacity >= 3 {
            self.generate(Generate::new(&[0, 0], 1, &Sampling::default()), &mut |_| true).await?;
            self.reset();
        }
        Ok(())
    }

    fn set_sampling(&mut self, s: &Sampling) {
        if self.sampling.as_ref() != Some(s) {
            let params = s.params(self.model.config().vocab as u32);
            self.model.gpu.queue.write_buffer(&self.bufs.sampler, 0, bytemuck::bytes_of(&params));
            self.sampling = Some(s.clone());
        }
    }

    /// Sets the repetition penalty's seen-token bitset to the history's tokens.
    fn write_seen(&self) {
        let mut bits = vec![0u32; (self.model.config().vocab as usize).div_ceil(32)];
        for &t in &self.history {
            bits[t as usize / 32] |= 1 << (t % 32);
        }
        self.model.gpu.queue.write_buffer(&self.bufs.seen, 0, bytemuck::cast_slice(&bits));
    }

    fn write_step(&self, n_tokens: usize, pos0: usize, step: usize) {
        let params = Step { n_tokens: n_tokens as u32, pos0: pos0 as u32, step: step as u32, _pad: 0 };
        self.model.gpu.queue.write_buffer(&self.bufs.step, 0, bytemuck::bytes_of(&params));
    }

    /// Records `passes` into one compute pass, copies out_ids[step] into a
    /// readback slot, and submits.
    fn submit(&self, passes: &[&[Dispatch]], n_tokens: usize, pos0: usize, readback: Option<(usize, usize)>) -> wgpu::SubmissionIndex {
        let commands = self.record(passes, n_tokens, pos0, readback);
        self.model.gpu.queue.submit([commands])
    }

    fn record(&self, passes: &[&[Dispatch]], n_tokens: usize, pos0: usize, readback: Option<(usize, usize)>) -> wgpu::CommandBuffer {
        let gpu = &self.model.gpu;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for list in passes {
                for d in list.iter() {
                    d.record(&mut pass, n_tokens as u32, pos0 as u32);
                }
            }
        }
        if let Some((step, slot)) = readback {
            enc.copy_buffer_to_buffer(&self.bufs.out_ids, 4 * step as u64, &self.readback[slot], 0, 4);
        }
        enc.finish()
    }

    /// The token in readback `slot`, once `submission` (which filled it) is done.
    async fn read_token(&self, slot: usize, submission: Option<wgpu::SubmissionIndex>) -> Result<u32, ModelError> {
        let bytes = crate::gpu::map_and_read(&self.model.gpu, &self.readback[slot], 4, submission).await?;
        Ok(u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")))
    }

    /// Runs `tokens` through the model after the history, in chunks. With
    /// `sample_step`, the last chunk also samples the next token into
    /// out_ids[step]. Returns the logits of every position when the session
    /// was made with `all_logits`.
    async fn prefill(&mut self, tokens: &[u32], sample_step: Option<usize>) -> Result<Option<Vec<f32>>, ModelError> {
        let gpu = self.model.gpu.clone();
        let v = self.model.config().vocab;
        let mut all = self.options.all_logits.then(Vec::new);
        let chunks: Vec<&[u32]> = tokens.chunks(self.chunk).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let sample = last && sample_step.is_some();
            // A short chunk (a regenerated reply's prompt is its last token)
            // runs token by token through the decode pass where whole prefill
            // tiles cost more (Tuning::prefill_by_token).
            if all.is_none() && chunk.len() <= self.options.tuning.prefill_by_token.max(1) as usize {
                for (j, token) in chunk.iter().enumerate() {
                    gpu.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::bytes_of(token));
                    self.write_step(1, self.history.len(), sample_step.unwrap_or(0));
                    let passes: &[&[Dispatch]] = if sample && j + 1 == chunk.len() { &[&self.decode, &self.head] } else { &[&self.decode] };
                    self.submit(passes, 1, self.history.len(), None);
                    self.history.push(*token);
                }
                continue;
            }
            gpu.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::cast_slice(chunk));
            self.write_step(chunk.len(), self.history.len(), sample_step.unwrap_or(0));
            let mut passes: Vec<&[Dispatch]> = vec![&self.prefill];
            if all.is_some() {
                passes.push(&self.all_logits);
            }
            if sample {
                passes.push(&self.head);
            }
            self.submit(&passes, chunk.len(), self.history.len(), None);
            self.history.extend_from_slice(chunk);
            if let (Some(all), Some(buf)) = (all.as_mut(), self.bufs.logits_all.as_ref()) {
                let bytes = read_buffer(&gpu, buf, (chunk.len() * v * 4) as u64).await?;
                all.extend_from_slice(bytemuck::cast_slice::<u8, f32>(&bytes));
            }
        }
        Ok(all)
    }

    /// The logits of every position of `tokens`, appended to the history
    /// (the session must have `all_logits`).
    pub async fn forward_all_logits(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, ModelError> {
        if !self.options.all_logits {
            return Err(ModelError::Invalid("this session was not made with all_logits".into()));
        }
        self.check_room(tokens.len())?;
        let flat = self.prefill(tokens, None).await?.unwrap_or_default();
        Ok(flat.chunks(self.model.config().vocab).map(<[f32]>::to_vec).collect())
    }

    /// Runs `tokens` through the model after the history without sampling
    /// (a prefix to snapshot before the rest of a prompt).
    pub async fn extend(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        self.check_tokens(tokens)?;
        self.prefill(tokens, None).await?;
        Ok(())
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<(), ModelError> {
        let vocab = self.model.config().vocab;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(ModelError::Invalid(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        self.check_room(tokens.len())
    }

    fn check_room(&self, new: usize) -> Result<(), ModelError> {
        if self.history.len() + new > self.capacity {
            return Err(ModelError::ContextOverflow { tokens: self.history.len() + new, context: self.capacity });
        }
        Ok(())
    }

    /// Writes the tokens the next choice may be (all of them without a constraint).
    fn write_allowed(&mut self, constraint: Option<&mut (dyn TokenConstraint + '_)>) -> Result<(), ModelError> {
        let words = self.model.config().vocab.div_ceil(32);
        match constraint {
            Some(c) => {
                let mask = c.allowed()?;
                if mask.len() < words {
                    return Err(ModelError::Constraint(format!("the mask has {} words for a vocabulary of {words}", mask.len())));
                }
                self.model.gpu.queue.write_buffer(&self.bufs.allowed, 0, bytemuck::cast_slice(&mask[..words]));
                self.constrained_mask = true;
            }
            None if self.constrained_mask => {
                allow_every_token(&self.model.gpu, &self.bufs.allowed, self.model.config().vocab);
                self.constrained_mask = false;
            }
            None => {}
        }
        Ok(())
    }

    /// Appends the request's prompt to the conversation and generates up to
    /// `max_tokens` tokens, calling `on_token` with each (return false to
    /// stop). Generation stops at any of `stop_ids`. The last generated token
    /// is run through the model too, so the next call continues the
    /// conversation from here.
    ///
    /// With a constraint, a step runs its forward pass while the CPU reads the
    /// token before it and computes the mask, then its sampler: one step in
    /// flight (`decode_ahead` does not apply), the mask never waiting for the
    /// logits nor the logits for the mask.
    pub async fn generate(&mut self, request: Generate<'_>, on_token: &mut dyn FnMut(u32) -> bool) -> Result<Generation, ModelError> {
        let Generate { prompt, max_tokens, sampling, stop_ids, dump_logits, mut constraint } = request;
        if prompt.is_empty() {
            return Err(ModelError::Invalid("the prompt is empty".into()));
        }
        let vocab = self.model.config().vocab;
        self.check_tokens(prompt)?;
        self.set_sampling(sampling);
        self.write_allowed(constraint.as_deref_mut())?;
        let gpu = self.model.gpu.clone();
        let t0 = crate::clock::now();
        self.prefill(prompt, Some(0)).await?;
        let mut last_logits = None;
        if dump_logits {
            let bytes = read_buffer(&gpu, &self.bufs.logits_last, 4 * vocab as u64).await?;
            last_logits = Some(bytemuck::cast_slice::<u8, f32>(&bytes).to_vec());
        }
        // Copy the first choice out: the prefill pass wrote it to out_ids[0].
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&self.bufs.out_ids, 0, &self.readback[0], 0, 4);
        let mut filled: [Option<wgpu::SubmissionIndex>; RING] = Default::default();
        filled[0] = Some(gpu.queue.submit([enc.finish()]));
        let prefill_tokens = prompt.len();
        let mut tokens = Vec::new();
        let mut stop = StopReason::MaxTokens;
        let mut prefill_seconds = 0.0;
        let mut t_first = t0;
        let mut step = 0usize;
        if max_tokens == 0 {
            let _ = self.read_token(0, filled[0].take()).await?;
            return Ok(Generation { tokens, stop, last_logits, prefill_tokens, prefill_seconds: crate::clock::now() - t0, ..Generation::default() });
        }
        // Steps submitted ahead of the one being read: step k consumes the
        // token chosen at step k-1 (which stays on the GPU) at position base+k-1.
        let ahead = if constraint.is_some() { 1 } else { self.options.decode_ahead.clamp(1, MAX_DECODE_AHEAD) };
        // A constrained step's sampler, submitted once its mask is known.
        let sampler_at = self.head.len() - 1;
        let base = self.history.len();
        let mut submitted = 0usize;
        let (mut record_seconds, mut wait_seconds) = (0.0, 0.0);
        loop {
            // The last token is run through the model too (so the next turn
            // continues from it): max_tokens steps after the prefill.
            while submitted < step + ahead && submitted < max_tokens && base + submitted < self.capacity {
                let next = submitted + 1;
                let t = crate::clock::now();
                self.write_step(1, base + submitted, next);
                if constraint.is_some() {
                    self.submit(&[&self.decode, &self.head[..sampler_at]], 1, base + submitted, None);
                } else {
                    filled[next % RING] = Some(self.submit(&[&self.decode, &self.head], 1, base + submitted, Some((next, next % RING))));
                }
                record_seconds += crate::clock::now() - t;
                submitted = next;
            }
            let t = crate::clock::now();
            let token = self.read_token(step % RING, filled[step % RING].take()).await?;
            if step == 0 {
                prefill_seconds = crate::clock::now() - t0;
                t_first = crate::clock::now();
            } else {
                wait_seconds += crate::clock::now() - t;
            }
            // Consumed by the model once step+1 was submitted.
            let consumed = submitted > step;
            if consumed {
                self.history.push(token);
            }
            tokens.push(token);
            let keep_going = on_token(token);
            if stop_ids.contains(&token) {
                stop = StopReason::Stop;
            } else if !keep_going {
                stop = StopReason::Cancelled;
            } else if tokens.len() >= max_tokens {
                stop = StopReason::MaxTokens;
            } else if !consumed || self.history.len() >= self.capacity {
                stop = StopReason::ContextFull;
            } else {
                step += 1;
                if let Some(c) = constraint.as_deref_mut() {
                    let t = crate::clock::now();
                    c.consume(token)?;
                    self.write_allowed(Some(c))?;
                    let pos = base + step - 1;
                    filled[step % RING] = Some(self.submit(&[&self.head[sampler_at..]], 1, pos, Some((step, step % RING))));
                    record_seconds += crate::clock::now() - t;
                }
                continue;
            }
            break;
        }
        // Let the steps in flight finish so the state is settled (a
        // constrained step past the stop ran its forward pass, not its sampler).
        for k in step + 1..=submitted {
            if let Some(submission) = filled[k % RING].take() {
                self.read_token(k % RING, Some(submission)).await?;
            }
        }
        // Steps past the one that consumed the last token ran on tokens that
        // are not in the conversation: the conv layers keep them apart by
        // position and their KV rows are overwritten later, but each marked
        // its token seen. The seen tokens are the history's.
        if submitted > step + 1 {
            self.write_seen();
        }
        let decode_seconds = crate::clock::now() - t_first;
        Ok(Generation { tokens, stop, last_logits, prefill_tokens, prefill_seconds, decode_seconds, record_seconds, wait_seconds })
    }
}

