//! Prune: removes what no snapshot references, safely alongside backups.
//!
//! A prune works in two phases (SPEC.md §15). First it finds the packs that
//! hold nothing any snapshot uses, and the packs that hold mostly unused
//! bytes, whose used blobs it copies into new packs. It writes index files
//! that list the packs kept and the new ones, then a *mark* naming the index
//! files these replace and the packs to delete. From then on no backup uses
//! what the mark condemns. The deletion itself waits until every session that
//! began before the mark has ended: at once when none runs, otherwise in a
//! later prune. That prune first walks the snapshots again, and keeps (by
//! indexing them again) any condemned pack that a snapshot written meanwhile
//! came to use.
//!
//! Memory stays small however large the repository: one bit per indexed blob
//! for what is used, a few numbers per pack, and one index file at a time.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::ops::index_writer::IndexWriter;
use crate::packer::PackWriter;
mod used;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::session::{self, Session, SessionInfo};
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::lock::{Operation, PruneMark};
use cairn_format::{IndexId, MarkId, PackId, Timestamp};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use used::Used;

/// How much to do.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// A pack with more than this fraction of its bytes unused is repacked.
    pub max_unused: f64,
    /// At most this many bytes of packs are repacked in one run.
    pub max_repack: Option<u64>,
    /// Only count what would be done.
    pub dry_run: bool,
    /// Repack every pack sealed in a key epoch before this one, whatever
    /// its unused share and the repack limit: how a key rotation's rewrite
    /// re-seals the blobs ([`crate::rotate`]).
    pub reseal_before: Option<u32>,
    /// Advanced by each pack repacked, with its size; the totals are known
    /// once the packs to repack are chosen.
    pub progress: Option<Arc<Progress>>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.05,
            max_repack: None,
            dry_run: false,
            reseal_before: None,
            progress: None,
        }
    }
}

/// What a prune found and did.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// Snapshots whose trees were walked.
    pub snapshots: u64,
    /// Packs kept as they are.
    pub packs_kept: u64,
    /// Unused bytes left in kept packs.
    pub unused_bytes_kept: u64,
    /// Packs holding nothing used (including packs no index lists), marked for deletion.
    pub packs_unused: u64,
    /// Their size: the blobs' bytes of indexed packs, the file size of the others.
    pub bytes_unused: u64,
    /// Packs repacked (or, in a dry run, to repack).
    pub packs_repacked: u64,
    /// Their size.
    pub bytes_repacked: u64,
    /// Bytes of used blobs copied out of them.
    pub bytes_copied: u64,
    /// Packs deleted in this run (marked now or by an earlier prune).
    pub packs_deleted: u64,
    /// Bytes deleted.
    pub bytes_deleted: u64,
    /// Condemned packs that a snapshot came to use, indexed again instead of deleted.
    pub packs_rescued: u64,
    /// Packs that would have been deleted or repacked, kept because storage
    /// keeps them (or an index file listing them) from deletion until a
    /// later date (S3 Object Lock, SPEC §2.6).
    pub packs_retained: u64,
    /// Marks whose deletions wait for sessions still running, with those sessions.
    pub waiting: Vec<(MarkId, Vec<SessionInfo>)>,
    /// Sessions that are gone without ending (for `cairn unlock`).
    pub stale_sessions: Vec<SessionInfo>,
    /// Lock records that cannot be read and are too old to belong to a
    /// running session, ignored (for `cairn unlock`).
    pub stale_unreadable: Vec<session::Unreadable>,
    /// Damaged prune marks removed.
    pub damaged_marks_removed: u64,
}

/// `e`, as the reason a prune stopped before deleting anything.
fn refuse(e: Error) -> Error {
    Error::Invalid(format!(
        "prune stopped before deleting anything: {e}; run `cairn check` and repair the repository first"
    ))
}

/// What phase one decided for one pack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Delete,
    Repack,
}

