//! The write end of the backup pipeline: hash, deduplicate, seal, pack, store.
//!
//! Each stage is its own step so that a later pipeline can run them on
//! separate threads; the order of blobs in packs follows the order of `save` calls.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::repository::Repository;
use cairn_format::index::IndexPack;
use cairn_format::pack::{seal_blob, PackEntry, PackHeader};
use cairn_format::{BlobId, BlobKind, PackId};
use std::collections::HashSet;

/// Counts of what a [`PackWriter`] added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Data blobs added.
    pub data_blobs: u64,
    /// Tree blobs added.
    pub tree_blobs: u64,
    /// Plaintext bytes added.
    pub bytes: u64,
    /// Sealed bytes added.
    pub bytes_stored: u64,
    /// Pack files written.
    pub packs: u64,
}

/// Saves blobs into new packs, skipping blobs the repository already has.
pub struct PackWriter<'r> {
    repo: &'r Repository,
    level: Option<i32>,
    pending: HashSet<(BlobKind, BlobId)>,
    pack: Vec<u8>,
    entries: Vec<PackEntry>,
    written: Vec<IndexPack>,
    stats: WriteStats,
}

impl<'r> PackWriter<'r> {
    /// A writer adding to `repo`.
    pub fn new(repo: &'r Repository) -> Self {
        PackWriter {
            repo,
            level: repo.config().compression.zstd_level(),
            pending: HashSet::new(),
            pack: Vec::new(),
            entries: Vec::new(),
            written: Vec::new(),
            stats: WriteStats::default(),
        }
    }

    /// The repository written to.
    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    /// True when the blob is in the repository or was saved by this writer.
    pub fn is_stored(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.repo.index().contains(kind, id) || self.pending.contains(&(kind, *id))
    }

    /// Stores `plaintext` as a blob of `kind` unless it is already stored; returns its ID.
    pub fn save(&mut self, kind: BlobKind, plaintext: &[u8]) -> Result<BlobId> {
        if plaintext.len() > kind.max_len() {
            return Err(Error::Invalid(format!(
                "a {} of {} bytes exceeds the format's limit of {} bytes",
                kind.object_type().name(),
                plaintext.len(),
                kind.max_len()
            )));
        }
        let id = self.repo.keys().blob_id(plaintext);
        if self.repo.index().contains(kind, &id) || !self.pending.insert((kind, id)) {
            return Ok(id);
        }
        let sealed = seal_blob(self.repo.keys(), kind, &id, plaintext, self.level);
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.pack.len() as u64,
            length: sealed.len() as u32,
            raw_length: plaintext.len() as u32,
        });
        self.pack.extend_from_slice(&sealed);
        match kind {
            BlobKind::Data => self.stats.data_blobs += 1,
            BlobKind::Tree => self.stats.tree_blobs += 1,
        }
        self.stats.bytes += plaintext.len() as u64;
        self.stats.bytes_stored += sealed.len() as u64;
        if self.pack.len() as u64 >= self.repo.config().pack_size {
            self.flush()?;
        }
        Ok(id)
    }

    /// Writes the pack being filled, if any.
    pub fn flush(&mut self) -> Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.entries);
        let mut pack = std::mem::take(&mut self.pack);
        PackHeader {
            version: 1,
            blobs: entries.clone(),
        }
        .append_to(&mut pack, self.repo.keys());
        let id = PackId(self.repo.store_file(FileKind::Pack, &pack)?);
        self.written.push(IndexPack { id, blobs: entries });
        self.stats.packs += 1;
        Ok(())
    }

    /// Flushes and returns the packs written, for the index file, with the counts.
    pub fn finish(mut self) -> Result<(Vec<IndexPack>, WriteStats)> {
        self.flush()?;
        Ok((self.written, self.stats))
    }
}
