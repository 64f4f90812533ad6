//! ggml's block quantization formats, written exactly as ggml's reference quantizers write them.
//!
//! Input: a row of f32 weights whose length is a multiple of [`BLOCK`]. Output: the row's
//! bytes in one of three block formats, appended to a buffer. Each function follows the
//! matching `quantize_row_*_ref` in whisper.cpp v1.8.3's `ggml/src/ggml-quants.c` step by
//! step (the same comparisons, the same reciprocal-then-multiply, the same rounding and
//! truncation, f16 scales rounded to nearest even), because that is what `whisper-quantize`
//! calls for these types and what whisper.cpp's kernels decode. The tests compare against
//! blocks that ggml itself wrote. Pure functions: no I/O.

use half::f16;

/// Weights per block in all three formats (ggml's QK8_0, QK5_1 and QK4_0).
pub const BLOCK: usize = 32;

/// q8_0, 34 bytes a block: f16 scale `d`, then 32 signed bytes; a weight is `d * q`.
pub fn q8_0(row: &[f32], out: &mut Vec<u8>) {
    for block in row.chunks_exact(BLOCK) {
        let amax = block.iter().fold(0.0f32, |amax, v| if v.abs() > amax { v.abs() } else { amax });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // C's roundf rounds halves away from zero, as f32::round does.
        out.extend(block.iter().map(|&v| (v * id).round() as i8 as u8));
    }
}

