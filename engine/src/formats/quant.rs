//! Dequantization on the CPU, bit-for-bit as GGML (and the `gguf` Python package)
//! defines it. The GPU kernels dequantize inside the matmuls; this code is their
//! reference and turns small tensors (norms, conv taps, routers) into f32 at load.

use half::{bf16, f16};

use super::DType;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K super-block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// IQ4_NL's 16 non-uniform levels (GGML's `kvalues_iq4nl`).
pub const IQ4NL_LEVELS: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// The signed 6-bit scale of sub-block `j` of a Q3_K super-block (12 bytes:
/// low nibbles in bytes 0..8, two high bits each in bytes 8..12), minus 32.
fn scale_q3k(j: usize, s: &[u8]) -> i8 {
    let lo = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
    let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    (lo | (hi << 4)) as i8 - 32
}

fn block(dtype: DType, b: &[u8], y: &mut [f32]) {
    match dtype {
        DType::F32 => y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        DType::F16 => y[0] = f16_at(b, 0),
        DType::BF16 => y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::Q8_0 => {
            let d = f16_at(b, 0);
            for (j, out) in y.iter_mut().enumerate() {
                *out = d * f32::from(b[2 + j] as i8);
            }
        }
        DType::Q4_0 => {
            let d = f16_at(b, 0);
            for j in 0..16 {
                let q = b[2 + j];
                y[j] = f32::from((q & 0xF) as i8 - 8) * d;
                y[j + 16] = f32::from((q >> 4) as i8 - 8) * d;
            }
        }
        DType::Q4_1 => {
            let (d, m) = (f16_at(b, 0), f16_at(b, 2));
            for j in 0..16 {
                let q = b[4 + j];
                y[j] = f32::from(q & 0xF) * d + m;
                y[j + 16] = f32::from(q >> 4) * d + m;
            }
        }
        DType::Q5_0 | DType::Q5_1 => {
            // d (and Q5_1's m), the fifth bits qh (bit j for value j), then
            // nibbles as in Q4_0: value = (q - 16) * d, or q * d + m.
            let q5 = dtype == DType::Q5_0;
            let at = if q5 { 2 } else { 4 };
            let (d, m) = (f16_at(b, 0), if q5 { 0.0 } else { f16_at(b, 2) });
            let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let value = |q: u32| if q5 { (q as i32 - 16) as f32 * d } else { q as f32 * d + m };
            for j in 0..16 {
                let q = u32::from(b[at + 4 + j]);
                y[j] = value((q & 0xF) | (((qh >> j) & 1) << 4));
                y[j + 16] = value((q >> 4) | (((qh >> (j + 16)) & 1) << 4));
            }
        }
        DType::IQ4NL => {
            let d = f16_at(b, 0);
            for j in 0..16 {
                let q = b[2 + j];
                y[j] = d * f32::from(IQ4NL_LEVELS[usize::from(q & 0xF)]);
                y[j + 16] = d * f32::from(IQ4NL_LEVELS[usize::from(q >> 4)]);
            }
        }
        DType::Q2K => {
            // 16 scale bytes (low nibble: scale, high: min), 64 bytes of 2-bit
            // values, d, dmin. Value v: byte 32(v/128) + v%32, bits 2((v%128)/32);
            // sub-block v/16.
            let (scales, qs) = (&b[0..16], &b[16..80]);
            let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
            for (v, out) in y.iter_mut().enumerate() {
                let q = (qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
                let sc = scales[v / 16];
                *out = d * f32::from(sc & 0xF) * f32::from(q) - dmin * f32::from(sc >> 4);
            }
        }
        DType::Q3K => {
            // 32 bytes of high-bit mask, 64 of 2-bit values, 12 of scales, d.
            // Value v: low bits as in Q2_K, high bit (4(v/128) + (v%128)/32) of
            // mask byte v%32 (clear: minus 4), sub-block v/16.
            let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
            let d = f16_at(b, 108);
            for (v, out) in y.iter_mut().enumerate() {
                let shift = (v % 128) / 32;
                let low = (qs[32 * (v / 128) + v % 32] >> (2 * shift)) & 3;
                let high = (hmask[v % 32] >> (4 * (v / 128) + shift)) & 1;
                let q = low as i8 - if high == 0 { 4 } else { 0 };
                *out = d * f32::from(scale_q3k(v / 16, scales)) * f32::from(q);
            }
        }
        DType::Q4K => {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let scales = &b[4..16];
            let qs = &b[16..144];
            for (chunk, q) in qs.chunks(32).enumerate() {
                let (sc1, m1) = scale_min_k4(2 * chunk, scales);
                let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
                let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
                let out = &mut y[chunk * 64..chunk * 64 + 64];
                for l in 0..32 {
                    out[l] = d1 * f32::from(q[l] & 0xF) - m1;
                    out[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
                }
            }
        }
        DType::Q5K => {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let scales = &b[4..16];
            let qh = &b[16..48];
            let qs = &b[48..176];
            for (chunk, ql) in qs.chunks(32).enumerate() {
                let (sc1, m1) = scale_min_k4(2 * chunk, scales);
                let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
                let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
                let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
                let out = &mut y[chunk * 64..chunk * 64 + 64];
                for l in 0..32 {
                    let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                    let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                    out[l] = d1 * f32::from((ql[l] & 0xF) + h1) - m1;
                    out[l + 32] = d2 * f32::from((ql[l] >> 4) + h2) - m2;
                }
            }
        }
        DType::Q6K => {
            let ql_all = &b[0..128];
            let qh_all = &b[128..192];
            let sc_all = &b[192..208];
            let d = f16_at(b, 208);
            for half in 0..2 {
                let ql = &ql_all[half * 64..];
                let qh = &qh_all[half * 32..];
                let sc = &sc_all[half * 8..];
                let out = &mut y[half * 128..half * 128 + 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32;
                    let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                    out[l] = d * f32::from(sc[is] as i8) * f32::from(q1);
                    out[l + 32] = d * f32::from(sc[is + 2] as i8) * f32::from(q2);
                    out[l + 64] = d * f32::from(sc[is + 4] as i8) * f32::from(q3);
                    out[l + 96] = d * f32::from(sc[is + 6] as i8) * f32::from(q4);
                }
            }
        }
    }
}

/// Dequantizes whole blocks of `dtype` from `bytes` (whose length must be a
/// multiple of the block size) and appends the values to `out`.
pub fn dequantize_into(dtype: DType, bytes: &[u8], out: &mut Vec<f32>) {
    let bb = dtype.block_bytes() as usize;
    let be = dtype.block_elems() as usize;
    assert_eq!(bytes.len() % bb, 0, "{dtype}: {} bytes is not a whole number of blocks", bytes.len());
    let start = out.len();
    out.resize(start + bytes.len() / bb * be, 0.0);
    for (b, y) in bytes.chunks_exact(bb).zip(out[start..].chunks_exact_mut(be)) {
        block(dtype, b, y);
    }
}

pub fn dequantize(dtype: DType, bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    dequantize_into(dtype, bytes, &mut out);
    out
}
