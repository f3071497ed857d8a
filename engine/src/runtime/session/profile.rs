//! Timing a session's passes on the GPU (timestamp queries): per dispatch,
//! per kind of dispatch, and the CPU cost of recording a step.

use super::{buffers::storage, Session};
use crate::{
    gpu::read_buffer,
    model::ModelError,
    runtime::kernels::Dispatch,
};

/// GPU time per kind of dispatch, from timestamp queries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileEntry {
    pub label: String,
    pub count: usize,
    pub ms: f64,
}

/// One dispatch's GPU time, in the order the pass runs them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DispatchTime {
    pub label: String,
    pub ms: f64,
}

/// The GPU times of a pass, per dispatch and per kind of dispatch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PassProfile {
    /// Each dispatch alone in a compute pass (its time includes the wait for the previous one).
    pub dispatches: Vec<DispatchTime>,
    /// Each dispatch repeated `reps` times back to back, per repetition: its
    /// steady-state cost with the barrier before it, as inside a real pass.
    pub repeated: Vec<DispatchTime>,
    pub reps: usize,
    /// The whole pass recorded as in generation (one compute pass), timed at its ends.
    pub whole_ms: f64,
}

impl PassProfile {
    /// Times summed per label, largest first.
    pub fn by_label(list: &[DispatchTime]) -> Vec<ProfileEntry> {
        let mut by_label: Vec<ProfileEntry> = Vec::new();
        for d in list {
            match by_label.iter_mut().find(|e| e.label == d.label) {
                Some(e) => {
                    e.count += 1;
                    e.ms += d.ms;
                }
                None => by_label.push(ProfileEntry { label: d.label.clone(), count: 1, ms: d.ms }),
            }
        }
        by_label.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        by_label
    }
}

/// The profile of a prefill and of one decode step, and the CPU cost of recording a step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub prefill: PassProfile,
    pub decode: PassProfile,
    pub encode_ms: f64,
    /// The CPU time to record one decode step's command buffer, unsubmitted.
    pub record_ms: f64,
    /// A tiny dependent dispatch (mark-seen) repeated: the floor every dispatch pays.
    pub dispatch_floor_us: f64,
}

impl Session {
    /// Runs `groups` of dispatches, each group in its own compute pass timed
    /// at its ends, every dispatch of a group recorded `reps` times; returns
    /// each group's GPU time per repetition.
    async fn timed_groups(&self, groups: &[Vec<&Dispatch>], reps: usize, n_tokens: usize, pos0: usize) -> Result<Vec<f64>, ModelError> {
        let gpu = &self.model.gpu;
        if !gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(ModelError::Gpu("this adapter has no timestamp queries".into()));
        }
        let mut times = Vec::with_capacity(groups.len());
        // Query sets hold at most 4096 queries: time at most 2048 groups per submission.
        for batch in groups.chunks(2048) {
            let n = batch.len() as u32 * 2;
            let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: n });
            let resolved = storage(gpu, "profile", u64::from(n) * 8);
            let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile-resolve"),
                size: u64::from(n) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            for (i, group) in batch.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                for d in group {
                    for _ in 0..reps {
                        d.record(&mut pass, n_tokens as u32, pos0 as u32);
                    }
                }
            }
            enc.resolve_query_set(&set, 0..n, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &resolved, 0, u64::from(n) * 8);
            gpu.queue.submit([enc.finish()]);
            let bytes = read_buffer(gpu, &resolved, u64::from(n) * 8).await?;
            let ticks: &[u64] = bytemuck::cast_slice(&bytes);
            let period = f64::from(gpu.queue.get_timestamp_period());
            for i in 0..batch.len() {
                times.push(ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period / 1e6 / reps as f64);
            }
        }
        Ok(times)
    }

    async fn profile_pass(&self, passes: &[&[Dispatch]], n_tokens: usize, pos0: usize, reps: usize) -> Result<PassProfile, ModelError> {
        let dispatches: Vec<&Dispatch> = passes.iter().flat_map(|p| p.iter()).collect();
        let singles: Vec<Vec<&Dispatch>> = dispatches.iter().map(|d| vec![*d]).collect();
        let label = |times: Vec<f64>| -> Vec<DispatchTime> { dispatches.iter().zip(times).map(|(d, ms)| DispatchTime { label: d.label.clone(), ms }).collect() };
        let alone = label(self.timed_groups(&singles, 1, n_tokens, pos0).await?);
        let repeated = if reps > 1 { label(self.timed_groups(&singles, reps, n_tokens, pos0).await?) } else { Vec::new() };
        let whole_ms = self.timed_groups(&[dispatches.clone()], 1, n_tokens, pos0).await?[0];
        Ok(PassProfile { dispatches: alone, repeated, reps, whole_ms })
    }

    /// Profiles a prefill of `prompt` (from an empty context) and one decode
    /// step after it: GPU time per dispatch, alone and repeated `reps` times,
    /// the CPU time to record a decode step, and the dependent-dispatch floor.
    pub async fn profile(&mut self, prompt: &[u32], reps: usize) -> Result<Profile, ModelError> {
        self.reset();
        self.check_room(prompt.len() + 1)?;
        let n = prompt.len().min(self.chunk);
        self.model.gpu.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::cast_slice(&prompt[..n]));
        self.write_step(n, 0, 0);
        let prefill = self.profile_pass(&[&self.prefill, &self.head], n, 0, 1).await?;
        // Rebuild the state the decode step sees: the prompt in the cache.
        self.reset();
        self.submit(&[&self.prefill], n, 0, None);
        self.write_step(1, n, 1);
        let decode = self.profile_pass(&[&self.decode, &self.head], 1, n, reps).await?;
        let floor_groups: Vec<Vec<&Dispatch>> = self.decode.iter().filter(|d| d.label == "mark-seen").take(1).map(|d| vec![d]).collect();
        let dispatch_floor_us = match floor_groups.is_empty() {
            true => 0.0,
            false => self.timed_groups(&floor_groups, 256, 1, n).await?[0] * 1000.0,
        };
        // CPU cost of recording and submitting one decode step.
        let t0 = crate::clock::now();
        let rounds = 20;
        for _ in 0..rounds {
            self.submit(&[&self.decode, &self.head], 1, n, None);
        }
        let encode_ms = (crate::clock::now() - t0) * 1000.0 / f64::from(rounds);
        read_buffer(&self.model.gpu, &self.bufs.out_ids, 4).await?;
        // The same without submitting: wgpu's and the driver's recording alone.
        let t0 = crate::clock::now();
        for _ in 0..rounds {
            drop(self.record(&[&self.decode, &self.head], 1, n, None));
        }
        let record_ms = (crate::clock::now() - t0) * 1000.0 / f64::from(rounds);
        self.reset();
        Ok(Profile { prefill, decode, encode_ms, record_ms, dispatch_floor_us })
    }
}
