//! What the snapshots use: one bit per indexed blob, set by walking
//! their trees.

use super::{refuse, PruneReport};
use crate::error::{Error, Result};
use crate::index::Numbering;
use crate::repository::Repository;
use cairn_format::pack::PackEntry;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, BlobKind, PackId, SnapshotId};

/// One bit per blob of an index.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    /// Sets bit `i`; true if it was clear.
    fn set(&mut self, i: usize) -> bool {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let was_clear = self.0[word] & bit == 0;
        self.0[word] |= bit;
        was_clear
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1u64 << (i % 64)) != 0
    }
}

/// The blobs the snapshots use, as bits over the index and the index of
/// condemned packs (for blobs found only there).
pub(super) struct Used<'r> {
    repo: &'r Repository,
    main: Numbering<'r>,
    main_bits: Bits,
    condemned: Numbering<'r>,
    condemned_bits: Bits,
}

impl<'r> Used<'r> {
    /// Walks the trees of `snapshots`. A tree that cannot be read, or a blob
    /// that is not stored, stops the prune: what it would delete might be
    /// the only copy of something a damaged snapshot needs.
    pub(super) fn walk(
        repo: &'r Repository,
        snapshots: &[(SnapshotId, Snapshot)],
        report: &mut PruneReport,
    ) -> Result<Used<'r>> {
        let (main, condemned) = (repo.index().numbering(), repo.condemned_index().numbering());
        let mut used = Used {
            repo,
            main_bits: Bits::new(main.len()),
            condemned_bits: Bits::new(condemned.len()),
            main,
            condemned,
        };
        for (_, snapshot) in snapshots {
            report.snapshots += 1;
            let mut todo = vec![snapshot.tree];
            while let Some(tree_id) = todo.pop() {
                if !used.mark(BlobKind::Tree, &tree_id)? {
                    continue;
                }
                let tree = repo.load_tree(&tree_id).map_err(refuse)?;
                for node in &tree.nodes {
                    if let NodeKind::Dir { subtree } = &node.kind {
                        todo.push(*subtree);
                    }
                    if let Some(data) = node.kind.file_data() {
                        for id in data.blobs {
                            used.mark(BlobKind::Data, id)?;
                        }
                    }
                }
            }
        }
        Ok(used)
    }

    /// Marks a blob used; true the first time.
    fn mark(&mut self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        if let Some(i) = self.main.number(kind, id) {
            return Ok(self.main_bits.set(i));
        }
        match self.condemned.number(kind, id) {
            Some(i) => Ok(self.condemned_bits.set(i)),
            None => Err(refuse(Error::Missing(format!(
                "{} {id}",
                kind.object_type().name()
            )))),
        }
    }

    /// True when this listing is the copy of a used blob that the index uses.
    pub(super) fn is_used_here(&self, pack: &PackId, e: &PackEntry) -> bool {
        let at_this_copy = self
            .repo
            .index()
            .get(e.kind, &e.id)
            .is_some_and(|l| l.pack == *pack && l.offset == e.offset);
        at_this_copy
            && self
                .main
                .number(e.kind, &e.id)
                .is_some_and(|i| self.main_bits.get(i))
    }

    /// True when a snapshot uses this blob and only a condemned pack holds it.
    pub(super) fn needs_condemned(&self, e: &PackEntry) -> bool {
        self.repo.index().get(e.kind, &e.id).is_none()
            && self
                .condemned
                .number(e.kind, &e.id)
                .is_some_and(|i| self.condemned_bits.get(i))
    }
}