/// One pack's use, from the index files.
struct PackUse {
    used_bytes: u64,
    unused_bytes: u64,
    /// Whether it is repacked whatever its unused share: it has holes
    /// between the blobs the index lists (blobs `repair index` left out as
    /// damaged; a writer lays blobs back to back, SPEC §9.1), or it is
    /// sealed in a retired key epoch.
    forced: bool,
    fate: Fate,
}

/// Removes unused data. Runs as a session of its own (a dry run writes
/// nothing at all); refuses to run while another prune or a repair runs. Loads the
/// index itself (once, at the right moment), so the repository may be
/// opened with [`Repository::open_keys`]. See the module documentation for
/// the protocol.
pub fn prune(repo: &mut Repository, opts: &PruneOptions) -> Result<PruneReport> {
    repo.full_key("prune")?;
    if opts.dry_run {
        return run(repo, opts, None);
    }
    let own = repo.start_session(Operation::Prune)?;
    let result = run(repo, opts, Some(&own)).and_then(|report| {
        // The records of sessions that have ended go while this prune still
        // runs, so that no other prune is between its two listings.
        let (sessions, _) = session::sessions(repo)?;
        let ended: Vec<SessionInfo> = sessions
            .into_iter()
            .filter(|s| s.liveness == session::Liveness::Ended)
            .collect();
        session::remove_records(repo, &ended)?;
        Ok(report)
    });
    let me = own.id();
    let ended = own.end();
    // The index loaded for the walk may list packs that are gone now.
    let reloaded = repo.load_index();
    let report = result?;
    ended?;
    reloaded?;
    // This prune's own records go last: a prune that listed them while this
    // one ran refused to run, and one that lists them now sees it over.
    let (sessions, _) = session::sessions(repo)?;
    let mine: Vec<SessionInfo> = sessions
        .into_iter()
        .filter(|s| s.latest.session == me && s.is_over())
        .collect();
    session::remove_records(repo, &mine)?;
    Ok(report)
}

/// Both phases; `own` is this prune's session (none in a dry run, which changes
/// nothing). Before each change the session must still be fresh: a prune
/// that other hosts may have taken for gone stops.
fn run(repo: &mut Repository, opts: &PruneOptions, own: Option<&Session>) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let me = own.map(|s| s.id());
    let fresh = || own.map_or(Ok(()), |s| s.check_fresh());
    // The order matters. Every session not over in `before` is waited for.
    // Every snapshot listed afterwards has its index files written before
    // it, so loading the index after listing the snapshots finds all their
    // blobs.
    let (before, stale_unreadable) = session::others(repo, me)?;
    session::refuse_beside_maintenance(&before)?;
    report.stale_unreadable = stale_unreadable;
    report.stale_sessions = before
        .iter()
        .filter(|s| matches!(s.liveness, session::Liveness::Stale(_)))
        .cloned()
        .collect();
    let (snapshots, unreadable) = repo.readable_snapshots()?;
    if let Some(e) = unreadable.into_iter().next() {
        return Err(refuse(e));
    }
    repo.load_index()?;
    let repo = &*repo;
    if !opts.dry_run {
        // Ignoring a damaged mark is safe (SPEC.md §15.3); removing it ends
        // the warning about it.
        for (id, _) in &repo.marks().unreadable {
            fresh()?;
            remove_if_there(repo, FileKind::Mark, &id.to_hex())?;
            report.damaged_marks_removed += 1;
        }
    }
    let used = Used::walk(repo, &snapshots, &mut report)?;

    // Deletions that earlier prunes marked, where every session that could
    // still use them had ended before the walk.
    for (id, mark) in &repo.marks().marks {
        let blocking = blockers(id, &before, &before);
        if !blocking.is_empty() {
            report.waiting.push((*id, blocking));
        } else if !opts.dry_run {
            fresh()?;
            complete(repo, id, mark, Some(&used), &mut report)?;
        }
    }

    if let Some(mark) = plan(repo, &used, opts, me, &mut report)? {
        fresh()?;
        let id = MarkId(repo.store_file(FileKind::Mark, &mark.seal(repo.keys()))?);
        // Sessions that were running before the walk and sessions that began
        // before the mark may use what it condemns; the others cannot.
        let blocking = blockers(&id, &before, &session::others(repo, me)?.0);
        if blocking.is_empty() {
            fresh()?;
            complete(repo, &id, &mark, None, &mut report)?;
        } else {
            report.waiting.push((id, blocking));
        }
    }
    Ok(report)
}

