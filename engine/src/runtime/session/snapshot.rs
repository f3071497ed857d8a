//! Snapshots of a session's state at a token boundary, so that a chat can go
//! back to an earlier point (regenerate a reply, edit a message, switch
//! branches, start another conversation with the same system prompt) without
//! running the conversation before it through the model again.
//!
//! A hybrid model's state at position n is more than its KV rows: each
//! short-convolution layer carries the last inputs it saw, and the sampler's
//! repetition penalty the set of tokens seen. Those are small (a few rows of
//! the hidden width, a bit per vocabulary entry) and are copied whole. The KV
//! rows of positions < n need no copy as long as the session still holds the
//! same tokens there: later tokens only write rows past them. Where the
//! session may have moved on (another conversation reset it), a snapshot can
//! keep its own copy of those rows too (`with_kv`), at n × attention layers ×
//! 2 × kv width bytes.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Session;
use crate::model::ModelError;

/// Tells sessions apart, so a snapshot is restored only into its own.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_session_id() -> u64 {
    NEXT_SESSION.fetch_add(1, Ordering::Relaxed)
}

/// A session's state after its first `tokens().len()` tokens.
pub struct Snapshot {
    session: u64,
    tokens: Vec<u32>,
    /// One per short-convolution layer, in layer order.
    conv: Vec<wgpu::Buffer>,
    seen: wgpu::Buffer,
    /// Rows 0..len of each attention layer's K and V caches, head after head.
    kv: Option<Vec<(wgpu::Buffer, wgpu::Buffer)>>,
    bytes: u64,
}

/// Why a snapshot cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the snapshot belongs to another session")]
    OtherSession,
    #[error("the session no longer holds the snapshot's tokens and the snapshot kept no KV rows")]
    Diverged,
}

impl From<RestoreError> for ModelError {
    fn from(e: RestoreError) -> Self {
        ModelError::Invalid(e.to_string())
    }
}

impl Snapshot {
    /// The tokens whose state this is.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// GPU memory it holds.
    pub fn gpu_bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether it carries its KV rows (restorable after the session moved on).
    pub fn has_kv(&self) -> bool {
        self.kv.is_some()
    }
}

fn copy_of(gpu: &crate::gpu::Gpu, label: &str, size: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(4),
        usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl Session {
    /// Bytes of one KV-cache row of one head, and heads per layer.
    fn kv_row(&self) -> (u64, u64) {
        let c = self.model.config();
        let bpe = if self.kv_f16 { 2 } else { 4 };
        (c.head_dim as u64 * bpe, c.n_kv_heads as u64)
    }

    /// The state after the tokens the session holds now. The copies are
    /// queued on the GPU after everything submitted so far, so a snapshot
    /// taken between two calls is exact.
    pub fn snapshot(&self, with_kv: bool) -> Snapshot {
        let gpu = &self.model.gpu;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let mut bytes = 0;
        let mut conv = Vec::new();
        let mut kv_rows = Vec::new();
        let (row, heads) = self.kv_row();
        let len = self.history.len() as u64;
        for layer in &self.bufs.layers {
            if let Some(state) = &layer.conv {
                let copy = copy_of(gpu, "snapshot-conv", state.size());
                enc.copy_buffer_to_buffer(state, 0, &copy, 0, state.size());
                bytes += state.size();
                conv.push(copy);
            }
            if let (true, Some((k, v))) = (with_kv, &layer.kv) {
                let per_head = row * len;
                let pair = (copy_of(gpu, "snapshot-k", heads * per_head), copy_of(gpu, "snapshot-v", heads * per_head));
                if per_head > 0 {
                    for h in 0..heads {
                        let at = h * row * self.capacity as u64;
                        enc.copy_buffer_to_buffer(k, at, &pair.0, h * per_head, per_head);
                        enc.copy_buffer_to_buffer(v, at, &pair.1, h * per_head, per_head);
                    }
                }
                bytes += 2 * heads * per_head;
                kv_rows.push(pair);
            }
        }
        let seen = copy_of(gpu, "snapshot-seen", self.bufs.seen.size());
        enc.copy_buffer_to_buffer(&self.bufs.seen, 0, &seen, 0, self.bufs.seen.size());
        bytes += self.bufs.seen.size();
        gpu.queue.submit([enc.finish()]);
        Snapshot { session: self.id, tokens: self.history.clone(), conv, seen, kv: with_kv.then_some(kv_rows), bytes }
    }

    /// Whether [`Session::restore`] would take `snap`.
    pub fn can_restore(&self, snap: &Snapshot) -> Result<(), RestoreError> {
        if snap.session != self.id {
            return Err(RestoreError::OtherSession);
        }
        if !self.history.starts_with(&snap.tokens) && snap.kv.is_none() {
            return Err(RestoreError::Diverged);
        }
        Ok(())
    }

    /// Returns the session to `snap`'s state: the next tokens continue after
    /// its tokens, as if nothing had come after them.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<(), RestoreError> {
        self.can_restore(snap)?;
        let gpu = self.model.gpu.clone();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let kv_still_there = self.history.starts_with(&snap.tokens);
        let (row, heads) = self.kv_row();
        let per_head = row * snap.tokens.len() as u64;
        let mut conv = snap.conv.iter();
        let mut kv = snap.kv.iter().flatten();
        for layer in &self.bufs.layers {
            if let Some(state) = &layer.conv {
                let copy = conv.next().expect("a snapshot has one copy per conv layer");
                enc.copy_buffer_to_buffer(copy, 0, state, 0, state.size());
            }
            if let Some((k, v)) = &layer.kv {
                let rows = kv.next();
                if let (false, Some((ck, cv))) = (kv_still_there, rows) {
                    if per_head > 0 {
                        for h in 0..heads {
                            let at = h * row * self.capacity as u64;
                            enc.copy_buffer_to_buffer(ck, h * per_head, k, at, per_head);
                            enc.copy_buffer_to_buffer(cv, h * per_head, v, at, per_head);
                        }
                    }
                }
            }
        }
        enc.copy_buffer_to_buffer(&snap.seen, 0, &self.bufs.seen, 0, self.bufs.seen.size());
        gpu.queue.submit([enc.finish()]);
        self.history.clear();
        self.history.extend_from_slice(&snap.tokens);
        Ok(())
    }
}
