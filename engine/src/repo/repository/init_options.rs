//! The choices made when a repository is created, and the limits they are
//! checked against.

use super::Repository;
use crate::error::{Error, Result};
use cairn_format::config::ChunkerParams;
use cairn_format::crypto::Padding;
use cairn_format::key::KdfParams;

/// Choices made once, when a repository is created.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Password hashing costs for the first key file.
    pub kdf: KdfParams,
    /// Chunking parameters; `None` for the defaults.
    pub chunker: Option<ChunkerParams>,
    /// zstd level, or `None` to store blobs uncompressed.
    pub compression_level: Option<i32>,
    /// Target pack size in bytes; `None` for the default.
    pub pack_size: Option<u64>,
    /// The secret of the chunk boundaries; a fresh one when `None`. With
    /// `chunker`, another repository's (see [`InitOptions::chunking_like`]).
    pub chunker_secret: Option<ChunkerSecret>,
    /// Which objects writers pad; `None` for the default, everything but
    /// blobs (SPEC §5.1).
    pub padding: Option<Padding>,
    /// Keep each backup's files from deletion for this many days, by
    /// storage that enforces it (S3 Object Lock; a bucket that does not
    /// exist yet is made with it), and hold its snapshot as long (SPEC §2.6).
    /// Storage that cannot is refused before anything is written.
    pub retain_days: Option<u32>,
}

impl InitOptions {
    /// These options, with the chunking of `other`: its parameters and
    /// secret. Files backed up into both repositories are then cut at the
    /// same places, so snapshots copied between them deduplicate against
    /// backups made into either (SPEC.md §7, §13 say what this shares).
    pub fn chunking_like(self, other: &Repository) -> Self {
        InitOptions {
            chunker: Some(other.config.chunker.clone()),
            chunker_secret: Some(ChunkerSecret(other.keys.chunker_key)),
            ..self
        }
    }
}

/// The secret from which a repository's chunk boundaries are derived.
#[derive(Clone)]
pub struct ChunkerSecret(pub(super) [u8; 32]);

impl std::fmt::Debug for ChunkerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkerSecret(..)")
    }
}

impl Drop for ChunkerSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.0.zeroize();
    }
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::default_costs(),
            chunker: None,
            compression_level: Some(3),
            pack_size: None,
            chunker_secret: None,
            padding: None,
            retain_days: None,
        }
    }
}

/// The most days a retention may last: about 100 years.
pub const MAX_RETAIN_DAYS: u32 = 36_500;

/// Refuses a retention of no days or of more than [`MAX_RETAIN_DAYS`].
pub fn check_retain_days(days: u32) -> Result<()> {
    match days {
        1..=MAX_RETAIN_DAYS => Ok(()),
        _ => Err(Error::Invalid(format!(
            "a retention of {days} days: give 1 to {MAX_RETAIN_DAYS} days"
        ))),
    }
}
