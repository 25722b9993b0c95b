//! The compression frame inside every envelope: `codec (1) || payload`.
//!
//! Codec 0 stores the payload raw; codec 1 is a single zstd frame that records
//! its decompressed size. The decoder refuses frames larger than the caller's limit.
//! A codec byte with [`PADDED`] set is followed by the inner frame's payload
//! length and, after the payload, zero bytes that round the envelope's length
//! up (SPEC §5.1): what a storage observer sees of the object's size then
//! says less about its content.

use crate::error::{FormatError, Result};

/// Payload stored as is.
pub const CODEC_NONE: u8 = 0;
/// Payload is one zstd frame with the content size field set.
pub const CODEC_ZSTD: u8 = 1;

/// Flag on the codec byte of a padded frame: `(codec | PADDED) || payload
/// length u32 LE || payload || zero bytes`.
pub const PADDED: u8 = 0x80;
/// Bytes a padded frame adds before the fill: the payload length.
pub const PADDED_OVERHEAD: usize = 4;

/// Padmé (Nikitin et al., PETS 2019): `len` rounded up so that only its
/// top `floor(log2(floor(log2 len))) + 1` bits may be set. The result is at
/// most about 12% larger, and a length reveals `O(log log len)` bits.
pub const fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - len.leading_zeros() as u64;
    let s = 64 - e.leading_zeros() as u64;
    let mask = (1u64 << (e - s)) - 1;
    match len.checked_add(mask) {
        Some(up) => up & !mask,
        // Within 2^58 of 2^64: no object comes near.
        None => len,
    }
}

/// `framed` (from [`encode`]) made a padded frame, in place, whose
/// envelope, `overhead` bytes longer than the frame, has a length [`padme`]
/// leaves as it is.
pub fn pad(mut framed: Vec<u8>, overhead: usize) -> Vec<u8> {
    pad_from(&mut framed, 0, overhead);
    framed
}

/// [`pad`] for the frame that begins at `buf[start]`, reserving room for
/// the whole envelope (`overhead` bytes more than the frame, of which
/// `start` come before it).
pub fn pad_from(buf: &mut Vec<u8>, start: usize, overhead: usize) {
    let frame = buf.len() - start;
    let payload = frame
        .checked_sub(1)
        .expect("encode never returns an empty frame");
    let len = u32::try_from(payload).expect("no frame holds 4 GiB");
    let target = padme((frame + PADDED_OVERHEAD + overhead) as u64) as usize - overhead;
    buf.reserve_exact(start + target + (overhead - start) - buf.len());
    buf[start] |= PADDED;
    buf.splice(start + 1..start + 1, len.to_le_bytes());
    buf.resize(start + target, 0);
}

/// Frames `data`, compressing with zstd at `level` when that makes it smaller.
///
/// Data of [`SAMPLE_FROM`] bytes or more is first judged by a sample: when
/// [`SAMPLE_PIECES`] pieces of 4 KiB spread over it do not shrink by 3% at
/// level 1, it is stored raw without trying (already compressed or encrypted
/// data costs a sample, not a full compression).
pub fn encode(data: &[u8], level: Option<i32>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, data, level);
    out
}

/// [`encode`] appending the frame to `out`: a caller that has reserved
/// room for the envelope around it copies the data once.
pub fn encode_into(out: &mut Vec<u8>, data: &[u8], level: Option<i32>) {
    if let Some(level) = level {
        if !looks_incompressible(data) {
            if let Some(compressed) = compress(data, level) {
                if compressed.len() < data.len() {
                    out.reserve(1 + compressed.len());
                    out.push(CODEC_ZSTD);
                    out.extend_from_slice(&compressed);
                    return;
                }
            }
        }
    }
    out.reserve(1 + data.len());
    out.push(CODEC_NONE);
    out.extend_from_slice(data);
}

/// Smallest input judged by a sample before compressing.
pub const SAMPLE_FROM: usize = 128 * 1024;
/// Number of 4 KiB pieces in a sample.
pub const SAMPLE_PIECES: usize = 8;
const PIECE: usize = 4096;

fn looks_incompressible(data: &[u8]) -> bool {
    if data.len() < SAMPLE_FROM {
        return false;
    }
    let step = (data.len() - PIECE) / (SAMPLE_PIECES - 1);
    let mut sample = Vec::with_capacity(SAMPLE_PIECES * PIECE);
    for i in 0..SAMPLE_PIECES {
        sample.extend_from_slice(&data[i * step..i * step + PIECE]);
    }
    compress(&sample, 1).is_some_and(|c| c.len() * 100 >= sample.len() * 97)
}

/// Compresses with a zstd context kept per thread (creating one per blob
/// would cost more than compressing a small blob).
fn compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    use std::cell::RefCell;
    thread_local! {
        static CONTEXT: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { RefCell::new(None) };
    }
    CONTEXT.with(|cell| {
        let mut cell = cell.borrow_mut();
        match &mut *cell {
            Some((current, c)) if *current != level => {
                c.set_compression_level(level).ok()?;
                *current = level;
            }
            Some(_) => {}
            None => *cell = Some((level, zstd::bulk::Compressor::new(level).ok()?)),
        }
        cell.as_mut()?.1.compress(data).ok()
    })
}

/// Undoes [`encode`], refusing to produce more than `limit` bytes.
pub fn decode(framed: &[u8], limit: usize, what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decode_into(framed, limit, what, &mut out)?;
    Ok(out)
}

