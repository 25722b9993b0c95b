//! Copying snapshots into another repository: a second or third copy of the
//! same backups elsewhere (the 3-2-1 rule).
//!
//! Blob IDs are keyed per repository (SPEC.md §6), so a copied blob gets
//! the target's ID for its plaintext, and every tree is written again with
//! the target's IDs in it. Each blob a copied snapshot uses is read from the
//! source and authenticated there; it is stored in the target only when the
//! target lacks it. A snapshot the target already holds a copy of (same
//! time, host name, paths and tags) is passed over, so running the same copy
//! again reads and writes nothing.
//!
//! The target's side runs as a backup does: in a session, packs first, then
//! the index once every pack it uses is confirmed, then each snapshot.

use crate::backup::commit_packs;
use crate::error::{Error, Result};
use crate::nesting;
use crate::packer::PackWriter;
use crate::progress::Progress;
use crate::repository::Repository;
use cairn_format::lock::Operation;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{NodeKind, Tree};
use cairn_format::{BlobId, BlobKind, SnapshotId, Timestamp};
use std::collections::HashMap;

/// What a copy did.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Snapshots copied: the source's ID and the copy's.
    pub copied: Vec<(SnapshotId, SnapshotId)>,
    /// Snapshots of the source the target already had a copy of.
    pub present: Vec<SnapshotId>,
    /// Blobs read from the source.
    pub blobs_read: u64,
    /// Data and tree blobs stored in the target.
    pub blobs_added: u64,
    /// Bytes of plaintext stored in the target.
    pub bytes_added: u64,
    /// Bytes stored in the target after compression and encryption.
    pub bytes_added_stored: u64,
}

/// True when `a` and `b` record the same backup: copies keep the time,
/// host name, paths and tags of what they copy (but for a hold, which a
/// target that keeps its backups for a time adds, SPEC §2.6).
fn same_backup(a: &Snapshot, b: &Snapshot) -> bool {
    use crate::hold::without_holds;
    a.time == b.time
        && a.hostname == b.hostname
        && a.paths == b.paths
        && without_holds(&a.tags) == without_holds(&b.tags)
}

/// Copies `snapshots` of `src` into `dst`, passing over those `dst` already
/// has a copy of. Nothing is committed to `dst` until every blob has been
/// read, authenticated and stored; a source that fails a read fails the copy
/// before any snapshot is written. `progress`, if given, counts the blobs
/// read and the bytes of file data among them (no totals are known
/// beforehand).
pub fn copy(
    src: &Repository,
    dst: &mut Repository,
    snapshots: &[(SnapshotId, Snapshot)],
    progress: Option<&Progress>,
) -> Result<CopyReport> {
    dst.begin_session(Operation::Backup)?;
    let result = copy_in_session(src, dst, snapshots, progress);
    // A final record that cannot be written leaves a session that turns stale.
    let _ = dst.end_session();
    result
}

fn copy_in_session(
    src: &Repository,
    dst: &mut Repository,
    snapshots: &[(SnapshotId, Snapshot)],
    progress: Option<&Progress>,
) -> Result<CopyReport> {
    let existing = dst.snapshots()?;
    let mut report = CopyReport::default();
    let mut todo = Vec::new();
    for (id, snapshot) in snapshots {
        match existing.iter().any(|(_, s)| same_backup(s, snapshot)) {
            true => report.present.push(*id),
            false => todo.push((*id, snapshot)),
        }
    }
    if todo.is_empty() {
        return Ok(report);
    }
    let (copies, read, reused, (packs, stats)) = {
        let mut copier = Copier {
            src,
            writer: PackWriter::new(dst),
            trees: HashMap::new(),
            blobs: HashMap::new(),
            bundle: None,
            read: 0,
            progress,
        };
        let mut copies = Vec::new();
        for (id, snapshot) in todo {
            let tree = copier
                .tree(&snapshot.tree, 0)
                .map_err(|e| in_snapshot(id, e))?;
            let mut copy = Snapshot {
                tree,
                // The parent is a snapshot of the source; the target may not have it.
                parent: None,
                ..snapshot.clone()
            };
            if let Some(days) = dst.config().retain_days {
                crate::hold::hold_for(&mut copy.tags, Timestamp::now(), days);
            }
            copies.push((id, copy));
        }
        let reused = copier.writer.reused_packs();
        (copies, copier.read, reused, copier.writer.finish()?)
    };
    report.blobs_read = read;
    commit_packs(dst, packs, reused, "copy")?;
    report.blobs_added = stats.data_blobs + stats.tree_blobs;
    report.bytes_added = stats.bytes;
    report.bytes_added_stored = stats.bytes_stored;
    for (id, copy) in copies {
        dst.session().map_or(Ok(()), |s| s.check_fresh())?;
        report.copied.push((id, dst.save_snapshot(&copy)?));
    }
    Ok(report)
}

