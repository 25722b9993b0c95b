//! Key rotation (SPEC.md §3.7): a new key epoch, and the rewrite that
//! leaves nothing sealed in the older ones.
//!
//! [`rotate`] starts epoch *n + 1*: it writes a key file holding every
//! epoch for the password in use, replaces the config with one that names
//! the new epoch (one atomic step), then removes the key file it was opened
//! with. New objects are sealed in the new epoch; older ones stay readable
//! with the new key file. Every other key file then stops opening the
//! repository (it holds no secret of the new epoch), with an error that
//! says so. A crash at any step leaves a password that opens.
//!
//! [`rewrite`] then re-seals everything sealed in an older epoch: packs
//! through a prune that repacks them, snapshots, journal entries and audit
//! records as new files (their names are hashes of their bytes), WAL files
//! in place. It checks, with a key holding the newest epoch alone, that
//! every object opens, and only then replaces the key file with one that
//! holds nothing else: after that, the retired secrets open nothing in the
//! repository. Each step can be repeated after a crash; what a killed
//! rewrite wrote twice is recognised by its content.
//!
//! The ID and chunker keys do not rotate: blob IDs and chunk boundaries
//! derive from them, so changing them would mean chunking every file again
//! and storing everything twice until the old snapshots go.
//!
//! ```
//! use cairn_engine::{backend::LocalBackend, rotate, InitOptions, Repository};
//! use cairn_format::key::KdfParams;
//! let dir = tempfile::tempdir().unwrap();
//! let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
//! let mut repo = Repository::init(LocalBackend::new(dir.path()), b"pw", &opts).unwrap();
//! let rotation = rotate::rotate(&mut repo, b"pw").unwrap();
//! assert_eq!(rotation.epoch, 1);
//! let rewrite = rotate::rewrite(&mut repo, b"pw").unwrap();
//! assert!(rewrite.remaining.is_empty());
//! assert!(Repository::open(LocalBackend::new(dir.path()), b"pw").is_ok());
//! ```

use crate::audit;
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::keys::{self, read_kdf, write_key};
use crate::prune::{prune, PruneOptions, PruneReport};
use crate::repository::Repository;
use crate::session::{self, Liveness};
use crate::{journal, wal};
use cairn_format::audit::AuditRecord;
use cairn_format::config::Config;
use cairn_format::crypto::MasterKeys;
use cairn_format::error::Result as FormatResult;
use cairn_format::journal::JournalEntry;
use cairn_format::keyring::{sealed_epoch, Keyring};
use cairn_format::lock::Operation;
use cairn_format::snapshot::Snapshot;
use cairn_format::{AuditId, KeyId, SnapshotId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    /// The epoch new objects are sealed in from now on.
    pub epoch: u32,
    /// The key file that replaced the one in use.
    pub key: KeyId,
    /// The other key files: made before the rotation, they no longer open
    /// the repository.
    pub stale_keys: Vec<KeyId>,
}

/// Starts a new key epoch; `password` must be the one the repository was
/// opened with (it seals the new key file). Afterwards `repo` seals in the
/// new epoch.
pub fn rotate(repo: &mut Repository, password: &[u8]) -> Result<Rotation> {
    repo.full_key("rotate keys")?;
    let keyring = keys::keyring(repo)?;
    session::refuse_beside_maintenance(&session::others(repo, None)?.0)?;
    let old = key_in_use(repo)?;
    let kdf = read_kdf(repo, &old)?.0;
    let rotated = with_keyring(repo.keys(), keyring.rotated());
    let epoch = keyring.newest() + 1;
    // First the key that holds the new epoch, then the config that names
    // it: in between, the old key still opens the repository.
    let (new, info) = write_key(repo, &rotated, password, kdf)?;
    let config = Config {
        epoch: Some(epoch),
        ..repo.config().clone()
    };
    repo.backend()
        .replace(FileKind::Config, "config", &config.seal(&rotated))?;
    remove_replaced(repo, &old, &new)?;
    repo.set_keys(rotated, config, (new, info));
    let stale_keys = repo.key_ids()?.into_iter().filter(|k| *k != new).collect();
    Ok(Rotation {
        epoch,
        key: new,
        stale_keys,
    })
}