/// The sessions in `now` that may use what `mark` condemns: those that have
/// not seen it, unless they had already ended when `before` was listed.
fn blockers(mark: &MarkId, before: &[SessionInfo], now: &[SessionInfo]) -> Vec<SessionInfo> {
    let over_before: HashSet<[u8; 16]> = before
        .iter()
        .filter(|s| s.is_over())
        .map(|s| s.latest.session)
        .collect();
    let in_now: HashSet<[u8; 16]> = now.iter().map(|s| s.latest.session).collect();
    // A session that was running before and whose records are gone since
    // ended meanwhile, and may have stored a snapshot the walk did not see.
    let vanished = before
        .iter()
        .filter(|s| !s.is_over() && !in_now.contains(&s.latest.session));
    now.iter()
        .filter(|s| !s.has_seen(mark) && !over_before.contains(&s.latest.session))
        .chain(vanished)
        .cloned()
        .collect()
}

/// Phase one: decides each pack's fate, copies the used blobs of packs to
/// repack, writes the index files that replace those listing changed packs,
/// and returns the mark to write (`None` when nothing is to be deleted or in
/// a dry run).
fn plan(
    repo: &Repository,
    used: &Used<'_>,
    opts: &PruneOptions,
    me: Option<[u8; 16]>,
    report: &mut PruneReport,
) -> Result<Option<PruneMark>> {
    // Only the index files loaded before the walk: what `used` describes.
    let index_files = repo.index_files();
    let retired = match opts.reseal_before {
        Some(epoch) => sealed_before(repo, epoch)?,
        None => HashSet::new(),
    };
    // Pass 1: how much of each pack is used, and which files list it.
    let mut packs: HashMap<PackId, PackUse> = HashMap::new();
    let mut listed_in: HashMap<PackId, Vec<usize>> = HashMap::new();
    for (n, file_id) in index_files.iter().enumerate() {
        for p in repo.read_index_file(&file_id.to_hex())?.packs {
            listed_in.entry(p.id).or_default().push(n);
            if packs.contains_key(&p.id) {
                continue;
            }
            let (mut used_bytes, mut unused_bytes) = (0, 0);
            for e in &p.blobs {
                match used.is_used_here(&p.id, e) {
                    true => used_bytes += u64::from(e.length),
                    false => unused_bytes += u64::from(e.length),
                }
            }
            let end = p.blobs.iter().map(|e| e.offset + u64::from(e.length)).max();
            let holes = end.unwrap_or(0).saturating_sub(used_bytes + unused_bytes);
            unused_bytes += holes;
            let forced = holes > 0 || retired.contains(&p.id);
            let fate = match (used_bytes, unused_bytes) {
                (0, _) => Fate::Delete,
                (_, 0) if !forced => Fate::Keep,
                _ => Fate::Repack,
            };
            packs.insert(
                p.id,
                PackUse {
                    used_bytes,
                    unused_bytes,
                    forced,
                    fate,
                },
            );
        }
    }
    // Repack the packs with the largest unused share first, within the limits.
    let mut candidates: Vec<(&PackId, &mut PackUse)> = packs
        .iter_mut()
        .filter(|(_, u)| u.fate == Fate::Repack)
        .collect();
    candidates.sort_by(|a, b| {
        let share = |u: &PackUse| u.unused_bytes as f64 / (u.used_bytes + u.unused_bytes) as f64;
        share(b.1).total_cmp(&share(a.1)).then(a.0.cmp(b.0))
    });
    let mut budget = opts.max_repack.unwrap_or(u64::MAX);
    for (id, u) in candidates {
        let size = u.used_bytes + u.unused_bytes;
        let share = u.unused_bytes as f64 / size as f64;
        // A pack with a damaged blob is rewritten whatever share it is, and
        // a re-seal rewrites every retired pack whatever the limit.
        if retired.contains(id) {
            continue;
        }
        if (share <= opts.max_unused && !u.forced) || size > budget {
            u.fate = Fate::Keep;
        } else {
            budget = budget.saturating_sub(size);
        }
    }
    keep_retained(repo, &mut packs, &listed_in, index_files, report)?;
    let mut condemned: Vec<PackId> = Vec::new();
    for (id, u) in &packs {
        match u.fate {
            Fate::Keep => {
                report.packs_kept += 1;
                report.unused_bytes_kept += u.unused_bytes;
            }
            Fate::Delete => {
                report.packs_unused += 1;
                report.bytes_unused += u.unused_bytes;
                condemned.push(*id);
            }
            Fate::Repack => {
                report.packs_repacked += 1;
                report.bytes_repacked += u.used_bytes + u.unused_bytes;
                report.bytes_copied += u.used_bytes;
                condemned.push(*id);
            }
        }
    }
    // Packs no index lists: left by interrupted backups, or by a backup that
    // is still running, which the mark's wait protects. Index files written
    // since the index was loaded (by backups, or by this prune when it kept
    // marked packs) list packs too.
    let loaded: HashSet<&IndexId> = index_files.iter().collect();
    let mut indexed_since: HashSet<PackId> = HashSet::new();
    for name in repo.backend().list(FileKind::Index)? {
        let known = IndexId::from_hex(&name)
            .is_some_and(|id| loaded.contains(&id) || repo.marks().superseded.contains(&id));
        if !known {
            indexed_since.extend(repo.read_index_file(&name)?.packs.iter().map(|p| p.id));
        }
    }
    for name in repo.backend().list(FileKind::Pack)? {
        let id = PackId::from_hex(&name).expect("backends list only hex IDs");
        if !packs.contains_key(&id)
            && !indexed_since.contains(&id)
            && !repo.marks().condemned.contains(&id)
        {
            if retained(repo, FileKind::Pack, &name)? {
                report.packs_retained += 1;
                continue;
            }
            report.packs_unused += 1;
            report.bytes_unused += repo.backend().size(FileKind::Pack, &name)?;
            condemned.push(id);
        }
    }
    if condemned.is_empty() || opts.dry_run {
        return Ok(None);
    }
    let copies = copy_used_blobs(repo, used, &packs, opts.progress.as_deref())?;
    // A prune that took this one for over (its session forged as ended)
    // may have deleted the copies before they are indexed: confirm, as a
    // backup does, before the index files and again before the mark.
    let copied: HashSet<PackId> = copies.iter().map(|p| p.id).collect();
    session::confirm_packs(repo, &copied, "prune")?;
    // The files listing a changed pack are replaced by files listing the
    // kept packs they held, and the copies.
    let changes = |id: &PackId| packs[id].fate != Fate::Keep;
    let changed_files: HashSet<usize> = listed_in
        .iter()
        .filter(|(id, _)| changes(id))
        .flat_map(|(_, files)| files.iter().copied())
        .collect();
    let mut replaced: Vec<IndexId> = Vec::new();
    let mut kept = IndexWriter::new(repo);
    let mut written: HashSet<PackId> = HashSet::new();
    for (n, file_id) in index_files.iter().enumerate() {
        if !changed_files.contains(&n) {
            continue;
        }
        replaced.push(*file_id);
        for p in repo.read_index_file(&file_id.to_hex())?.packs {
            // A kept pack also listed in a file that stays needs no new listing.
            let stays_listed = listed_in[&p.id].iter().any(|m| !changed_files.contains(m));
            if !changes(&p.id) && !stays_listed && written.insert(p.id) {
                kept.push(p)?;
            }
        }
    }
    for p in copies {
        kept.push(p)?;
    }
    kept.finish()?;
    session::confirm_packs(repo, &copied, "prune")?;
    condemned.sort();
    Ok(Some(PruneMark {
        version: 1,
        session: me.expect("only a dry run has no session, and it writes no mark"),
        created: Timestamp::now(),
        superseded: replaced,
        condemned,
    }))
}

