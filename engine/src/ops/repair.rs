//! Repair: rebuild the index from the packs, and rewrite snapshots so that
//! everything whose data is intact stays restorable.
//!
//! The usual order after `check --read-data` reports damage: `repair index`
//! with `read_data` (the index then lists only blobs that authenticate), then
//! `repair snapshots` (which leaves out, and lists, the files whose data is
//! gone). Neither deletes a pack, so nothing that could still be salvaged is
//! lost; a backup of the same files stores their data again.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::lost::Below;
use crate::nesting::{self, Memo, Walked};
use crate::ops::index_writer::IndexWriter;
use crate::packer::PackWriter;
use crate::repository::Repository;
use crate::session;
use cairn_format::index::IndexPack;
use cairn_format::lock::Operation;
use cairn_format::pack::PackEntry;
use cairn_format::snapshot::{SkippedEntry, Snapshot};
use cairn_format::tree::{NodeKind, Tree};
use cairn_format::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use rayon::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

/// Paths left out, each with why.
type Lost = Vec<(String, String)>;

/// A pack's entries that can be indexed, and the errors of those that cannot.
type Scan = (Vec<PackEntry>, Vec<Error>);

/// What `repair index` found and did.
#[derive(Debug, Default)]
pub struct IndexRepair {
    /// Packs listed in the new index.
    pub packs: u64,
    /// Blobs listed in the new index.
    pub blobs: u64,
    /// Packs left out: their header cannot be read.
    pub unreadable_packs: Vec<Error>,
    /// Blobs left out: they do not authenticate (with `read_data`).
    pub damaged_blobs: Vec<Error>,
    /// Index files written.
    pub written: u64,
    /// Old index files removed.
    pub removed: u64,
}

