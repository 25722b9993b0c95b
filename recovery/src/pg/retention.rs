//! What WAL the archive must keep: every file from the start of the oldest
//! base backup on, so that each kept base backup recovers to any later
//! point; and the gaps that would stop a recovery part way.

use super::BaseBackup;
use cairn_engine::{wal, Repository, Result};
use cairn_format::wal::{Position, WalKind, WalName};
use std::collections::BTreeSet;

/// Removes the archived WAL of `cluster` that lies before the start of the
/// oldest of its base `backups`; returns the names removed. Timeline
/// history files are kept, and nothing is removed while the cluster has no
/// base backup.
pub fn expire(repo: &Repository, cluster: &str, backups: &[BaseBackup]) -> Result<Vec<String>> {
    let Some(oldest) = backups.iter().map(BaseBackup::start).min() else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for name in wal::list(repo, cluster)? {
        let before = WalName::parse(&name)
            .and_then(|n| n.position())
            .is_some_and(|p| p < oldest);
        // What storage still keeps from deletion waits for a later run.
        if before && !wal::retained(repo, cluster, &name)? {
            wal::remove(repo, cluster, &name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// A run of segments missing from the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The first missing segment's position.
    pub first: Position,
    /// The last one's.
    pub last: Position,
    /// The base backups that cannot be recovered past the gap (or at all,
    /// when it lies before their stop position).
    pub backups: Vec<cairn_format::SnapshotId>,
}

/// The gaps in `cluster`'s archived WAL between the start of the oldest of
/// its base `backups` and the newest segment archived (or the newest stop
/// position, when that is later): where a recovery would stop short.
pub fn gaps(repo: &Repository, cluster: &str, backups: &[BaseBackup]) -> Result<Vec<Gap>> {
    let Some(first) = backups.iter().map(BaseBackup::start).min() else {
        return Ok(Vec::new());
    };
    let segment_size = backups[0].segment_size;
    let names = wal::list(repo, cluster)?;
    let present: BTreeSet<Position> = names
        .iter()
        .filter_map(|n| match WalName::parse(n)?.kind {
            WalKind::Segment(p) => Some(p),
            _ => None,
        })
        .collect();
    let newest_stop = backups.iter().map(BaseBackup::stop).max().unwrap_or(first);
    let end = present.last().copied().unwrap_or(first).max(newest_stop);
    let mut found: Vec<Gap> = Vec::new();
    let mut at = first;
    while at <= end {
        if !present.contains(&at) {
            match found.last_mut() {
                Some(g) if g.last.next(segment_size) == at => g.last = at,
                _ => found.push(Gap {
                    first: at,
                    last: at,
                    backups: Vec::new(),
                }),
            }
        }
        at = at.next(segment_size);
    }
    for gap in &mut found {
        gap.backups = backups
            .iter()
            .filter(|b| b.start() <= gap.last)
            .map(|b| b.id)
            .collect();
    }
    Ok(found)
}