/// Whether storage keeps file `name` of `kind` from deletion now.
fn retained(repo: &Repository, kind: FileKind, name: &str) -> Result<bool> {
    let until = repo.backend().retained_until(kind, name)?;
    Ok(until.is_some_and(|t| t > std::time::SystemTime::now()))
}

/// Keeps, as they are, the packs to delete or repack that storage keeps
/// from deletion, and every pack listed by an index file that would be
/// replaced but is kept from deletion (it would list them still).
fn keep_retained(
    repo: &Repository,
    packs: &mut HashMap<PackId, PackUse>,
    listed_in: &HashMap<PackId, Vec<usize>>,
    index_files: &[IndexId],
    report: &mut PruneReport,
) -> Result<()> {
    let keep = |u: &mut PackUse, report: &mut PruneReport| {
        if u.fate != Fate::Keep {
            u.fate = Fate::Keep;
            report.packs_retained += 1;
        }
    };
    for (id, u) in packs.iter_mut() {
        if u.fate != Fate::Keep && retained(repo, FileKind::Pack, &id.to_hex())? {
            keep(u, report);
        }
    }
    let mut asked: HashSet<usize> = HashSet::new();
    loop {
        let replaced: HashSet<usize> = listed_in
            .iter()
            .filter(|(id, _)| packs[*id].fate != Fate::Keep)
            .flat_map(|(_, files)| files.iter().copied())
            .collect();
        let mut kept: Vec<usize> = Vec::new();
        for n in replaced {
            if asked.insert(n) && retained(repo, FileKind::Index, &index_files[n].to_hex())? {
                kept.push(n);
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        for (id, files) in listed_in {
            if files.iter().any(|n| kept.contains(n)) {
                keep(
                    packs.get_mut(id).expect("every listed pack is counted"),
                    report,
                );
            }
        }
    }
}

/// The indexed packs sealed in a key epoch before `epoch`, by the envelope
/// of each one's first blob (a pack is sealed by one process, in one epoch).
fn sealed_before(repo: &Repository, epoch: u32) -> Result<HashSet<PackId>> {
    use rayon::prelude::*;
    let mut packs: Vec<PackId> = Vec::new();
    for file_id in repo.index_files() {
        packs.extend(
            repo.read_index_file(&file_id.to_hex())?
                .packs
                .iter()
                .map(|p| p.id),
        );
    }
    packs.sort();
    packs.dedup();
    let epochs: Vec<(PackId, Option<u32>)> = packs
        .into_par_iter()
        .map(|id| {
            let head = repo.backend().read_at(FileKind::Pack, &id.to_hex(), 0, 5)?;
            Ok((id, cairn_format::keyring::sealed_epoch(&head)))
        })
        .collect::<Result<_>>()?;
    // A pack sealed without epochs (or damaged there) is re-sealed too.
    Ok(epochs
        .into_iter()
        .filter(|(_, e)| e.is_none_or(|e| e < epoch))
        .map(|(id, _)| id)
        .collect())
}

/// Copies the used blobs of the packs to repack into new packs; returns
/// those packs. Each blob is authenticated before it is copied.
fn copy_used_blobs(
    repo: &Repository,
    used: &Used<'_>,
    packs: &HashMap<PackId, PackUse>,
    progress: Option<&Progress>,
) -> Result<Vec<IndexPack>> {
    let mut writer = PackWriter::for_copies(repo);
    let mut to_repack: Vec<(&PackId, u64)> = packs
        .iter()
        .filter(|(_, u)| u.fate == Fate::Repack)
        .map(|(id, u)| (id, u.used_bytes + u.unused_bytes))
        .collect();
    to_repack.sort();
    if let Some(p) = progress {
        p.expect(
            to_repack.len() as u64,
            to_repack.iter().map(|(_, n)| n).sum(),
        );
        p.total_complete();
    }
    for (id, size) in to_repack {
        // Each blob copied is authenticated; the pack as a whole may be
        // damaged elsewhere (in a blob `repair index` left out).
        let bytes = repo.backend().read(FileKind::Pack, &id.to_hex())?;
        let header = repo.pack_header_of(id, &bytes).map_err(refuse)?;
        for e in header.blobs.iter().filter(|e| used.is_used_here(id, e)) {
            let plain = repo.open_blob_in(id, &bytes, e).map_err(refuse)?;
            writer.save(e.kind, plain)?;
        }
        if let Some(p) = progress {
            p.done(1, size);
        }
    }
    Ok(writer.finish()?.0)
}

/// Phase two for one mark. For a mark of an earlier run (`earlier` holds
/// what the snapshots use now), each condemned pack that holds the only
/// copy of a blob a snapshot uses is indexed again. Then the superseded
/// index files are removed, then every condemned pack that no index file
/// lists any more (a backup's index, a re-indexing, or a file another mark
/// supersedes can still list it), then the mark. Each step may be repeated
/// after a crash; a crash between the steps leaves only unlisted packs.
fn complete(
    repo: &Repository,
    id: &MarkId,
    mark: &PruneMark,
    earlier: Option<&Used<'_>>,
    report: &mut PruneReport,
) -> Result<()> {
    let condemned: HashSet<PackId> = mark.condemned.iter().copied().collect();
    if let Some(used) = earlier {
        let mut rescued: Vec<IndexPack> = Vec::new();
        for file in &mark.superseded {
            for p in read_if_there(repo, file)? {
                let needed =
                    condemned.contains(&p.id) && p.blobs.iter().any(|e| used.needs_condemned(e));
                if needed && !rescued.iter().any(|r| r.id == p.id) {
                    rescued.push(p);
                }
            }
        }
        report.packs_rescued += rescued.len() as u64;
        if !rescued.is_empty() {
            repo.write_index_file(&IndexFile {
                version: 1,
                packs: rescued,
            })?;
        }
    }
    for file in &mark.superseded {
        remove_if_there(repo, FileKind::Index, &file.to_hex())?;
    }
    let mut listed: HashSet<PackId> = HashSet::new();
    for name in repo.backend().list(FileKind::Index)? {
        let file = IndexId::from_hex(&name).expect("backends list only hex IDs");
        listed.extend(
            read_if_there(repo, &file)?
                .into_iter()
                .map(|p| p.id)
                .filter(|p| condemned.contains(p)),
        );
    }
    for pack in condemned.iter().filter(|p| !listed.contains(p)) {
        let name = pack.to_hex();
        let size = match repo.backend().size(FileKind::Pack, &name) {
            Ok(s) => s,
            Err(Error::Missing(_)) => continue,
            Err(e) => return Err(e),
        };
        remove_if_there(repo, FileKind::Pack, &name)?;
        report.packs_deleted += 1;
        report.bytes_deleted += size;
    }
    remove_if_there(repo, FileKind::Mark, &id.to_hex())
}

/// The packs an index file lists; none if it is gone.
fn read_if_there(repo: &Repository, file: &IndexId) -> Result<Vec<IndexPack>> {
    match repo.read_index_file(&file.to_hex()) {
        Ok(f) => Ok(f.packs),
        Err(Error::Missing(_)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn remove_if_there(repo: &Repository, kind: FileKind, name: &str) -> Result<()> {
    match repo.backend().remove(kind, name) {
        Err(Error::Missing(_)) => Ok(()),
        other => other,
    }
}