/// Rebuilds the index from the pack headers (and, with `read_data`, from
/// the blobs that authenticate), then removes the index files it replaces.
/// Packs that a prune mark condemns are left to that prune, unless a
/// current index file lists them. Works on a
/// repository whose index cannot be loaded: open it with
/// [`Repository::open_keys`].
pub fn repair_index(repo: &Repository, read_data: bool, dry_run: bool) -> Result<IndexRepair> {
    let work = || {
        let marks = repo.read_marks()?;
        let old: Vec<String> = repo
            .backend()
            .list(FileKind::Index)?
            .into_iter()
            .filter(|n| IndexId::from_hex(n).is_none_or(|id| !marks.superseded.contains(&id)))
            .collect();
        // A condemned pack stays out, unless a current index file lists it
        // (a backup's, or a re-indexing); unreadable files list nothing.
        let listed: HashSet<PackId> = old
            .iter()
            .filter_map(|n| repo.read_index_file(n).ok())
            .flat_map(|f| f.packs.into_iter().map(|p| p.id))
            .collect();
        let packs: Vec<PackId> = repo
            .backend()
            .list(FileKind::Pack)?
            .iter()
            .filter_map(|n| PackId::from_hex(n))
            .filter(|id| !marks.condemned.contains(id) || listed.contains(id))
            .collect();
        let scanned: Vec<(PackId, Result<Scan>)> = packs
            .par_iter()
            .map(|id| (*id, scan(repo, id, read_data)))
            .collect();
        let mut report = IndexRepair::default();
        let mut listed: Vec<IndexPack> = Vec::new();
        for (id, result) in scanned {
            match result {
                // Nothing in it can be read: left out, for prune to delete.
                Ok((blobs, damaged)) if blobs.is_empty() => report.damaged_blobs.extend(damaged),
                Ok((blobs, damaged)) => {
                    report.damaged_blobs.extend(damaged);
                    report.packs += 1;
                    report.blobs += blobs.len() as u64;
                    listed.push(IndexPack { id, blobs });
                }
                Err(e) => report.unreadable_packs.push(e),
            }
        }
        if dry_run {
            return Ok(report);
        }
        let mut writer = IndexWriter::new(repo);
        for p in listed {
            writer.push(p)?;
        }
        report.written = writer.finish()?;
        for name in old {
            match repo.backend().remove(FileKind::Index, &name) {
                Ok(()) => report.removed += 1,
                Err(Error::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    };
    if dry_run {
        return work();
    }
    let own = repo.start_session(Operation::Repair)?;
    let result = session::others(repo, Some(own.id())).and_then(|(others, _)| {
        session::refuse_beside_maintenance(&others)?;
        work()
    });
    let ended = own.end();
    let report = result?;
    ended?;
    Ok(report)
}

/// The entries of a pack to index: those of its header, or with
/// `read_data` those that authenticate (the others are returned apart).
fn scan(repo: &Repository, id: &PackId, read_data: bool) -> Result<Scan> {
    if !read_data {
        return Ok((repo.read_pack_header(id)?.0.blobs, Vec::new()));
    }
    let bytes = repo.backend().read(FileKind::Pack, &id.to_hex())?;
    let header = repo.pack_header_of(id, &bytes)?;
    let mut damaged = Vec::new();
    let mut good = Vec::new();
    for e in header.blobs {
        match repo.open_blob_in(id, &bytes, &e) {
            Ok(_) => good.push(e),
            Err(err) => damaged.push(err),
        }
    }
    Ok((good, damaged))
}

/// One snapshot `repair snapshots` rewrote (or, in a dry run, would).
#[derive(Debug)]
pub struct SnapshotRepair {
    /// The damaged snapshot.
    pub old: SnapshotId,
    /// Its repaired copy (`None` in a dry run).
    pub new: Option<SnapshotId>,
    /// Paths left out, each with why (as many as fit in the snapshot's
    /// list of skipped entries).
    pub removed: Lost,
    /// Paths left out beyond those in `removed`.
    pub unlisted: u64,
}

/// A tree after repair: the same, or a new tree without the lost entries.
#[derive(Clone)]
enum Fixed {
    Same,
    New(BlobId, Arc<Below>),
    Lost(String),
}

/// Bytes of paths and causes a repaired snapshot lists as skipped, its
/// earlier skipped entries included: well within what a snapshot can hold.
const SKIPPED_BUDGET: usize = 8 << 20;

/// Rewrites every snapshot that uses data the index does not have: entries
/// whose data or subtree is gone are left out and recorded as skipped, and
/// the snapshot gets the tag `repaired`. Each repaired snapshot replaces the
/// old one, which is removed after the new one is stored. Returns the
/// snapshots repaired. Loads the index itself: the repository may be opened
/// with [`Repository::open_keys`].
pub fn repair_snapshots(repo: &mut Repository, dry_run: bool) -> Result<Vec<SnapshotRepair>> {
    match dry_run {
        true => repo.load_index()?,
        false => repo.begin_session(Operation::Rewrite)?,
    }
    let result = rewrite_all(repo, dry_run);
    let ended = repo.end_session();
    let out = result?;
    ended?;
    Ok(out)
}

fn rewrite_all(repo: &mut Repository, dry_run: bool) -> Result<Vec<SnapshotRepair>> {
    let snapshots = repo.snapshots()?;
    let mut fixes = Memo::new();
    let mut out = Vec::new();
    let mut rewritten: Vec<(SnapshotId, Snapshot, Lost, u64)> = Vec::new();
    let mut writer = PackWriter::new(repo);
    for (id, snapshot) in snapshots {
        let (fixed, _) = fix_tree(&mut writer, &mut fixes, &snapshot.tree, 0, dry_run)?;
        let (tree, lost) = match fixed {
            Fixed::Same => continue,
            Fixed::New(tree, lost) => (tree, lost),
            Fixed::Lost(cause) => {
                // Not even the root is left: an empty snapshot says so.
                let tree = save_tree(&mut writer, Tree::new(Vec::new()), dry_run)?;
                let mut lost = Below::default();
                lost.at("", cause);
                (tree, Arc::new(lost))
            }
        };
        let mut new = Snapshot { tree, ..snapshot };
        if !new.tags.iter().any(|t| t == "repaired") {
            new.tags.push("repaired".into());
        }
        let earlier: usize = new
            .skipped
            .iter()
            .map(|s| s.path.len() + s.reason.len())
            .sum();
        let mut budget = SKIPPED_BUDGET.saturating_sub(earlier);
        let mut removed = Vec::new();
        let listed = lost.list(&mut budget, &mut |path, cause| {
            new.skipped.push(SkippedEntry {
                path: format!("/{path}").into_bytes(),
                reason: format!("lost in repair: {cause}"),
            });
            removed.push((path, cause.to_string()));
        });
        let unlisted = lost.paths().saturating_sub(listed);
        if unlisted > 0 {
            new.skipped.push(SkippedEntry {
                path: b"/".to_vec(),
                reason: format!("lost in repair: {unlisted} more paths, too many to list"),
            });
        }
        rewritten.push((id, new, removed, unlisted));
    }
    let (packs, _) = writer.finish()?;
    if dry_run {
        return Ok(rewritten
            .into_iter()
            .map(|(old, _, removed, unlisted)| SnapshotRepair {
                old,
                new: None,
                removed,
                unlisted,
            })
            .collect());
    }
    repo.save_index(packs)?;
    for (old, snapshot, removed, unlisted) in rewritten {
        let new = repo.rewrite_snapshot(&old, &snapshot)?;
        out.push(SnapshotRepair {
            old,
            new: Some(new),
            removed,
            unlisted,
        });
    }
    Ok(out)
}

fn save_tree(writer: &mut PackWriter<'_>, tree: Tree, dry_run: bool) -> Result<BlobId> {
    let bytes = tree.encode();
    match dry_run {
        true => Ok(writer.repo().blob_id(&bytes)),
        false => writer.save(BlobKind::Tree, bytes),
    }
}

/// Repairs tree `id`, a tree at `level`, reading each tree once. A
/// directory nested too deep is lost like one whose tree is gone.
fn fix_tree(
    writer: &mut PackWriter<'_>,
    fixes: &mut Memo<Fixed>,
    id: &BlobId,
    level: usize,
    dry_run: bool,
) -> Result<Walked<Fixed>> {
    if let Some(known) = fixes.get(id, level) {
        return Ok(known);
    }
    let mut height = Some(0);
    let repo = writer.repo();
    let tree = match repo.locate(BlobKind::Tree, id) {
        None => Err(Error::Missing(format!("tree {id}"))),
        Some(_) => repo.load_tree(id),
    };
    let fixed = match tree {
        Err(e) => Fixed::Lost(e.to_string()),
        Ok(tree) => {
            let mut removed = Below::default();
            let mut nodes = Vec::with_capacity(tree.nodes.len());
            let mut changed = false;
            for mut node in tree.nodes {
                let name = String::from_utf8_lossy(&node.name).into_owned();
                let missing = node.kind.file_data().and_then(|d| {
                    d.blobs
                        .iter()
                        .find(|b| repo.locate(BlobKind::Data, b).is_none())
                        .map(|b| format!("data blob {b} is missing"))
                });
                if let Some(cause) = missing {
                    removed.at(&name, cause);
                    changed = true;
                    continue;
                }
                if let NodeKind::Dir { subtree } = &node.kind {
                    let fixed = nesting::descend(
                        level,
                        || name.clone(),
                        |at| fix_tree(writer, fixes, subtree, at, dry_run),
                    );
                    let fixed = match fixed {
                        Err(e @ Error::TooDeep(_)) => (Fixed::Lost(e.to_string()), None),
                        other => other?,
                    };
                    height = nesting::taller(height, fixed.1);
                    let fixed = fixed.0;
                    match fixed {
                        Fixed::Same => {}
                        Fixed::New(new, below) => {
                            removed.below(&name, below);
                            node.kind = NodeKind::Dir { subtree: new };
                            changed = true;
                        }
                        Fixed::Lost(cause) => {
                            removed.at(&name, cause);
                            changed = true;
                            continue;
                        }
                    }
                }
                nodes.push(node);
            }
            match changed {
                false => Fixed::Same,
                true => {
                    let new = save_tree(writer, Tree::new(nodes), dry_run)?;
                    Fixed::New(new, Arc::new(removed))
                }
            }
        }
    };
    fixes.put(*id, level, (fixed.clone(), height));
    Ok((fixed, height))
}
