//! Checking a repository: structure, and with `read_data` every stored byte.
//!
//! The structural check reads the index files, every pack's header and every
//! tree; it shows that each snapshot's trees and data blobs are indexed, that
//! every indexed pack exists, and that each pack's header lists exactly what
//! the index says it holds. Reading the data (of every pack, or of a subset
//! for rolling verification) also authenticates each blob and checks it
//! hashes to its ID. Packs are checked in parallel. Damage is traced to the
//! snapshots and paths it affects.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::lost::Below;
use crate::nesting::{self, Memo, Walked};
use crate::progress::{self, Progress};
use crate::repository::Repository;
use cairn_format::id::storage_hash;
use cairn_format::index::IndexPack;
use cairn_format::pack::PackEntry;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, BlobKind, IndexId, PackId, SnapshotId};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

/// Which packs to read whole besides their headers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    /// Group `n` of `m` (1-based): packs whose ID, as a number, leaves
    /// remainder `n - 1` when divided by `m`. Running `1/m` to `m/m` in turn
    /// reads everything once.
    Group {
        /// Which group, 1 to `m`.
        n: u32,
        /// How many groups.
        m: u32,
    },
    /// This fraction of the packs (0 to 1), chosen at random.
    Fraction(f64),
    /// Packs chosen at random until this many bytes.
    Bytes(u64),
}

impl FromStr for Subset {
    type Err = Error;

    /// Parses `N/M`, `x%` or a size such as `500M`.
    fn from_str(text: &str) -> Result<Subset> {
        let bad = || {
            Error::Invalid(format!(
                "invalid subset {text:?}: give N/M (such as 2/7), a percentage (such as 10%) or a size (such as 5G)"
            ))
        };
        if let Some((n, m)) = text.split_once('/') {
            let (n, m): (u32, u32) = (
                n.trim().parse().map_err(|_| bad())?,
                m.trim().parse().map_err(|_| bad())?,
            );
            return match (1..=m).contains(&n) {
                true => Ok(Subset::Group { n, m }),
                false => Err(bad()),
            };
        }
        if let Some(p) = text.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            return match (0.0..=100.0).contains(&p) {
                true => Ok(Subset::Fraction(p / 100.0)),
                false => Err(bad()),
            };
        }
        crate::filter::parse_size(text)
            .map(Subset::Bytes)
            .map_err(|_| bad())
    }
}

impl std::fmt::Display for Subset {
    /// The form [`Subset::from_str`] parses: `N/M`, `x%`, or a byte count.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subset::Group { n, m } => write!(f, "{n}/{m}"),
            // Rounded, so that the 7 of `7%` does not come back as 7.000000000000001.
            Subset::Fraction(x) => write!(f, "{}%", (x * 1e8).round() / 1e6),
            Subset::Bytes(b) => write!(f, "{b}"),
        }
    }
}

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Read every pack whole and authenticate every blob.
    pub read_data: bool,
    /// Read only these packs whole (when `read_data` is off).
    pub subset: Option<Subset>,
    /// Counts the packs to check and the bytes to read, and those done.
    pub progress: Option<Arc<Progress>>,
}

/// A file or directory of a snapshot that cannot be restored whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The path in the snapshot, as recorded (absolute).
    pub path: String,
    /// Why: the damaged or missing object.
    pub cause: String,
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
    /// Packs read whole.
    pub packs_read: u64,
    /// Bytes of pack data read (headers, and whole packs where read).
    pub bytes_read: u64,
    /// Damage found: each names the object at fault.
    pub errors: Vec<Error>,
    /// The snapshot paths the damage affects.
    pub damaged: Vec<Damage>,
    /// Damaged paths beyond those in `damaged`: the listing is bounded, so
    /// that a tree shared at very many paths cannot make it grow unbounded.
    pub unlisted_damage: u64,
    /// Packs a prune that has not finished marked for deletion: harmless,
    /// readers still use them until the next prune completes the mark.
    pub marked_packs: Vec<PackId>,
    /// Packs no index lists: left by an interrupted backup (or written by
    /// one still running); a prune deletes them.
    pub unused_packs: Vec<PackId>,
    /// The size of the unused packs (of those still there to measure).
    pub unused_bytes: u64,
}