/// `e`, saying which snapshot it stopped the copy of.
fn in_snapshot(id: SnapshotId, e: Error) -> Error {
    match e {
        Error::Missing(what) => Error::Missing(format!("{what} (of snapshot {})", id.short())),
        other => other,
    }
}

/// Translates a source's trees and blobs into the target's.
struct Copier<'a> {
    src: &'a Repository,
    writer: PackWriter<'a>,
    /// Source tree ID to target tree ID, for trees already copied.
    trees: HashMap<BlobId, BlobId>,
    /// Source data blob ID to target data blob ID, for blobs already copied.
    blobs: HashMap<BlobId, BlobId>,
    /// The last bundle read: its source ID, target ID and plaintext (the
    /// bundled files of a directory follow each other).
    bundle: Option<(BlobId, BlobId, Vec<u8>)>,
    /// Blobs read from the source.
    read: u64,
    /// Counts the blobs read, if given.
    progress: Option<&'a Progress>,
}

impl Copier<'_> {
    /// Counts a blob read from the source, with `len` bytes of file data.
    fn count_read(&mut self, len: usize) {
        self.read += 1;
        if let Some(p) = self.progress {
            p.done(1, len as u64);
        }
    }

    /// The target's ID for the source tree `id`, a tree at `level`, stored
    /// in the target with everything below it.
    fn tree(&mut self, id: &BlobId, level: usize) -> Result<BlobId> {
        if let Some(done) = self.trees.get(id) {
            return Ok(*done);
        }
        let tree = self.src.load_tree(id)?;
        self.count_read(0);
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut node in tree.nodes {
            node.kind = match node.kind {
                NodeKind::Dir { subtree } => {
                    let name = || String::from_utf8_lossy(&node.name).into_owned();
                    let subtree =
                        nesting::descend(level, name, |below| self.tree(&subtree, below))?;
                    NodeKind::Dir { subtree }
                }
                NodeKind::File { content } => NodeKind::File {
                    content: content
                        .iter()
                        .map(|blob| self.data(blob))
                        .collect::<Result<_>>()?,
                },
                NodeKind::Bundled { blob, offset, id } => {
                    let bundle = self.bundle(&blob)?;
                    let plain = &self.bundle.as_ref().expect("just read").2;
                    let slice = usize::try_from(offset)
                        .ok()
                        .zip(usize::try_from(node.size).ok())
                        .and_then(|(start, len)| plain.get(start..start.checked_add(len)?))
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "{} lies outside its bundle {blob}: the source snapshot is damaged",
                                String::from_utf8_lossy(&node.name)
                            ))
                        })?;
                    if self.src.blob_id(slice) != id {
                        return Err(Error::Invalid(format!(
                            "{} does not match its content ID in bundle {blob}: the source snapshot is damaged",
                            String::from_utf8_lossy(&node.name)
                        )));
                    }
                    let id = self.writer.repo().blob_id(slice);
                    NodeKind::Bundled {
                        blob: bundle,
                        offset,
                        id,
                    }
                }
                other => other,
            };
            nodes.push(node);
        }
        let copied = self
            .writer
            .save(BlobKind::Tree, Tree::new(nodes).encode())?;
        self.trees.insert(*id, copied);
        Ok(copied)
    }

    /// The target's ID for the source data blob `id`, stored in the target.
    fn data(&mut self, id: &BlobId) -> Result<BlobId> {
        if let Some(done) = self.blobs.get(id) {
            return Ok(*done);
        }
        let plain = self.src.read_blob(BlobKind::Data, id)?;
        self.count_read(plain.len());
        let copied = self.writer.save(BlobKind::Data, plain)?;
        self.blobs.insert(*id, copied);
        Ok(copied)
    }

    /// The target's ID for the source bundle `id`, stored in the target;
    /// its plaintext is left in `self.bundle`.
    fn bundle(&mut self, id: &BlobId) -> Result<BlobId> {
        match &self.bundle {
            Some((src, copied, _)) if src == id => Ok(*copied),
            _ => {
                let plain = self.src.read_blob(BlobKind::Data, id)?;
                self.count_read(plain.len());
                let copied = self.writer.save(BlobKind::Data, plain.clone())?;
                self.bundle = Some((*id, copied, plain));
                Ok(copied)
            }
        }
    }
}
