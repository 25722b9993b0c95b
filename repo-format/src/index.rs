//! Index files: which blobs each pack holds, so readers need not open pack headers.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::Result;
use crate::id::PackId;
use crate::pack::PackEntry;
use serde::{Deserialize, Serialize};

/// Largest decoded index file accepted.
pub const MAX_INDEX_LEN: usize = 512 * 1024 * 1024;

/// The blobs of one pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    /// The pack.
    pub id: PackId,
    /// Its blobs, as in its header.
    pub blobs: Vec<PackEntry>,
}

/// One index file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    /// Structure version, 1.
    pub version: u32,
    /// The packs this file describes.
    pub packs: Vec<IndexPack>,
}

impl Versioned for IndexFile {
    const WHAT: &'static str = "index file";
    const VERSION: u32 = 1;
}

impl IndexFile {
    /// Seals the index file.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        keys.seal(ObjectType::Index, None, &codec::encode(self), Some(3))
    }

    /// Authenticates and decodes an index file, checking the bounds of
    /// every entry (SPEC §10).
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<IndexFile> {
        let file: IndexFile =
            codec::decode(&keys.open(ObjectType::Index, None, bytes, MAX_INDEX_LEN)?)?;
        for e in file.packs.iter().flat_map(|p| &p.blobs) {
            e.check_bounds(u64::MAX, "index file")?;
        }
        Ok(file)
    }
}
