//! Snapshots: one backup's root tree and what describes it.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::{FormatError, Result};
use crate::id::{BlobId, SnapshotId};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Largest decoded snapshot accepted.
pub const MAX_SNAPSHOT_LEN: usize = 16 * 1024 * 1024;

/// Counts gathered while taking a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Files with no counterpart in the parent.
    pub files_new: u64,
    /// Files whose content was read again and differs or may differ.
    pub files_changed: u64,
    /// Files taken from the parent without reading.
    pub files_unchanged: u64,
    /// Directories recorded.
    pub dirs: u64,
    /// Other entries (symlinks, FIFOs, sockets, devices).
    pub others: u64,
    /// Bytes of file content read from the source.
    pub bytes_read: u64,
    /// Data blobs added to the repository.
    pub data_blobs_added: u64,
    /// Tree blobs added to the repository.
    pub tree_blobs_added: u64,
    /// Plaintext bytes of the blobs added.
    pub bytes_added: u64,
    /// Stored bytes (compressed and sealed) of the blobs added.
    pub bytes_added_stored: u64,
    /// Total size of the files in the snapshot.
    pub total_size: u64,
    /// Wall-clock start.
    pub started: Timestamp,
    /// Wall-clock end.
    pub finished: Timestamp,
}

/// An entry a backup could not read, recorded so the gap is never silent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEntry {
    /// Absolute source path as raw bytes.
    pub path: Vec<u8>,
    /// The error, as text.
    pub reason: String,
}

/// One snapshot file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Structure version, 1.
    pub version: u32,
    /// When the backup started.
    pub time: Timestamp,
    /// Host name recorded.
    pub hostname: String,
    /// User name recorded.
    pub username: String,
    /// Numeric user ID of the process.
    pub uid: u32,
    /// Numeric group ID of the process.
    pub gid: u32,
    /// Absolute paths backed up, as bytes.
    pub paths: Vec<Vec<u8>>,
    /// Tags.
    pub tags: Vec<String>,
    /// Root tree.
    pub tree: BlobId,
    /// Parent snapshot, if any.
    pub parent: Option<SnapshotId>,
    /// Counts.
    pub summary: Summary,
    /// Entries the backup could not read and left out.
    pub skipped: Vec<SkippedEntry>,
    /// Program and version that wrote it.
    pub program: String,
}

impl Versioned for Snapshot {
    const WHAT: &'static str = "snapshot";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        let s = &self.summary;
        if !self.time.is_valid() || !s.started.is_valid() || !s.finished.is_valid() {
            return Err(FormatError::malformed(
                "snapshot",
                "nanoseconds out of range",
            ));
        }
        Ok(())
    }
}

impl Snapshot {
    /// Seals the snapshot file.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        keys.seal(ObjectType::Snapshot, None, &codec::encode(self), Some(3))
    }

    /// Authenticates and decodes a snapshot file.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<Snapshot> {
        codec::decode(&keys.open(ObjectType::Snapshot, None, bytes, MAX_SNAPSHOT_LEN)?)
    }
}
