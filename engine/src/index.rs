//! The in-memory index: where each blob lies.

use cairn_format::index::IndexFile;
use cairn_format::pack::PackEntry;
use cairn_format::{BlobId, BlobKind, PackId};
use std::collections::HashMap;

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Offset of its envelope in the pack.
    pub offset: u64,
    /// Length of its envelope.
    pub length: u32,
    /// Length of its plaintext.
    pub raw_length: u32,
}

/// Maps (kind, blob ID) to a location.
#[derive(Default, Debug)]
pub struct Index {
    blobs: HashMap<(BlobKind, BlobId), BlobLocation>,
}

impl Index {
    /// Adds every blob of one pack.
    pub fn add_pack(&mut self, pack: PackId, entries: &[PackEntry]) {
        for e in entries {
            self.blobs.entry((e.kind, e.id)).or_insert(BlobLocation {
                pack,
                offset: e.offset,
                length: e.length,
                raw_length: e.raw_length,
            });
        }
    }

    /// Adds everything an index file describes.
    pub fn add_file(&mut self, file: &IndexFile) {
        for p in &file.packs {
            self.add_pack(p.id, &p.blobs);
        }
    }

    /// The location of a blob.
    pub fn get(&self, kind: BlobKind, id: &BlobId) -> Option<&BlobLocation> {
        self.blobs.get(&(kind, *id))
    }

    /// True when the blob is stored.
    pub fn contains(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.blobs.contains_key(&(kind, *id))
    }

    /// Number of blobs indexed.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}
