//! Sizes of snapshots: what they restore to, and what they occupy once
//! deduplicated and compressed.

use crate::error::{Error, Result};
use crate::nesting::{self, Memo, Walked};
use crate::repository::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, BlobKind, SnapshotId};
use std::collections::HashSet;

/// Totals over a set of snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Snapshots counted.
    pub snapshots: u64,
    /// Regular files, counted once in every snapshot that has them.
    pub files: u64,
    /// Bytes of those files as restored, counted once per snapshot.
    pub restore_size: u64,
    /// Distinct data blobs referenced.
    pub data_blobs: u64,
    /// Distinct tree blobs referenced.
    pub tree_blobs: u64,
    /// Plaintext bytes of the distinct data blobs.
    pub raw_size: u64,
    /// Stored (compressed and sealed) bytes of the distinct data blobs.
    pub data_stored_size: u64,
    /// Stored bytes of the distinct data and tree blobs.
    pub stored_size: u64,
    /// `restore_size / raw_size`: how many times deduplication shrinks the
    /// data; 1 when there is no data.
    pub dedup_ratio: f64,
    /// `raw_size / data_stored_size`: how many times compression shrinks the
    /// data blobs (below 1 when sealing costs more than compression saves);
    /// 1 when there is no data.
    pub compression_ratio: f64,
}

/// Totals for `snapshots`. Every tree is read once, however many snapshots
/// share it.
pub fn stats(repo: &Repository, snapshots: &[(SnapshotId, Snapshot)]) -> Result<Stats> {
    let mut walk = Walk {
        repo,
        trees: Memo::new(),
        data: HashSet::new(),
    };
    let mut s = Stats {
        snapshots: snapshots.len() as u64,
        ..Stats::default()
    };
    for (_, snapshot) in snapshots {
        let ((files, bytes), _) = walk.tree(&snapshot.tree, 0)?;
        s.files = s.files.saturating_add(files);
        s.restore_size = s.restore_size.saturating_add(bytes);
    }
    let trees = walk.trees.ids();
    s.tree_blobs = trees.len() as u64;
    for id in trees {
        s.stored_size += u64::from(location(repo, BlobKind::Tree, id)?.length);
    }
    s.data_blobs = walk.data.len() as u64;
    for id in &walk.data {
        let loc = location(repo, BlobKind::Data, id)?;
        s.raw_size += u64::from(loc.raw_length);
        s.data_stored_size += u64::from(loc.length);
    }
    s.stored_size += s.data_stored_size;
    s.dedup_ratio = ratio(s.restore_size, s.raw_size);
    s.compression_ratio = ratio(s.raw_size, s.data_stored_size);
    Ok(s)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn location(repo: &Repository, kind: BlobKind, id: &BlobId) -> Result<crate::index::BlobLocation> {
    repo.locate(kind, id)
        .ok_or_else(|| Error::Missing(format!("{} {id}", kind.object_type().name())))
}

struct Walk<'r> {
    repo: &'r Repository,
    /// File count and bytes below each tree already read.
    trees: Memo<(u64, u64)>,
    /// Data blobs referenced.
    data: HashSet<BlobId>,
}

impl Walk<'_> {
    /// Number and total size of the files below `id`, a tree at `level`.
    /// Both saturate: a hostile tree shared at many paths can claim more.
    fn tree(&mut self, id: &BlobId, level: usize) -> Result<Walked<(u64, u64)>> {
        if let Some(known) = self.trees.get(id, level) {
            return Ok(known);
        }
        let (mut files, mut bytes, mut height) = (0u64, 0u64, Some(0));
        for node in self.repo.load_tree(id)?.nodes {
            if let Some(data) = node.kind.file_data() {
                files = files.saturating_add(1);
                bytes = bytes.saturating_add(node.size);
                self.data.extend(data.blobs);
            }
            if let NodeKind::Dir { subtree } = node.kind {
                let name = || String::from_utf8_lossy(&node.name).into_owned();
                let ((f, b), h) = nesting::descend(level, name, |at| self.tree(&subtree, at))?;
                height = nesting::taller(height, h);
                files = files.saturating_add(f);
                bytes = bytes.saturating_add(b);
            }
        }
        self.trees.put(*id, level, ((files, bytes), height));
        Ok(((files, bytes), height))
    }
}
