//! Checking a repository: structure, and with `read_data` every stored byte.
//!
//! The structural check reads the index files, every pack's header and every
//! tree; it shows that each snapshot's trees and data blobs are indexed, that
//! every indexed pack exists, and that each pack's header lists exactly what
//! the index says it holds. Reading the data also authenticates every blob
//! of every pack and checks it hashes to its ID. Packs are checked in
//! parallel.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::progress::{self, Progress};
use crate::repository::Repository;
use cairn_format::index::IndexPack;
use cairn_format::pack::{PackEntry, PackHeader};
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, BlobKind, IndexId, PackId};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Read every pack whole and authenticate every blob.
    pub read_data: bool,
    /// Counts the packs to check and the bytes to read, and those done.
    pub progress: Option<Arc<Progress>>,
}

/// What a check looked at and what it found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct trees read.
    pub trees: u64,
    /// Distinct data blobs referenced by snapshots.
    pub data_blobs: u64,
    /// Packs listed in the index.
    pub packs: u64,
    /// Bytes of pack data read (headers, or everything with `read_data`).
    pub bytes_read: u64,
    /// Damage found: each names the object at fault.
    pub errors: Vec<Error>,
    /// Harmless findings, such as packs no index lists (left by an
    /// interrupted backup).
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// True when no damage was found.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks the repository. Errors that stop the check from running at all
/// (storage that cannot be listed) are returned; damage is in the report.
pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let packs = indexed_packs(repo, &mut report)?;
    report.packs = packs.len() as u64;
    let stored: HashSet<String> = repo.backend().list(FileKind::Pack)?.into_iter().collect();
    let condemned = &repo.marks().condemned;
    for name in &stored {
        let Some(id) = PackId::from_hex(name) else {
            continue;
        };
        if condemned.contains(&id) && !packs.contains_key(&id) {
            report.warnings.push(format!(
                "pack {name} is marked for deletion by a prune that has not finished"
            ));
        } else if !packs.contains_key(&id) {
            report
                .warnings
                .push(format!("pack {name} is not in any index (unused)"));
        }
    }
    for e in &repo.marks().unreadable {
        report.errors.push(Error::Invalid(format!(
            "{e} (it is ignored; the next prune removes it)"
        )));
    }
    // Progress counts the blob bytes of each pack to read (its header aside).
    let to_read = |blobs: &[PackEntry]| match opts.read_data {
        true => blobs
            .iter()
            .map(|b| b.offset + u64::from(b.length))
            .max()
            .unwrap_or(0),
        false => 0,
    };
    if let Some(p) = &opts.progress {
        for blobs in packs.values() {
            p.expect(1, to_read(blobs));
        }
        p.total_complete();
    }
    let results: Vec<(u64, Option<Error>)> = packs
        .par_iter()
        .map(|(id, blobs)| {
            if !stored.contains(&id.to_hex()) {
                return (0, Some(Error::Missing(format!("pack {id}"))));
            }
            let result = match check_pack(repo, id, blobs, opts.read_data) {
                Ok(read) => (read, None),
                Err(e) => (0, Some(e)),
            };
            progress::done(&opts.progress, 1, to_read(blobs));
            result
        })
        .collect();
    for (read, error) in results {
        report.bytes_read += read;
        report.errors.extend(error);
    }
    check_snapshots(repo, &mut report)?;
    Ok(report)
}

/// The packs the index files list, with their blobs. Index files that cannot
/// be read are reported. Files a prune mark supersedes are left out: the
/// packs they list are either listed again in current files or condemned.
fn indexed_packs(
    repo: &Repository,
    report: &mut CheckReport,
) -> Result<HashMap<PackId, Vec<PackEntry>>> {
    let mut packs = HashMap::new();
    let superseded = &repo.marks().superseded;
    for name in repo.backend().list(FileKind::Index)? {
        if IndexId::from_hex(&name).is_some_and(|id| superseded.contains(&id)) {
            continue;
        }
        match repo.read_index_file(&name) {
            Ok(file) => {
                for IndexPack { id, blobs } in file.packs {
                    packs.insert(id, blobs);
                }
            }
            Err(e) => report.errors.push(e),
        }
    }
    Ok(packs)
}

/// Reads a pack's header (or the whole pack) and compares it with the index;
/// returns the bytes read.
fn check_pack(
    repo: &Repository,
    id: &PackId,
    indexed: &[PackEntry],
    read_data: bool,
) -> Result<u64> {
    let (header, read): (PackHeader, u64) = if read_data {
        let size = repo.backend().size(FileKind::Pack, &id.to_hex())?;
        (repo.verify_pack(id)?, size)
    } else {
        repo.read_pack_header(id)?
    };
    let key = |e: &PackEntry| (e.kind, e.id, e.offset, e.length, e.raw_length);
    let mut listed: Vec<_> = header.blobs.iter().map(key).collect();
    let mut expected: Vec<_> = indexed.iter().map(key).collect();
    listed.sort();
    expected.sort();
    if listed != expected {
        return Err(Error::Invalid(format!(
            "pack {id}: its header lists {} blobs that differ from the {} the index lists",
            listed.len(),
            expected.len()
        )));
    }
    Ok(read)
}

/// Walks every snapshot's trees once, checking that each tree can be read and
/// each data blob is indexed.
fn check_snapshots(repo: &Repository, report: &mut CheckReport) -> Result<()> {
    let (snapshots, unreadable) = repo.readable_snapshots()?;
    report.errors.extend(unreadable);
    let mut seen_trees: HashSet<BlobId> = HashSet::new();
    let mut seen_data: HashSet<BlobId> = HashSet::new();
    for (snapshot_id, snapshot) in &snapshots {
        report.snapshots += 1;
        let mut todo = vec![snapshot.tree];
        while let Some(tree_id) = todo.pop() {
            if !seen_trees.insert(tree_id) {
                continue;
            }
            let tree = match repo.load_tree(&tree_id) {
                Ok(t) => t,
                Err(e) => {
                    report.errors.push(Error::Invalid(format!(
                        "snapshot {snapshot_id}: tree {tree_id}: {e}"
                    )));
                    continue;
                }
            };
            report.trees += 1;
            for node in &tree.nodes {
                match &node.kind {
                    NodeKind::Dir { subtree } => todo.push(*subtree),
                    NodeKind::File { content } => {
                        for id in content {
                            if seen_data.insert(*id) && repo.locate(BlobKind::Data, id).is_none() {
                                report.errors.push(Error::Missing(format!(
                                    "data blob {id} (snapshot {snapshot_id}, tree {tree_id})"
                                )));
                            }
                        }
                    }
                    NodeKind::Bundled { blob, offset, .. } => {
                        let loc = repo.locate(BlobKind::Data, blob);
                        let fits = loc.is_some_and(|l| {
                            offset.saturating_add(node.size) <= u64::from(l.raw_length)
                        });
                        if seen_data.insert(*blob) && loc.is_none() {
                            report.errors.push(Error::Missing(format!(
                                "data blob {blob} (snapshot {snapshot_id}, tree {tree_id})"
                            )));
                        } else if loc.is_some() && !fits {
                            report.errors.push(Error::Invalid(format!(
                                "{}: lies outside its bundle {blob} (snapshot {snapshot_id}, tree {tree_id})",
                                String::from_utf8_lossy(&node.name)
                            )));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    report.data_blobs = seen_data.len() as u64;
    Ok(())
}
