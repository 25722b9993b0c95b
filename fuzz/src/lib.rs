//! Constants and helpers shared by the fuzz targets and the seed generator,
//! so that seeds written by `make_seeds` are accepted by the targets.

use cairn_format::crypto::MasterKeys;
use cairn_format::id::{BlobId, RepoId, ID_LEN};

/// Output limit passed to `frame::decode` by the `frame` target (1 MiB).
pub const FRAME_LIMIT: usize = 1 << 20;

/// Output limit passed to `MasterKeys::open` by the `sealed` target (1 MiB).
pub const OPEN_LIMIT: usize = 1 << 20;

/// Password the `key_file` target tries on key files with tiny KDF costs.
pub const KEY_PASSWORD: &[u8] = b"cairn-fuzz-password";

/// Largest Argon2 memory cost (KiB) for which `key_file` runs the KDF.
pub const KEY_MAX_MEMORY_KIB: u32 = 64;

/// Largest Argon2 pass count for which `key_file` runs the KDF.
pub const KEY_MAX_ITERATIONS: u32 = 1;

/// The fixed master keys of the `sealed` target, built from constant bytes.
pub fn fixed_keys() -> MasterKeys {
    MasterKeys {
        repo_id: RepoId([0x11; ID_LEN]),
        data_key: [0x22; 32],
        id_key: [0x33; 32],
        chunker_key: [0x44; 32],
    }
}

/// Length of the parameter prefix of a `sealed` input.
pub const SEALED_PREFIX_LEN: usize = 8 + ID_LEN;

/// A `sealed` input split into its parts.
///
/// Layout: `n u64 LE (8) || blob id (32) || envelope`. `n` is the pack
/// header's start for `PackHeader::open` and (truncated to u32) the raw length
/// for `open_blob`; the blob ID binds `DataBlob`/`TreeBlob` envelopes. Inputs
/// shorter than the prefix are used whole as the envelope, with `n = 0` and a
/// zero blob ID.
pub struct SealedInput<'a> {
    /// Header start / raw length.
    pub n: u64,
    /// Blob ID for blob envelopes.
    pub blob_id: BlobId,
    /// The bytes handed to every `open`.
    pub envelope: &'a [u8],
}

impl<'a> SealedInput<'a> {
    /// Splits `data` as described on [`SealedInput`].
    pub fn parse(data: &'a [u8]) -> Self {
        if data.len() < SEALED_PREFIX_LEN {
            return SealedInput {
                n: 0,
                blob_id: BlobId([0; ID_LEN]),
                envelope: data,
            };
        }
        let (prefix, envelope) = data.split_at(SEALED_PREFIX_LEN);
        let n = u64::from_le_bytes(prefix[..8].try_into().expect("8 bytes"));
        let blob_id = BlobId(prefix[8..].try_into().expect("32 bytes"));
        SealedInput {
            n,
            blob_id,
            envelope,
        }
    }

    /// The inverse of [`SealedInput::parse`], for the seed generator.
    pub fn build(n: u64, blob_id: &BlobId, envelope: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEALED_PREFIX_LEN + envelope.len());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&blob_id.0);
        out.extend_from_slice(envelope);
        out
    }
}
