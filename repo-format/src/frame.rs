//! The compression frame inside every envelope: `codec (1) || payload`.
//!
//! Codec 0 stores the payload raw; codec 1 is a single zstd frame that records
//! its decompressed size. The decoder refuses frames larger than the caller's limit.

use crate::error::{FormatError, Result};

/// Payload stored as is.
pub const CODEC_NONE: u8 = 0;
/// Payload is one zstd frame with the content size field set.
pub const CODEC_ZSTD: u8 = 1;

/// Frames `data`, compressing with zstd at `level` when that makes it smaller.
pub fn encode(data: &[u8], level: Option<i32>) -> Vec<u8> {
    if let Some(level) = level {
        if let Ok(compressed) = zstd::bulk::compress(data, level) {
            if compressed.len() < data.len() {
                let mut out = Vec::with_capacity(1 + compressed.len());
                out.push(CODEC_ZSTD);
                out.extend_from_slice(&compressed);
                return out;
            }
        }
    }
    let mut out = Vec::with_capacity(1 + data.len());
    out.push(CODEC_NONE);
    out.extend_from_slice(data);
    out
}

/// Undoes [`encode`], refusing to produce more than `limit` bytes.
pub fn decode(framed: &[u8], limit: usize, what: &'static str) -> Result<Vec<u8>> {
    let (&codec, payload) = framed
        .split_first()
        .ok_or_else(|| FormatError::malformed(what, "empty compression frame"))?;
    let too_large = |size: u64| FormatError::TooLarge {
        what,
        size,
        limit: limit as u64,
    };
    match codec {
        CODEC_NONE => {
            if payload.len() > limit {
                return Err(too_large(payload.len() as u64));
            }
            Ok(payload.to_vec())
        }
        CODEC_ZSTD => {
            let size = match zstd::zstd_safe::get_frame_content_size(payload) {
                Ok(Some(size)) => size,
                _ => {
                    return Err(FormatError::malformed(
                        what,
                        "zstd frame without a content size",
                    ))
                }
            };
            if size > limit as u64 {
                return Err(too_large(size));
            }
            let out = zstd::bulk::decompress(payload, size as usize)
                .map_err(|e| FormatError::malformed(what, format!("zstd: {e}")))?;
            if out.len() as u64 != size {
                return Err(FormatError::malformed(
                    what,
                    "zstd frame shorter than announced",
                ));
            }
            Ok(out)
        }
        other => Err(FormatError::malformed(
            what,
            format!("unknown compression codec {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frames_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), level in proptest::option::of(1i32..6)) {
            let framed = encode(&data, level);
            prop_assert_eq!(decode(&framed, 1 << 20, "test").unwrap(), data);
        }
    }

    #[test]
    fn compressible_data_shrinks_and_random_data_is_stored_raw() {
        let zeros = vec![0u8; 10_000];
        assert!(encode(&zeros, Some(3)).len() < 100);
        let noise: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let framed = encode(&noise, Some(3));
        assert!(framed[0] == CODEC_NONE || framed.len() <= noise.len());
    }

    #[test]
    fn decompression_bombs_are_refused() {
        let framed = encode(&vec![0u8; 1 << 20], Some(3));
        assert!(matches!(
            decode(&framed, 1000, "test"),
            Err(FormatError::TooLarge { .. })
        ));
    }
}