/// [`decode`] into `out`, replacing what it held: a buffer used again costs
/// no new memory. zstd decompresses with a context kept per thread.
pub fn decode_into(
    framed: &[u8],
    limit: usize,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    let (&codec, mut payload) = framed
        .split_first()
        .ok_or_else(|| FormatError::malformed(what, "empty compression frame"))?;
    let mut codec = codec;
    if codec & PADDED != 0 {
        codec &= !PADDED;
        payload = unpad(payload, what)?;
    }
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
            out.extend_from_slice(payload);
            Ok(())
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
            out.reserve_exact(size as usize);
            let written = decompress(payload, out);
            // The buffer may have room for more than the frame announced:
            // what was written must be exactly that.
            let fault = match written {
                Err(e) => format!("zstd: {e}"),
                Ok(n) if n as u64 != size => {
                    "zstd content differs in length from what its frame announces".into()
                }
                Ok(_) => return Ok(()),
            };
            out.clear();
            Err(FormatError::malformed(what, fault))
        }
        other => Err(FormatError::malformed(
            what,
            format!("unknown compression codec {other}"),
        )),
    }
}

/// The payload of a padded frame, given what follows its codec byte: the
/// fill after it must be zero bytes.
fn unpad<'a>(rest: &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    let bad = |why: &str| FormatError::malformed(what, format!("padded frame: {why}"));
    let (len, rest) = rest
        .split_first_chunk::<PADDED_OVERHEAD>()
        .ok_or_else(|| bad("no payload length"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(bad("payload length beyond the frame"));
    }
    let (payload, fill) = rest.split_at(len);
    if fill.iter().any(|&b| b != 0) {
        return Err(bad("fill is not zero"));
    }
    Ok(payload)
}

/// Decompresses `payload` into the room of `out` with a zstd context kept
/// per thread (making one per blob costs as much as a small blob's bytes).
fn decompress(payload: &[u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::cell::RefCell;
    thread_local! {
        static CONTEXT: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { RefCell::new(None) };
    }
    CONTEXT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let context = match &mut *cell {
            Some(c) => c,
            None => cell.insert(zstd::bulk::Decompressor::new()?),
        };
        context.decompress_to_buffer(payload, out)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frames_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), level in proptest::option::of(1i32..6)) {
            let framed = encode(&data, level);
            prop_assert_eq!(&decode(&framed, 1 << 20, "test").unwrap(), &data);
            let padded = pad(framed.clone(), 41);
            prop_assert_eq!(padme(padded.len() as u64 + 41), padded.len() as u64 + 41);
            prop_assert!(padded.len() >= framed.len() + PADDED_OVERHEAD);
            prop_assert_eq!(decode(&padded, 1 << 20, "test").unwrap(), data);
        }

        #[test]
        fn padme_rounds_up_by_at_most_an_eighth_and_is_idempotent(len in 0u64..1 << 40) {
            let p = padme(len);
            prop_assert!(p >= len && p - len <= len / 8 + 1, "{} -> {}", len, p);
            prop_assert_eq!(padme(p), p);
        }
    }

    #[test]
    fn padme_keeps_the_top_bits_only() {
        assert_eq!(padme(1_000_000), 1_015_808);
        assert_eq!(padme(1 << 20), 1 << 20);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
    }

    #[test]
    fn a_padded_frame_with_a_bad_length_or_fill_is_refused() {
        let mut padded = pad(encode(b"content", None), 41);
        assert!(padded.len() > 1 + 4 + 7, "some fill");
        *padded.last_mut().unwrap() = 1;
        assert!(decode(&padded, 100, "t").is_err());
        let mut padded = pad(encode(b"content", None), 41);
        let too_long = (padded.len() as u32).to_le_bytes();
        padded[1..5].copy_from_slice(&too_long);
        assert!(decode(&padded, 100, "t").is_err());
        assert!(decode(&[PADDED, 1, 0], 100, "t").is_err());
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

    /// `len` bytes that do not compress, the same for the same `seed`.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn incompressible_data_is_stored_raw_and_text_with_noise_is_compressed() {
        let noise = noise(1 << 20, 0x2545_f491_4f6c_dd1d);
        assert!(looks_incompressible(&noise));
        assert_eq!(encode(&noise, Some(3))[0], CODEC_NONE);
        let text = "the quick brown fox jumps over the lazy dog\n".repeat(30_000);
        assert!(!looks_incompressible(text.as_bytes()));
        let framed = encode(text.as_bytes(), Some(3));
        assert_eq!(framed[0], CODEC_ZSTD);
        assert!(framed.len() < text.len() / 10);
        // Switching levels on the same thread keeps both working.
        assert_eq!(
            decode(&encode(text.as_bytes(), Some(19)), 1 << 21, "t").unwrap(),
            text.as_bytes()
        );
    }

    #[test]
    fn a_reused_buffer_holds_exactly_the_new_content_and_two_frames_are_refused() {
        let text = "a line of text that compresses well\n".repeat(1000);
        let mut out = vec![7u8; 1 << 16];
        decode_into(&encode(b"short", Some(3)), 1 << 16, "t", &mut out).unwrap();
        assert_eq!(out, b"short");
        decode_into(&encode(text.as_bytes(), Some(3)), 1 << 16, "t", &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        // A second zstd frame after the announced one would fit in the
        // buffer's room, but it is not what the frame announced.
        let mut framed = encode(text.as_bytes(), Some(3));
        framed.extend_from_slice(&encode(text.as_bytes(), Some(3))[1..]);
        out.reserve(4 * text.len());
        let refused = decode_into(&framed, 1 << 20, "t", &mut out);
        assert!(matches!(refused, Err(FormatError::Malformed { .. })));
        assert!(out.is_empty());
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