/// q5_1, 24 bytes a block: f16 scale `d`, f16 minimum `m`, a u32 of fifth bits, then 16
/// bytes of low nibbles (weight j in the low nibble of byte j, weight j + 16 in its high
/// nibble, fifth bits likewise at bit j and j + 16); a weight is `d * q + m`.
pub fn q5_1(row: &[f32], out: &mut Vec<u8>) {
    for block in row.chunks_exact(BLOCK) {
        let (mut min, mut max) = (f32::MAX, -f32::MAX);
        for &v in block {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
        // The C casts a value in [0, 31.5] to uint8_t: truncation, as `as u8` does.
        let quant = |v: f32| ((v - min) * id + 0.5) as u8;
        let mut high_bits = 0u32;
        let mut nibbles = [0u8; BLOCK / 2];
        for (j, nibble) in nibbles.iter_mut().enumerate() {
            let (q0, q1) = (quant(block[j]), quant(block[j + BLOCK / 2]));
            *nibble = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            high_bits |= u32::from((q0 & 0x10) >> 4) << j;
            high_bits |= u32::from((q1 & 0x10) >> 4) << (j + BLOCK / 2);
        }
        out.extend_from_slice(&high_bits.to_le_bytes());
        out.extend_from_slice(&nibbles);
    }
}

/// q4_0, 18 bytes a block: f16 scale `d`, then 16 bytes of nibbles laid out as in q5_1;
/// a weight is `d * (q - 8)`. The scale takes the sign of the largest-magnitude weight
/// (the first such, if two tie), which then maps to -8 exactly.
pub fn q4_0(row: &[f32], out: &mut Vec<u8>) {
    for block in row.chunks_exact(BLOCK) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in block {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // (int8_t)(x + 8.5f) truncates, then MIN(15, ...) clips the one value that reaches 16.
        let quant = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        out.extend((0..BLOCK / 2).map(|j| quant(block[j]) | (quant(block[j + BLOCK / 2]) << 4)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block with a bit of everything: both signs, zero, a tie for the largest magnitude
    /// (+2.0 and -2.0: q4_0 must take the first), values that land on .5 when scaled.
    fn mixed() -> [f32; 32] {
        let mut block = [0.0f32; 32];
        for (i, v) in block.iter_mut().enumerate() {
            *v = (i as f32 - 13.0) * 0.125;
        }
        block[3] = 2.0;
        block[20] = -2.0;
        block[7] = 0.0;
        block[30] = 1.0 / 127.0 * 2.0 * 63.5;
        block
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Expected bytes below were written by ggml itself: whisper.cpp v1.8.3's
    // quantize_row_{q8_0,q5_1,q4_0}_ref, from the libggml-base.a that whisper-rs-sys builds,
    // fed the same blocks (tests/fixtures/quants_reference.c prints them).

    #[test]
    fn q8_0_matches_ggml() {
        let mut out = Vec::new();
        q8_0(&mixed(), &mut out);
        assert_eq!(out.len(), 34);
        assert_eq!(hex(&out), Q8_0_MIXED);
    }

    #[test]
    fn q5_1_matches_ggml() {
        let mut out = Vec::new();
        q5_1(&mixed(), &mut out);
        assert_eq!(out.len(), 24);
        assert_eq!(hex(&out), Q5_1_MIXED);
    }

    #[test]
    fn q4_0_matches_ggml() {
        let mut out = Vec::new();
        q4_0(&mixed(), &mut out);
        assert_eq!(out.len(), 18);
        assert_eq!(hex(&out), Q4_0_MIXED);
    }

    #[test]
    fn an_all_zero_block_has_a_zero_scale() {
        let zeros = [0.0f32; 64];
        let mut out = Vec::new();
        q8_0(&zeros, &mut out);
        assert_eq!(out, vec![0; 68]);
        out.clear();
        q4_0(&zeros, &mut out);
        // d = 0 / -8 = -0 (f16 0x8000, as ggml writes it), every weight at the zero point 8.
        assert_eq!(hex(&out[..18]), format!("0080{}", "88".repeat(16)));
        out.clear();
        q5_1(&zeros, &mut out);
        assert_eq!(out, [vec![0u8; 24], vec![0u8; 24]].concat());
    }

    #[test]
    fn blocks_decode_back_to_the_weights() {
        let block = mixed();
        let scale = |bytes: &[u8]| f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
        let mut out = Vec::new();
        q8_0(&block, &mut out);
        let d = scale(&out);
        for (j, &v) in block.iter().enumerate() {
            assert!((d * f32::from(out[2 + j] as i8) - v).abs() <= d / 2.0 + 1e-3, "q8_0 weight {j}");
        }
        out.clear();
        q4_0(&block, &mut out);
        let d = scale(&out);
        for (j, &v) in block.iter().enumerate() {
            let byte = out[2 + j % 16];
            let q = if j < 16 { byte & 0x0f } else { byte >> 4 };
            assert!((d * (f32::from(q) - 8.0) - v).abs() <= d.abs() / 2.0 + 1e-3, "q4_0 weight {j}");
        }
        out.clear();
        q5_1(&block, &mut out);
        let (d, m) = (scale(&out), scale(&out[2..]));
        let high = u32::from_le_bytes(out[4..8].try_into().unwrap());
        for (j, &v) in block.iter().enumerate() {
            let byte = out[8 + j % 16];
            let low = if j < 16 { byte & 0x0f } else { byte >> 4 };
            let q = low | (((high >> j) & 1) as u8) << 4;
            assert!((d * f32::from(q) + m - v).abs() <= d / 2.0 + 1e-3, "q5_1 weight {j}");
        }
    }

    /// The reference's stream: a 32-bit LCG, 24 high bits to [-0.5, 0.5), times a scale per block.
    fn stream() -> Vec<f32> {
        let scales = [0.02f32, 0.5, 3.0, 0.001];
        let mut state = 12345u32;
        (0..BLOCK * 4096)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((state >> 8) as f32 / 16_777_216.0 - 0.5) * scales[(i / BLOCK) % 4]
            })
            .collect()
    }

    #[test]
    fn four_thousand_blocks_match_ggml_byte_for_byte() {
        use sha2::{Digest, Sha256};
        let values = stream();
        for (name, quantize, expected) in [
            ("q8_0", q8_0 as fn(&[f32], &mut Vec<u8>), Q8_0_STREAM_SHA256),
            ("q5_1", q5_1, Q5_1_STREAM_SHA256),
            ("q4_0", q4_0, Q4_0_STREAM_SHA256),
        ] {
            let mut out = Vec::new();
            quantize(&values, &mut out);
            assert_eq!(hex(&Sha256::digest(&out)), expected, "{name}");
        }
    }

    const Q8_0_MIXED: &str = "8924a4abb271c0c8cf00dde4ebf2f900070e151c232a8f3840474e555c636a71387f";
    const Q5_1_MIXED: &str = "633000c008c0efff1324354d0667788f9aabacbdcedf60f0";
    const Q4_0_MIXED: &str = "80b47e6d6d51fc4c4b483a3a292918184807";
    const Q8_0_STREAM_SHA256: &str = "ba9321ebbe072466babf4e32cdc6153a1a28c7f3e20f9ef5ca2b5117accd7101";
    const Q5_1_STREAM_SHA256: &str = "424eb71197c325a758044fec8b17f084e048106c139d3305a33888cabf838d2e";
    const Q4_0_STREAM_SHA256: &str = "165d973dfea86b44342a3483dae89a9ff9ae155e2ecdac8ee94438e762874ff7";
}