/// What [`rewrite`] did.
#[derive(Debug, Default)]
pub struct Rewrite {
    /// The prune that re-sealed the packs.
    pub prune: PruneReport,
    /// Snapshots re-sealed: the old ID and the new.
    pub snapshots: Vec<(SnapshotId, SnapshotId)>,
    /// Journal entries re-sealed.
    pub journal: usize,
    /// Audit records re-sealed.
    pub audit: usize,
    /// WAL files re-sealed.
    pub wal: usize,
    /// Lock records of sessions that are over, sealed in a retired epoch, removed.
    pub locks: usize,
    /// What a key holding the newest epoch alone cannot open. When empty,
    /// the key file in use now holds that epoch alone; otherwise it still
    /// holds them all, and the rewrite is to be run again.
    pub remaining: Vec<String>,
    /// The key file in use afterwards.
    pub key: Option<KeyId>,
    /// The other key files. Those made before the rotation no longer open
    /// the repository; those added since hold the newest epoch and every
    /// retired one: best replaced by new ones.
    pub other_keys: Vec<KeyId>,
}

/// Re-seals everything sealed in an epoch older than the current one (see
/// the module documentation); `password` is the one the repository was
/// opened with. Refuses to start while another session runs: what it wrote
/// would be sealed in an old epoch.
pub fn rewrite(repo: &mut Repository, password: &[u8]) -> Result<Rewrite> {
    repo.full_key("rewrite keys")?;
    let keyring = keys::keyring(repo)?.clone();
    let current = keyring.current();
    if let Some(busy) = running(repo, None)? {
        return Err(Error::Invalid(format!(
            "{busy}: run the rewrite once it has ended"
        )));
    }
    let mut report = Rewrite {
        prune: prune(
            repo,
            &PruneOptions {
                reseal_before: Some(current),
                ..Default::default()
            },
        )?,
        ..Default::default()
    };
    // As a repair: prunes and repairs refuse to run beside it.
    let session = repo.start_session(Operation::Repair)?;
    let me = session.id();
    let snapshots = reseal_files(
        repo,
        FileKind::Snapshot,
        current,
        Snapshot::open,
        |s, keys| s.seal(keys),
    )?;
    let renamed: HashMap<SnapshotId, SnapshotId> = snapshots
        .iter()
        .map(|(old, new)| (SnapshotId(*old), SnapshotId(*new)))
        .collect();
    session.check_fresh()?;
    report.audit = reseal_audit(repo, current, &renamed)?;
    report.journal = remove_all(
        repo,
        FileKind::Journal,
        &reseal_files(
            repo,
            FileKind::Journal,
            current,
            JournalEntry::open,
            |e, keys| e.seal(keys),
        )?,
    )?;
    report.wal = wal::reseal(repo, current)?;
    // The old snapshots go last: until then a repeated rewrite finds what
    // the audit records named.
    session.check_fresh()?;
    remove_all(repo, FileKind::Snapshot, &snapshots)?;
    report.snapshots = renamed.into_iter().collect();
    report.snapshots.sort();
    session.end()?;
    report.locks = remove_retired_locks(repo, current)?;

    let newest = with_keyring(repo.keys(), keyring.newest_only());
    report.remaining = unopenable(repo, &newest)?;
    // A command that began meanwhile (one that takes no session cannot be
    // seen) may still write in a retired epoch.
    report.remaining.extend(running(repo, Some(me))?);
    let in_use = key_in_use(repo)?;
    if report.remaining.is_empty() && keyring.epochs().len() > 1 {
        let kdf = read_kdf(repo, &in_use)?.0;
        let (new, info) = write_key(repo, &newest, password, kdf)?;
        remove_replaced(repo, &in_use, &new)?;
        let config = repo.config().clone();
        repo.set_keys(newest, config, (new, info));
    }
    let in_use = key_in_use(repo)?;
    if report.remaining.is_empty() {
        remove_leftover_keys(repo, &in_use, password, current)?;
    }
    report.key = Some(in_use);
    report.other_keys = repo
        .key_ids()?
        .into_iter()
        .filter(|k| *k != in_use)
        .collect();
    Ok(report)
}

/// A session other than `me` that may still be running, described.
fn running(repo: &Repository, me: Option<[u8; 16]>) -> Result<Option<String>> {
    let (others, _) = session::others(repo, me)?;
    Ok(others
        .iter()
        .find(|s| s.liveness == Liveness::Running)
        .map(|s| {
            format!(
                "session {} ({:?} on host {}, pid {}) is running, and may write in a retired epoch \
                 (`cairn unlock --session {}` if it is gone)",
                s.id_hex(),
                s.latest.operation,
                s.latest.hostname,
                s.latest.pid,
                s.id_hex()
            )
        }))
}

