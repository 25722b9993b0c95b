//! Index files of a bounded size written for packs given one at a time:
//! how prune and repair rewrite the index.

use crate::error::Result;
use crate::repository::Repository;
use cairn_format::index::{IndexFile, IndexPack};

/// Blobs per index file that [`IndexWriter`] writes, at most (plus one pack's).
const INDEX_FILE_BLOBS: usize = 1 << 20;

/// Writes index files of a bounded size for packs given one at a time
/// (prune and repair rewrite the index this way).
pub(crate) struct IndexWriter<'r> {
    repo: &'r Repository,
    batch: Vec<IndexPack>,
    blobs: usize,
    /// Index files written.
    pub written: u64,
}

impl<'r> IndexWriter<'r> {
    pub(crate) fn new(repo: &'r Repository) -> Self {
        IndexWriter {
            repo,
            batch: Vec::new(),
            blobs: 0,
            written: 0,
        }
    }

    /// Adds a pack; writes a file once the batch is large.
    pub(crate) fn push(&mut self, pack: IndexPack) -> Result<()> {
        self.blobs += pack.blobs.len();
        self.batch.push(pack);
        match self.blobs >= INDEX_FILE_BLOBS {
            true => self.flush(),
            false => Ok(()),
        }
    }

    /// Writes what is left; returns the number of files written.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.written)
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.repo.write_index_file(&IndexFile {
            version: 1,
            packs: std::mem::take(&mut self.batch),
        })?;
        self.blobs = 0;
        self.written += 1;
        Ok(())
    }
}
