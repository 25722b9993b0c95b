//! Errors raised while encoding or decoding repository bytes.

/// Why a piece of repository bytes could not be decoded or trusted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The AEAD tag did not verify: the bytes were altered, belong to another
    /// object or repository, or were sealed under another key.
    #[error("authentication failed for {0}: the data is damaged or was not written by this repository's key")]
    Authentication(&'static str),
    /// A content-addressed object does not hash to its name.
    #[error("{what} {expected} is damaged: its bytes hash to {actual}")]
    HashMismatch {
        /// The kind of object.
        what: &'static str,
        /// The ID it was stored under.
        expected: String,
        /// The hash of the bytes actually read.
        actual: String,
    },
    /// Structurally invalid bytes (only reachable after authentication for
    /// sealed objects, so in practice a bug or a hostile key holder).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The kind of object.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A structure or algorithm version this implementation does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// The kind of object.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// A size limit that protects against hostile input was exceeded.
    #[error("{what} is too large ({size} bytes, limit {limit})")]
    TooLarge {
        /// The kind of object.
        what: &'static str,
        /// The size found or announced.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Content sealed to the repository's public key, asked of a put-only
    /// key, which holds no secret key to open it.
    #[error("a put-only key cannot read {0}: it can back up, and only a full key reads back")]
    NotReadable(&'static str),
    /// The repository's keys were rotated (SPEC §3.7) after this key file
    /// was made: it holds no secrets of the epoch the config names.
    #[error("the repository's keys were rotated to epoch {found} after this key was made (it holds epochs up to {held}): ask the holder of a current key for a new key (`cairn key add`)")]
    Rotated {
        /// The newest epoch the key holds.
        held: u32,
        /// The epoch the config names.
        found: u32,
    },
    /// Key derivation failed (invalid parameters).
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

impl FormatError {
    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        FormatError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    /// True when the bytes failed an integrity check (AEAD tag or content hash).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            FormatError::Authentication(_) | FormatError::HashMismatch { .. }
        )
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, FormatError>;