/// Removes the key files other than `in_use` that `password` opens and that
/// hold a retired epoch: what a rewrite killed between writing its key file
/// and removing the one it replaces leaves behind.
fn remove_leftover_keys(
    repo: &Repository,
    in_use: &KeyId,
    password: &[u8],
    current: u32,
) -> Result<()> {
    for id in repo.key_ids()?.into_iter().filter(|k| k != in_use) {
        let Ok(bytes) = repo.read_verified(FileKind::Key, &id.to_hex()) else {
            continue;
        };
        let Ok((keys, _)) = cairn_format::key::open_key_file(&bytes, password) else {
            continue;
        };
        let retired = keys
            .keyring
            .as_ref()
            .is_some_and(|k| k.epochs().iter().any(|e| e.epoch < current));
        if retired {
            remove_if_there(repo, FileKind::Key, &id.to_hex())?;
        }
    }
    Ok(())
}

/// `keys` with another keyring.
fn with_keyring(keys: &MasterKeys, keyring: Keyring) -> MasterKeys {
    MasterKeys {
        keyring: Some(Arc::new(keyring)),
        ..keys.clone()
    }
}

fn key_in_use(repo: &Repository) -> Result<KeyId> {
    repo.key_id()
        .ok_or_else(|| Error::Invalid("the key in use is not known".into()))
}

/// Removes key file `old` once `new` replaces it.
fn remove_replaced(repo: &Repository, old: &KeyId, new: &KeyId) -> Result<()> {
    repo.backend()
        .remove(FileKind::Key, &old.to_hex())
        .map_err(|e| {
            Error::Invalid(format!(
                "key {new} was added, but the key it replaces, {old}, could not be removed: {e}"
            ))
        })
}

/// The files of `kind` read and opened, split into those sealed in an
/// epoch before `current` and the others.
type Split<T> = (Vec<([u8; 32], T)>, Vec<([u8; 32], T)>);

fn split_by_epoch<T>(
    repo: &Repository,
    kind: FileKind,
    current: u32,
    open: fn(&[u8], &MasterKeys) -> FormatResult<T>,
) -> Result<Split<T>> {
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for name in repo.backend().list(kind)? {
        let bytes = match repo.read_verified(kind, &name) {
            Ok(b) => b,
            // Removed since the listing (a repeated rewrite, a forget).
            Err(Error::Missing(_)) => continue,
            Err(e) => return Err(e),
        };
        let value = open(&bytes, repo.keys())
            .map_err(|e| Error::format(format!("{} {name}", kind.name()), e))?;
        let id = cairn_format::id::storage_hash(&bytes);
        match sealed_epoch(&bytes).is_some_and(|e| e >= current) {
            true => new.push((id, value)),
            false => old.push((id, value)),
        }
    }
    Ok((old, new))
}

/// Stores each file of `kind` sealed before `current` again, sealed now,
/// unless a file with the same content is already sealed now (a rewrite
/// killed after storing it); returns `(old ID, new ID)` for each. The old
/// files stay.
fn reseal_files<T: PartialEq>(
    repo: &Repository,
    kind: FileKind,
    current: u32,
    open: fn(&[u8], &MasterKeys) -> FormatResult<T>,
    seal: impl Fn(&T, &MasterKeys) -> Vec<u8>,
) -> Result<Vec<([u8; 32], [u8; 32])>> {
    let (old, mut new) = split_by_epoch(repo, kind, current, open)?;
    let mut pairs = Vec::new();
    for (id, value) in old {
        let twin = new.iter().find(|(_, v)| *v == value).map(|(id, _)| *id);
        let to = match twin {
            Some(to) => to,
            None => {
                let to = repo.store_file(kind, &seal(&value, repo.keys()))?;
                new.push((to, value));
                to
            }
        };
        pairs.push((id, to));
    }
    Ok(pairs)
}

/// Removes the old file of each pair; returns how many pairs there were.
fn remove_all(repo: &Repository, kind: FileKind, pairs: &[([u8; 32], [u8; 32])]) -> Result<usize> {
    for (old, _) in pairs {
        remove_if_there(repo, kind, &hex::encode(old))?;
    }
    Ok(pairs.len())
}

fn remove_if_there(repo: &Repository, kind: FileKind, name: &str) -> Result<()> {
    match repo.backend().remove(kind, name) {
        Err(Error::Missing(_)) => Ok(()),
        other => other,
    }
}

