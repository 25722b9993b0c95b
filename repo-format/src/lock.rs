//! Coordination records: lock records of running operations, and prune marks.
//!
//! Both are sealed files named by the hash of their bytes, created once and
//! never changed (SPEC.md §15). A running operation proves it is alive by
//! creating fresh lock records; a prune announces what it will delete with a
//! mark, and deletes it only once no operation that could still use it runs.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::{FormatError, Result};
use crate::id::{IndexId, MarkId, PackId};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Largest decoded lock record accepted.
pub const MAX_LOCK_LEN: usize = 1024 * 1024;
/// Largest decoded prune mark accepted.
pub const MAX_MARK_LEN: usize = 512 * 1024 * 1024;

/// What a session does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Adds packs, index files and a snapshot (postcard variant 0).
    Backup,
    /// Deletes and repacks (postcard variant 1); only one runs at a time.
    Prune,
    /// Writes changed copies of snapshots, such as new tags (postcard variant 2).
    Rewrite,
    /// Rebuilds the index; only one prune or repair runs at a time (postcard variant 3).
    Repair,
}

/// A session's state when a record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// Still working (postcard variant 0).
    Running,
    /// Finished, successfully or not (postcard variant 1).
    Ended,
}

/// One lock record. A session writes several over its life: one when it
/// starts, one after it has read the marks, one every refresh, one at its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Structure version, 1.
    pub version: u32,
    /// Random identifier shared by all records of one session.
    pub session: [u8; 16],
    /// What the session does.
    pub operation: Operation,
    /// Host the session runs on.
    pub hostname: String,
    /// Process ID on that host.
    pub pid: u32,
    /// User running it.
    pub username: String,
    /// When the session started.
    pub started: Timestamp,
    /// When this record was written.
    pub written: Timestamp,
    /// State at that time.
    pub state: SessionState,
    /// Prune marks the session had read before it read the index: it uses
    /// nothing those marks condemn.
    pub seen_marks: Vec<MarkId>,
}

impl Versioned for LockRecord {
    const WHAT: &'static str = "lock record";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if !self.started.is_valid() || !self.written.is_valid() {
            return Err(FormatError::malformed(
                Self::WHAT,
                "nanoseconds out of range",
            ));
        }
        Ok(())
    }
}

impl LockRecord {
    /// Seals the record.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        keys.seal(ObjectType::Lock, None, &codec::encode(self), Some(3))
    }

    /// Authenticates and decodes a sealed record.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<LockRecord> {
        codec::decode(&keys.open(ObjectType::Lock, None, bytes, MAX_LOCK_LEN)?)
    }
}

/// A prune mark: what one prune replaced and will delete once it is safe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneMark {
    /// Structure version, 1.
    pub version: u32,
    /// Session of the prune that wrote it.
    pub session: [u8; 16],
    /// When it was written.
    pub created: Timestamp,
    /// Index files that the prune's new index files replace. Readers do not
    /// deduplicate against blobs found only through them.
    pub superseded: Vec<IndexId>,
    /// Packs to delete: nothing referenced them when the mark was written,
    /// their used blobs were copied elsewhere, or no index file listed them.
    pub condemned: Vec<PackId>,
}

impl Versioned for PruneMark {
    const WHAT: &'static str = "prune mark";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if !self.created.is_valid() {
            return Err(FormatError::malformed(
                Self::WHAT,
                "nanoseconds out of range",
            ));
        }
        Ok(())
    }
}

impl PruneMark {
    /// Seals the mark; in a repository with key epochs a full key vouches
    /// for it (SPEC §3.6), since prune deletes what a mark names.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        let mut out = keys.seal(ObjectType::PruneMark, None, &codec::encode(self), Some(3));
        if let Some(keyring) = &keys.keyring {
            let tag = keyring
                .full_tag(b"prune mark", &out)
                .expect("only a full key prunes");
            out.extend_from_slice(&tag);
        }
        out
    }

    /// Authenticates and decodes a sealed mark. A full key refuses one that
    /// no full key vouched for.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<PruneMark> {
        let bytes = match &keys.keyring {
            Some(keyring) => keyring.check_full_tag("prune mark", b"prune mark", bytes, None)?,
            None => bytes,
        };
        codec::decode(&keys.open(ObjectType::PruneMark, None, bytes, MAX_MARK_LEN)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LockRecord {
        LockRecord {
            version: 1,
            session: [7; 16],
            operation: Operation::Backup,
            hostname: "h".into(),
            pid: 42,
            username: "u".into(),
            started: Timestamp { secs: 1, nanos: 0 },
            written: Timestamp { secs: 2, nanos: 0 },
            state: SessionState::Running,
            seen_marks: vec![MarkId([1; 32])],
        }
    }

    #[test]
    fn records_and_marks_round_trip_and_are_bound_to_their_role() {
        let keys = MasterKeys::generate();
        let sealed = record().seal(&keys);
        assert_eq!(LockRecord::open(&sealed, &keys).unwrap(), record());
        assert!(PruneMark::open(&sealed, &keys).is_err());
        let mark = PruneMark {
            version: 1,
            session: [3; 16],
            created: Timestamp { secs: 5, nanos: 6 },
            superseded: vec![IndexId([2; 32])],
            condemned: vec![PackId([4; 32])],
        };
        let sealed = mark.seal(&keys);
        assert_eq!(PruneMark::open(&sealed, &keys).unwrap(), mark);
        assert!(LockRecord::open(&sealed, &keys).is_err());
    }

    #[test]
    fn out_of_range_times_are_refused() {
        let keys = MasterKeys::generate();
        let mut bad = record();
        bad.written.nanos = 1_000_000_000;
        assert!(LockRecord::open(&bad.seal(&keys), &keys).is_err());
    }
}
