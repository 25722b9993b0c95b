//! PostgreSQL continuous archiving and point-in-time recovery in a cairn
//! repository (SPEC.md §19): base backups taken through the replication
//! protocol ([`base_backup`]), the write-ahead log archived file by file
//! ([`cairn_engine::wal`]), recovery to a time, an LSN or the end of the
//! archive ([`restore`]), and WAL retention and gap checks ([`retention`]).
//!
//! A base backup is a snapshot holding one file, `base.tar` (the tar stream
//! of `pg_basebackup`), whose tags record where in the log it starts and
//! stops: `pg.cluster=NAME`, `pg.timeline=N`, `pg.start-lsn=X/Y`,
//! `pg.stop-lsn=X/Y`, `pg.segment-size=BYTES` and `pg.stop-time=TIME`.

pub mod base_backup;
pub mod restore;
pub mod retention;

use cairn_engine::{Error, Repository, Result};
use cairn_format::snapshot::Snapshot;
use cairn_format::wal::{format_lsn, parse_lsn, valid_segment_size, Position};
use cairn_format::{SnapshotId, Timestamp};
use std::collections::BTreeMap;

/// The file a base backup's snapshot holds.
pub const BASE_FILE: &str = "base.tar";

/// A base backup, as its snapshot's tags describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseBackup {
    /// Its snapshot.
    pub id: SnapshotId,
    /// The cluster, by the name its WAL is archived under.
    pub cluster: String,
    /// The timeline it started on.
    pub timeline: u32,
    /// Where replay must start: the backup's checkpoint's redo position.
    pub start_lsn: u64,
    /// Where the copy is consistent: recovery must replay at least to here.
    pub stop_lsn: u64,
    /// The cluster's WAL segment size, in bytes.
    pub segment_size: u64,
    /// When the backup started.
    pub start_time: Timestamp,
    /// When it was complete (by the clock of the host that took it): the
    /// earliest time it can be recovered to.
    pub stop_time: Timestamp,
}

impl BaseBackup {
    /// The tags that record it in its snapshot.
    pub fn tags(&self) -> Vec<String> {
        vec![
            format!("pg.cluster={}", self.cluster),
            format!("pg.timeline={}", self.timeline),
            format!("pg.start-lsn={}", format_lsn(self.start_lsn)),
            format!("pg.stop-lsn={}", format_lsn(self.stop_lsn)),
            format!("pg.segment-size={}", self.segment_size),
            format!("pg.stop-time={}", time_text(self.stop_time)),
        ]
    }

    /// The base backup a snapshot holds; `None` for any other snapshot
    /// (or one whose tags were changed so that they no longer say).
    pub fn of(id: SnapshotId, snapshot: &Snapshot) -> Option<BaseBackup> {
        let tag = |key: &str| {
            let prefix = format!("pg.{key}=");
            snapshot.tags.iter().find_map(|t| t.strip_prefix(&prefix))
        };
        let stop_time: jiff::Timestamp = tag("stop-time")?.parse().ok()?;
        let segment_size = tag("segment-size")?.parse().ok()?;
        Some(BaseBackup {
            id,
            cluster: tag("cluster")?.to_string(),
            timeline: tag("timeline")?.parse().ok()?,
            start_lsn: parse_lsn(tag("start-lsn")?)?,
            stop_lsn: parse_lsn(tag("stop-lsn")?)?,
            segment_size: Some(segment_size).filter(|s| valid_segment_size(*s))?,
            start_time: snapshot.time,
            stop_time: Timestamp {
                secs: stop_time.as_second(),
                nanos: stop_time.subsec_nanosecond() as u32,
            },
        })
    }

    /// The first WAL segment recovery from it needs.
    pub fn start(&self) -> Position {
        Position::of_lsn(self.start_lsn, self.segment_size)
    }

    /// The segment holding its stop position: recovery needs every segment
    /// up to this one.
    pub fn stop(&self) -> Position {
        Position::of_lsn(self.stop_lsn, self.segment_size)
    }

    /// PostgreSQL's name for the segment at `position` on this backup's timeline.
    pub fn segment_name(&self, position: Position) -> String {
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline, position.log, position.seg
        )
    }
}

/// A time as RFC 3339 in UTC.
pub fn time_text(t: Timestamp) -> String {
    jiff::Timestamp::new(t.secs, t.nanos as i32)
        .map_or_else(|_| format!("{}s", t.secs), |t| t.to_string())
}

/// The base backups of `cluster` in the repository, oldest first (by start position).
pub fn base_backups(repo: &Repository, cluster: &str) -> Result<Vec<BaseBackup>> {
    Ok(by_cluster(&repo.snapshots()?)
        .remove(cluster)
        .unwrap_or_default())
}

/// The base backups among `snapshots`, by cluster, each cluster's oldest
/// first (by start position).
pub fn by_cluster(snapshots: &[(SnapshotId, Snapshot)]) -> BTreeMap<String, Vec<BaseBackup>> {
    let mut clusters: BTreeMap<String, Vec<BaseBackup>> = BTreeMap::new();
    for b in snapshots
        .iter()
        .filter_map(|(id, s)| BaseBackup::of(*id, s))
    {
        clusters.entry(b.cluster.clone()).or_default().push(b);
    }
    for backups in clusters.values_mut() {
        backups.sort_by_key(|b| (b.start_lsn, b.start_time));
    }
    clusters
}

/// Copies into `dst` the archived WAL `dst` lacks of every cluster that has
/// a base backup among `snapshots` (those a copy just took there), so that
/// the copies recover to the same points; returns how many files.
pub fn copy_wal(
    src: &Repository,
    dst: &Repository,
    snapshots: &[(SnapshotId, Snapshot)],
) -> Result<usize> {
    let mut copied = 0;
    for cluster in by_cluster(snapshots).keys() {
        copied += cairn_engine::wal::copy(src, dst, cluster)?;
    }
    Ok(copied)
}

/// The error for a cluster with no base backup.
fn no_base_backup(cluster: &str) -> Error {
    Error::Invalid(format!(
        "the repository holds no base backup of cluster {cluster:?}: take one with `cairn pg base-backup`"
    ))
}