impl CheckReport {
    /// True when no damage was found.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Blobs found damaged or missing, with the reason.
type Broken = HashMap<(BlobKind, BlobId), String>;

/// What checking one pack found.
#[derive(Default)]
struct PackResult {
    read: u64,
    read_whole: bool,
    errors: Vec<Error>,
    broken: Vec<((BlobKind, BlobId), String)>,
}

impl PackResult {
    /// Records `error`, and every blob in `blobs` as lost to it.
    fn lose(&mut self, error: Error, blobs: &[PackEntry]) {
        let cause = error.to_string();
        self.broken
            .extend(blobs.iter().map(|b| ((b.kind, b.id), cause.clone())));
        self.errors.push(error);
    }
}

/// Checks the repository. Errors that stop the check from running at all
/// (storage that cannot be listed) are returned; damage is in the report.
pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let stored: HashSet<String> = repo.backend().list(FileKind::Pack)?.into_iter().collect();
    let packs = indexed_packs(repo, &stored, &mut report)?;
    report.packs = packs.len() as u64;
    let condemned = &repo.marks().condemned;
    for name in &stored {
        let Some(id) = PackId::from_hex(name) else {
            continue;
        };
        if condemned.contains(&id) {
            report.marked_packs.push(id);
        } else if !packs.contains_key(&id) {
            report.unused_packs.push(id);
            match repo.backend().size(FileKind::Pack, name) {
                Ok(n) => report.unused_bytes += n,
                // Deleted since it was listed: by a prune.
                Err(Error::Missing(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for (_, e) in &repo.marks().unreadable {
        report.errors.push(Error::Invalid(format!(
            "{e} (it is ignored; the next prune removes it)"
        )));
    }
    let whole = chosen(&packs, opts);
    // Progress counts the blob bytes of each pack to read (its header aside).
    let to_read = |id: &PackId, blobs: &[PackEntry]| match whole.contains(id) {
        true => blobs
            .iter()
            .map(|b| b.offset + u64::from(b.length))
            .max()
            .unwrap_or(0),
        false => 0,
    };
    if let Some(p) = &opts.progress {
        for (id, blobs) in &packs {
            p.expect(1, to_read(id, blobs));
        }
        p.total_complete();
    }
    let results: Vec<(PackId, PackResult)> = packs
        .par_iter()
        .map(|(id, blobs)| {
            let mut result = PackResult::default();
            if !stored.contains(&id.to_hex()) {
                result.lose(Error::Missing(format!("pack {id}")), blobs);
            } else if whole.contains(id) {
                read_whole(repo, id, blobs, &mut result);
            } else {
                read_header(repo, id, blobs, &mut result);
            }
            progress::done(&opts.progress, 1, to_read(id, blobs));
            (*id, result)
        })
        .collect();
    let mut broken = Broken::new();
    for (id, r) in results {
        report.bytes_read += r.read;
        report.packs_read += u64::from(r.read_whole);
        report.errors.extend(r.errors);
        // A damaged copy matters only where it is the copy readers use.
        let used_here = |(kind, blob): &(BlobKind, BlobId)| {
            repo.locate(*kind, blob).is_some_and(|l| l.pack == id)
        };
        broken.extend(r.broken.into_iter().filter(|(b, _)| used_here(b)));
    }
    check_snapshots(repo, &broken, &mut report)?;
    Ok(report)
}

/// The packs to read whole.
fn chosen(packs: &HashMap<PackId, Vec<PackEntry>>, opts: &CheckOptions) -> HashSet<PackId> {
    let mut ids: Vec<PackId> = packs.keys().copied().collect();
    ids.sort();
    let random_order = |mut ids: Vec<PackId>| {
        // Pack IDs are hashes: ordering by a keyed hash of them is a fresh
        // random order for each run.
        let key: [u8; 32] = cairn_format::crypto::random_array();
        ids.sort_by_cached_key(|id| storage_hash(&[key, id.0].concat()));
        ids
    };
    match (opts.read_data, opts.subset) {
        (true, _) => ids.into_iter().collect(),
        (false, None) => HashSet::new(),
        (false, Some(Subset::Group { n, m })) => ids
            .into_iter()
            .filter(|id| {
                let v = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
                v % u64::from(m) == u64::from(n - 1)
            })
            .collect(),
        (false, Some(Subset::Fraction(f))) => {
            let n = (ids.len() as f64 * f).ceil() as usize;
            random_order(ids).into_iter().take(n).collect()
        }
        (false, Some(Subset::Bytes(limit))) => {
            let mut total = 0u64;
            random_order(ids)
                .into_iter()
                .take_while(|id| {
                    let size: u64 = packs[id].iter().map(|b| u64::from(b.length)).sum();
                    total += size;
                    total - size < limit
                })
                .collect()
        }
    }
}

/// The packs to check, with their blobs: those the current index files
/// list, and the condemned packs still `stored` that files a prune mark
/// supersedes list (readers may still use them). Index files that cannot be
/// read are reported.
fn indexed_packs(
    repo: &Repository,
    stored: &HashSet<String>,
    report: &mut CheckReport,
) -> Result<HashMap<PackId, Vec<PackEntry>>> {
    let mut packs = HashMap::new();
    let marks = repo.marks();
    for name in repo.backend().list(FileKind::Index)? {
        let superseded = IndexId::from_hex(&name).is_some_and(|id| marks.superseded.contains(&id));
        match repo.read_index_file_checked(&name) {
            Ok(file) => {
                for IndexPack { id, blobs } in file.packs {
                    let wanted = !superseded
                        || (marks.condemned.contains(&id) && stored.contains(&id.to_hex()));
                    if wanted {
                        packs.insert(id, blobs);
                    }
                }
            }
            // Superseded files may go at any moment: the prune finishing.
            Err(Error::Missing(_)) if superseded => {}
            Err(e) => report.errors.push(e),
        }
    }
    Ok(packs)
}

/// Reports a header that lists other blobs than the index does.
fn compare(id: &PackId, header: &[PackEntry], indexed: &[PackEntry], result: &mut PackResult) {
    let key = |e: &PackEntry| (e.kind, e.id, e.offset, e.length, e.raw_length);
    let mut listed: Vec<_> = header.iter().map(key).collect();
    let mut expected: Vec<_> = indexed.iter().map(key).collect();
    listed.sort();
    expected.sort();
    if listed != expected {
        result.errors.push(Error::Invalid(format!(
            "pack {id}: its header lists {} blobs that differ from the {} the index lists",
            listed.len(),
            expected.len()
        )));
    }
}

/// Reads and authenticates a pack's header and compares it with the index.
fn read_header(repo: &Repository, id: &PackId, indexed: &[PackEntry], result: &mut PackResult) {
    match repo.read_pack_header(id) {
        Ok((header, read)) => {
            result.read = read;
            compare(id, &header.blobs, indexed, result);
        }
        Err(e) => result.lose(e, indexed),
    }
}

/// Reads a whole pack: its hash, its header, and every blob the index lists.
fn read_whole(repo: &Repository, id: &PackId, indexed: &[PackEntry], result: &mut PackResult) {
    let bytes = match repo.backend().read(FileKind::Pack, &id.to_hex()) {
        Ok(b) => b,
        Err(e) => return result.lose(e, indexed),
    };
    result.read = bytes.len() as u64;
    result.read_whole = true;
    if storage_hash(&bytes) != id.0 {
        result.errors.push(Error::Invalid(format!(
            "pack {id}: its content does not match its name (damaged)"
        )));
    }
    match repo.pack_header_of(id, &bytes) {
        Ok(header) => compare(id, &header.blobs, indexed, result),
        Err(e) => result.errors.push(e),
    }
    for e in indexed {
        if let Err(err) = repo.open_blob_in(id, &bytes, e) {
            result.lose(err, std::slice::from_ref(e));
        }
    }
}

/// Bytes of paths and causes that a check lists as damaged; beyond it the
/// damaged paths are only counted.
const LISTING_BUDGET: usize = 64 << 20;

/// Walks every snapshot, reading each tree once, and traces missing and
/// damaged blobs to the paths of the snapshots that use them.
fn check_snapshots(repo: &Repository, broken: &Broken, report: &mut CheckReport) -> Result<()> {
    let (snapshots, unreadable) = repo.readable_snapshots()?;
    report.errors.extend(unreadable);
    let mut walk = Walk {
        repo,
        broken,
        trees: Memo::new(),
        data: HashSet::new(),
        errors: Vec::new(),
    };
    let mut budget = LISTING_BUDGET;
    for (snapshot_id, snapshot) in &snapshots {
        report.snapshots += 1;
        let (root, _) = walk.tree(&snapshot.tree, 0);
        let listed = root.list(&mut budget, &mut |path, cause| {
            report.damaged.push(Damage {
                snapshot: *snapshot_id,
                path: format!("/{path}"),
                cause: cause.to_string(),
            })
        });
        let unlisted = root.paths().saturating_sub(listed);
        report.unlisted_damage = report.unlisted_damage.saturating_add(unlisted);
    }
    report.trees = walk.trees.ids().len() as u64;
    report.data_blobs = walk.data.len() as u64;
    report.errors.extend(walk.errors);
    Ok(())
}

struct Walk<'r> {
    repo: &'r Repository,
    broken: &'r Broken,
    /// Damage below each tree read.
    trees: Memo<Arc<Below>>,
    /// Data blobs seen.
    data: HashSet<BlobId>,
    /// Problems found during the walk (each reported once).
    errors: Vec<Error>,
}

impl Walk<'_> {
    /// The damage below tree `id`, a tree at `level` (empty when it is whole).
    fn tree(&mut self, id: &BlobId, level: usize) -> Walked<Arc<Below>> {
        if let Some(known) = self.trees.get(id, level) {
            return known;
        }
        let mut below = Below::default();
        let mut height = Some(0);
        match self.blob_problem(BlobKind::Tree, id, true) {
            Some(cause) => below.at("", cause),
            None => match self.repo.load_tree(id) {
                Err(e) => {
                    below.at("", e.to_string());
                    self.errors.push(e);
                }
                Ok(tree) => {
                    for node in &tree.nodes {
                        let name = String::from_utf8_lossy(&node.name);
                        if let NodeKind::Dir { subtree } = &node.kind {
                            let what = || format!("directory {name} of tree {id}");
                            match nesting::descend(level, what, |l| Ok(self.tree(subtree, l))) {
                                Ok((sub, sub_height)) => {
                                    height = nesting::taller(height, sub_height);
                                    below.below(&name, sub);
                                }
                                Err(e) => {
                                    height = None;
                                    below.at(&name, e.to_string());
                                    self.errors.push(e);
                                }
                            }
                        }
                        if let Some(cause) = self.file_problem(node) {
                            below.at(&name, cause);
                        }
                    }
                }
            },
        }
        let walked = (Arc::new(below), height);
        self.trees.put(*id, level, walked.clone());
        walked
    }

    /// Why a file's content cannot be restored, if it cannot.
    fn file_problem(&mut self, node: &cairn_format::tree::Node) -> Option<String> {
        let data = node.kind.file_data()?;
        let mut problem = None;
        for id in data.blobs {
            let first = self.data.insert(*id);
            problem = problem.or(self.blob_problem(BlobKind::Data, id, first));
        }
        if let (NodeKind::File { content }, None) = (&node.kind, &problem) {
            let stored: u64 = content
                .iter()
                .filter_map(|id| self.repo.locate(BlobKind::Data, id))
                .map(|l| u64::from(l.raw_length))
                .sum();
            if stored != node.size {
                let p = format!(
                    "its data holds {stored} bytes where its entry says {}",
                    node.size
                );
                self.errors.push(Error::Invalid(format!(
                    "{}: {p}",
                    String::from_utf8_lossy(&node.name)
                )));
                problem = Some(p);
            }
        }
        if let (NodeKind::Bundled { blob, offset, .. }, None) = (&node.kind, &problem) {
            let loc = self.repo.locate(BlobKind::Data, blob)?;
            if offset.saturating_add(node.size) > u64::from(loc.raw_length) {
                let p = format!("it lies outside its bundle {blob}");
                self.errors.push(Error::Invalid(format!(
                    "{}: {p}",
                    String::from_utf8_lossy(&node.name)
                )));
                problem = Some(p);
            }
        }
        problem
    }

    /// Why a blob cannot be read, if it cannot: found damaged (already
    /// reported), or not stored (reported when `first`).
    fn blob_problem(&mut self, kind: BlobKind, id: &BlobId, first: bool) -> Option<String> {
        if let Some(cause) = self.broken.get(&(kind, *id)) {
            return Some(cause.clone());
        }
        if self.repo.locate(kind, id).is_some() {
            return None;
        }
        let e = Error::Missing(format!("{} {id}", kind.object_type().name()));
        let cause = e.to_string();
        if first {
            self.errors.push(e);
        }
        Some(cause)
    }
}
