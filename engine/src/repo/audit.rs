//! The audit log: a sealed record in `audit/` for each command that changed
//! the repository, or restored or drilled from it — when, on which host,
//! by which user, which snapshots, and how it ended (SPEC.md §18).
//!
//! Records are created once and never removed (prune leaves them alone).
//! Each names the records no other record named yet when it was written,
//! its *heads*, so the records form a chain: [`verify`] finds a record
//! that is named but missing, a record dated before one it names, and a
//! snapshot that no record accounts for.
//!
//! ```
//! use cairn_engine::{audit, backend::LocalBackend, InitOptions, Repository};
//! use cairn_format::{key::KdfParams, Timestamp};
//! let dir = tempfile::tempdir().unwrap();
//! let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
//! let repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
//! audit::record(&repo, Timestamp::now(), "init", &[], "ok").unwrap();
//! audit::record(&repo, Timestamp::now(), "unlock", &[], "ok").unwrap();
//! let report = audit::verify(&repo).unwrap();
//! assert_eq!(report.records, 2);
//! assert!(report.is_intact());
//! ```

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::repo::lease::MAX_CLOCK_SKEW;
use crate::repository::Repository;
use crate::sysinfo;
use cairn_format::audit::AuditRecord;
use cairn_format::keyring::Role;
use cairn_format::{AuditId, SnapshotId, Timestamp};
use std::collections::HashSet;

/// Audit records with their IDs, oldest first.
pub type Records = Vec<(AuditId, AuditRecord)>;

/// Writes a record of `command` (as `backup` or `key add`), which ended at
/// `time` with `outcome` (`ok`, or what went wrong) and involved
/// `snapshots`, by this host and user, naming the current heads.
pub fn record(
    repo: &Repository,
    time: Timestamp,
    command: &str,
    snapshots: &[SnapshotId],
    outcome: &str,
) -> Result<AuditId> {
    // A put-only key cannot read the records: its record names none, and
    // starts a chain of its own (SPEC §18.2).
    let records = match repo.role() {
        Role::Full => records(repo)?.0,
        Role::PutOnly => Vec::new(),
    };
    let mut record = AuditRecord {
        version: 1,
        time,
        hostname: sysinfo::hostname(),
        username: sysinfo::username(),
        command: command.to_string(),
        snapshots: snapshots.to_vec(),
        outcome: outcome.to_string(),
        previous: heads(&records),
    };
    record.fit();
    Ok(AuditId(
        repo.store_file(FileKind::Audit, &record.seal(repo.keys()))?,
    ))
}

/// Like [`record`], now, for a command whose own outcome must not depend
/// on it: what went wrong, as a warning to show, if the record could not
/// be written.
pub fn try_record(
    repo: &Repository,
    command: &str,
    snapshots: &[SnapshotId],
    outcome: &str,
) -> Option<String> {
    record(repo, Timestamp::now(), command, snapshots, outcome)
        .err()
        .map(|e| format!("{command} is not recorded in the audit log: {e}"))
}

/// Every record that can be read, oldest first, and the errors for those
/// that cannot.
pub fn records(repo: &Repository) -> Result<(Records, Vec<Error>)> {
    let (read, errors) = repo.read_all(FileKind::Audit, AuditRecord::open, |r| r.time)?;
    let records = read.into_iter().map(|(id, r)| (AuditId(id), r));
    Ok((records.collect(), errors))
}

/// The records of `records` that no other names as previous.
fn heads(records: &Records) -> Vec<AuditId> {
    let named: HashSet<AuditId> = records
        .iter()
        .flat_map(|(_, r)| r.previous.iter().copied())
        .collect();
    records
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !named.contains(id))
        .collect()
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Records read.
    pub records: usize,
    /// Records named as previous by another (the second) that are not there.
    pub missing: Vec<(AuditId, AuditId)>,
    /// Records dated before a record they name as previous, by more than
    /// clocks may differ ([`MAX_CLOCK_SKEW`]).
    pub out_of_order: Vec<AuditId>,
    /// Records that cannot be read.
    pub unreadable: Vec<Error>,
    /// Snapshots dated after the first record that no record names.
    pub unaccounted: Vec<SnapshotId>,
    /// Whether there is no record although there are snapshots: a log
    /// deleted whole, or a repository from before the audit log that no
    /// command has changed since.
    pub empty: bool,
}

impl AuditReport {
    /// True when nothing is missing, out of order, unreadable or unaccounted for.
    pub fn is_intact(&self) -> bool {
        self.missing.is_empty()
            && self.out_of_order.is_empty()
            && self.unreadable.is_empty()
            && self.unaccounted.is_empty()
            && !self.empty
    }
}

/// Checks the audit log of `repo`: every record a record names is there and
/// not newer, every record reads, every snapshot taken since the first
/// record is named by one (a deleted newest record shows this way when
/// the snapshots its command made remain), and a repository with
/// snapshots has records.
pub fn verify(repo: &Repository) -> Result<AuditReport> {
    let (records, unreadable) = records(repo)?;
    let by_id: std::collections::HashMap<AuditId, &AuditRecord> =
        records.iter().map(|(id, r)| (*id, r)).collect();
    let mut report = AuditReport {
        records: records.len(),
        unreadable,
        ..Default::default()
    };
    for (id, r) in &records {
        for previous in &r.previous {
            match by_id.get(previous) {
                None => report.missing.push((*previous, *id)),
                Some(p) if p.time.secs > r.time.secs + MAX_CLOCK_SKEW.as_secs() as i64 => {
                    report.out_of_order.push(*id)
                }
                Some(_) => {}
            }
        }
    }
    let (snapshots, _) = repo.readable_snapshots()?;
    match records.first() {
        None => report.empty = !snapshots.is_empty(),
        Some((_, first)) => {
            let named: HashSet<SnapshotId> = records
                .iter()
                .flat_map(|(_, r)| r.snapshots.iter().copied())
                .collect();
            report.unaccounted = snapshots
                .into_iter()
                .filter(|(id, s)| s.time >= first.time && !named.contains(id))
                .map(|(id, _)| id)
                .collect();
        }
    }
    Ok(report)
}
