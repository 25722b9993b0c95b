//! Audit records: who did what to a repository, and when — one sealed file
//! in `audit/` per command that changed the repository (or restored or
//! drilled from it), never rewritten, never removed by prune. Each names
//! the records that were newest when it was written, so the records form
//! a chain in which a deleted or reordered record shows (SPEC.md §18).

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::{FormatError, Result};
use crate::id::{AuditId, SnapshotId};
use crate::journal::{cut, MAX_TEXT_LEN};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Largest decoded audit record accepted.
pub const MAX_AUDIT_LEN: usize = 16 * 1024 * 1024;

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Structure version, 1.
    pub version: u32,
    /// When the command finished.
    pub time: Timestamp,
    /// The host it ran on.
    pub hostname: String,
    /// The user it ran as.
    pub username: String,
    /// The command, as `backup` or `key add`.
    pub command: String,
    /// The snapshots it made, removed, changed or restored.
    pub snapshots: Vec<SnapshotId>,
    /// `ok`, or what went wrong.
    pub outcome: String,
    /// The records that no other record named as previous when this one
    /// was written (normally one; more when commands ran at once; none for
    /// the first record).
    pub previous: Vec<AuditId>,
}

impl Versioned for AuditRecord {
    const WHAT: &'static str = "audit record";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if !self.time.is_valid() {
            return Err(FormatError::malformed(
                Self::WHAT,
                "nanoseconds out of range",
            ));
        }
        let texts = [&self.hostname, &self.username, &self.command, &self.outcome];
        if texts.iter().any(|t| t.len() > MAX_TEXT_LEN) {
            return Err(FormatError::malformed(Self::WHAT, "text too long"));
        }
        Ok(())
    }
}

impl AuditRecord {
    /// Cuts every text to [`MAX_TEXT_LEN`] bytes at a character boundary.
    pub fn fit(&mut self) {
        [
            &mut self.hostname,
            &mut self.username,
            &mut self.command,
            &mut self.outcome,
        ]
        .into_iter()
        .for_each(cut);
    }

    /// Seals the record.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        keys.seal(ObjectType::Audit, None, &codec::encode(self), Some(3))
    }

    /// Authenticates and decodes a sealed record.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<AuditRecord> {
        codec::decode(&keys.open(ObjectType::Audit, None, bytes, MAX_AUDIT_LEN)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            version: 1,
            time: Timestamp {
                secs: 1_800_000_000,
                nanos: 0,
            },
            hostname: "h".into(),
            username: "u".into(),
            command: "forget".into(),
            snapshots: vec![SnapshotId([1; 32])],
            outcome: "ok".into(),
            previous: vec![AuditId([2; 32])],
        }
    }

    #[test]
    fn records_round_trip_and_are_bound_to_their_role() {
        let keys = MasterKeys::generate();
        let sealed = record().seal(&keys);
        assert_eq!(AuditRecord::open(&sealed, &keys).unwrap(), record());
        assert!(crate::journal::JournalEntry::open(&sealed, &keys).is_err());
    }

    #[test]
    fn the_encoding_is_pinned_and_long_texts_are_refused_or_cut() {
        let bytes = codec::encode(&record());
        let mut expected = vec![1, 0x80, 0xc8, 0xce, 0xb4, 0x0d, 0, 1, b'h', 1, b'u', 6];
        expected.extend(b"forget");
        expected.push(1);
        expected.extend([1; 32]);
        expected.extend([2, b'o', b'k', 1]);
        expected.extend([2; 32]);
        assert_eq!(bytes, expected);

        let mut long = record();
        long.outcome = "é".repeat(MAX_TEXT_LEN);
        assert!(codec::decode::<AuditRecord>(&codec::encode(&long)).is_err());
        long.fit();
        assert!(codec::decode::<AuditRecord>(&codec::encode(&long)).is_ok());
    }
}