/// Re-seals the audit records sealed before `current`, keeping their chain:
/// each new record names the new records of those it named, and the new
/// IDs of the snapshots `renamed`; a record sealed now that names a record
/// or snapshot so renamed is written again too. Records are written oldest
/// first (each after those it names) and the replaced ones removed newest
/// first, so that a repeated rewrite still finds every remaining record's
/// predecessors. Returns how many were replaced.
fn reseal_audit(
    repo: &Repository,
    current: u32,
    renamed: &HashMap<SnapshotId, SnapshotId>,
) -> Result<usize> {
    let (old, new) = split_by_epoch(repo, FileKind::Audit, current, AuditRecord::open)?;
    let old_ids: HashSet<[u8; 32]> = old.iter().map(|(id, _)| *id).collect();
    let mut sealed_now: Vec<([u8; 32], AuditRecord)> = new.clone();
    let mut pending: Vec<([u8; 32], AuditRecord)> = old.into_iter().chain(new).collect();
    let present: HashSet<AuditId> = pending.iter().map(|(id, _)| AuditId(*id)).collect();
    let mut moved: HashMap<AuditId, AuditId> = HashMap::new();
    let mut replaced = Vec::new();
    while !pending.is_empty() {
        // Those whose predecessors are all settled (or not there at all).
        let (ready, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, r)| {
            r.previous
                .iter()
                .all(|p| moved.contains_key(p) || !present.contains(p))
        });
        if ready.is_empty() {
            return Err(Error::Invalid(
                "the audit records name each other in a loop: `cairn audit` shows them".into(),
            ));
        }
        for (id, record) in ready {
            let rewritten = AuditRecord {
                previous: record
                    .previous
                    .iter()
                    .map(|p| *moved.get(p).unwrap_or(p))
                    .collect(),
                snapshots: record
                    .snapshots
                    .iter()
                    .map(|s| *renamed.get(s).unwrap_or(s))
                    .collect(),
                ..record.clone()
            };
            if !old_ids.contains(&id) && rewritten == record {
                moved.insert(AuditId(id), AuditId(id));
                continue;
            }
            let twin = sealed_now
                .iter()
                .find(|(other, r)| *other != id && *r == rewritten)
                .map(|(other, _)| *other);
            let to = match twin {
                Some(to) => to,
                None => {
                    let to = repo.store_file(FileKind::Audit, &rewritten.seal(repo.keys()))?;
                    sealed_now.push((to, rewritten));
                    to
                }
            };
            moved.insert(AuditId(id), AuditId(to));
            replaced.push(id);
        }
        pending = waiting;
    }
    for id in replaced.iter().rev() {
        remove_if_there(repo, FileKind::Audit, &hex::encode(id))?;
    }
    Ok(replaced.len())
}

/// Removes the lock records sealed before `current` of sessions that are
/// over (or gone); returns how many.
fn remove_retired_locks(repo: &Repository, current: u32) -> Result<usize> {
    let (sessions, _) = session::sessions(repo)?;
    let mut removed = 0;
    for s in sessions.iter().filter(|s| s.liveness != Liveness::Running) {
        for id in &s.records {
            let bytes = match repo.read_verified(FileKind::Lock, &id.to_hex()) {
                Ok(b) => b,
                Err(Error::Missing(_)) => continue,
                Err(e) => return Err(e),
            };
            if sealed_epoch(&bytes).is_none_or(|e| e < current) {
                remove_if_there(repo, FileKind::Lock, &id.to_hex())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// What `keys` cannot open in the repository: every index file, snapshot,
/// journal entry, audit record, WAL file, lock record, prune mark and pack
/// header is tried.
fn unopenable(repo: &Repository, keys: &MasterKeys) -> Result<Vec<String>> {
    let mut seen = repo.seen_with(keys.clone());
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = seen.load_index() {
        problems.push(e.to_string());
    }
    problems.extend(seen.marks().unreadable.iter().map(|(_, e)| e.to_string()));
    problems.extend(seen.readable_snapshots()?.1.iter().map(Error::to_string));
    problems.extend(journal::entries(&seen)?.1.iter().map(Error::to_string));
    problems.extend(audit::records(&seen)?.1.iter().map(Error::to_string));
    problems.extend(wal::verify(&seen)?.1.iter().map(Error::to_string));
    let (_, locks) = session::sessions(&seen)?;
    problems.extend(locks.iter().map(|u| u.error.to_string()));
    for name in seen.backend().list(FileKind::Pack)? {
        let id = cairn_format::PackId::from_hex(&name).expect("backends list only hex IDs");
        if let Err(e) = seen.read_pack_header(&id) {
            problems.push(e.to_string());
        }
    }
    Ok(problems)
}
