//! Choosing snapshots by host, tags and paths, and grouping them.
//!
//! ```
//! use cairn_engine::select::{GroupBy, SnapshotFilter};
//! let filter = SnapshotFilter {
//!     hosts: vec!["web1".into()],
//!     // tagged both `daily` and `db`, or tagged `manual`
//!     tags: vec![vec!["daily".into(), "db".into()], vec!["manual".into()]],
//!     paths: vec![],
//! };
//! assert!(!filter.is_empty());
//! assert_eq!("host,tags".parse::<GroupBy>().unwrap(), GroupBy { host: true, paths: false, tags: true });
//! ```

use crate::error::{Error, Result};
use crate::repository::SnapshotList;
use cairn_format::snapshot::Snapshot;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Which snapshots to keep. Every non-empty field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// The snapshot's host name is one of these.
    pub hosts: Vec<String>,
    /// Alternatives: the snapshot has every tag of at least one of these
    /// lists. An empty list matches snapshots without tags.
    pub tags: Vec<Vec<String>>,
    /// The snapshot's paths include every one of these absolute paths
    /// (compared as paths: `/a/b/` is `/a/b`).
    pub paths: Vec<PathBuf>,
}

impl SnapshotFilter {
    /// True when the filter lets every snapshot through.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.tags.is_empty() && self.paths.is_empty()
    }

    /// True when `snapshot` passes the filter.
    pub fn matches(&self, snapshot: &Snapshot) -> bool {
        let host = self.hosts.is_empty() || self.hosts.contains(&snapshot.hostname);
        let tags = self.tags.is_empty()
            || self.tags.iter().any(|all| {
                if all.is_empty() {
                    snapshot.tags.is_empty()
                } else {
                    all.iter().all(|t| snapshot.tags.contains(t))
                }
            });
        let paths = self.paths.iter().all(|wanted| {
            snapshot
                .paths
                .iter()
                .any(|p| Path::new(OsStr::from_bytes(p)) == wanted)
        });
        host && tags && paths
    }

    /// The snapshots of `list` that pass, in the same order.
    pub fn apply(&self, list: SnapshotList) -> SnapshotList {
        list.into_iter().filter(|(_, s)| self.matches(s)).collect()
    }
}

/// Which snapshot fields make up a group; all false puts every snapshot in
/// one group. Parsed from a comma list of `host`, `paths` and `tags`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the set of backed-up paths.
    pub paths: bool,
    /// Group by the set of tags.
    pub tags: bool,
}

impl FromStr for GroupBy {
    type Err = Error;

    fn from_str(text: &str) -> Result<GroupBy> {
        let mut by = GroupBy::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "host" => by.host = true,
                "paths" => by.paths = true,
                "tags" => by.tags = true,
                _ => {
                    return Err(Error::Invalid(format!(
                        "cannot group by {word:?}: use a comma list of host, paths and tags"
                    )))
                }
            }
        }
        Ok(by)
    }
}

/// What the snapshots of one group share; `None` for a field not grouped by.
/// Paths and tags are sorted, each once.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// The host name.
    pub hostname: Option<String>,
    /// The backed-up paths.
    pub paths: Option<Vec<Vec<u8>>>,
    /// The tags.
    pub tags: Option<Vec<String>>,
}

impl GroupKey {
    /// The key of `snapshot` under `by`.
    pub fn of(snapshot: &Snapshot, by: GroupBy) -> GroupKey {
        fn set<T: Ord + Clone>(items: &[T]) -> Vec<T> {
            let mut v = items.to_vec();
            v.sort();
            v.dedup();
            v
        }
        GroupKey {
            hostname: by.host.then(|| snapshot.hostname.clone()),
            paths: by.paths.then(|| set(&snapshot.paths)),
            tags: by.tags.then(|| set(&snapshot.tags)),
        }
    }
}

/// Splits `snapshots` into groups by `by`: groups ordered by key, the
/// snapshots of each ordered by time (then ID), oldest first. No snapshots,
/// no groups.
pub fn group(snapshots: SnapshotList, by: GroupBy) -> Vec<(GroupKey, SnapshotList)> {
    let mut groups: BTreeMap<GroupKey, SnapshotList> = BTreeMap::new();
    for (id, snapshot) in snapshots {
        groups
            .entry(GroupKey::of(&snapshot, by))
            .or_default()
            .push((id, snapshot));
    }
    groups
        .into_iter()
        .map(|(key, mut list)| {
            list.sort_by_key(|(id, s)| (s.time, *id));
            (key, list)
        })
        .collect()
}

/// Keeps only the `n` newest snapshots of each group (groups are ordered
/// oldest first, as [`group`] returns them).
pub fn keep_latest(groups: &mut [(GroupKey, SnapshotList)], n: usize) {
    for (_, list) in groups {
        let extra = list.len().saturating_sub(n);
        list.drain(..extra);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cairn_format::snapshot::Summary;
    use cairn_format::{BlobId, SnapshotId, Timestamp};

    fn snap(secs: i64, host: &str, paths: &[&str], tags: &[&str]) -> (SnapshotId, Snapshot) {
        snapshot(secs as u8, Timestamp { secs, nanos: 0 }, host, paths, tags)
    }

    /// A snapshot with ID bytes `n`, for tests of what selects snapshots.
    pub(crate) fn snapshot(
        n: u8,
        time: Timestamp,
        host: &str,
        paths: &[&str],
        tags: &[&str],
    ) -> (SnapshotId, Snapshot) {
        let snapshot = Snapshot {
            version: 1,
            time,
            hostname: host.into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            paths: paths.iter().map(|p| p.as_bytes().to_vec()).collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tree: BlobId([0; 32]),
            parent: None,
            summary: Summary::default(),
            skipped: vec![],
            program: "test".into(),
        };
        (SnapshotId([n; 32]), snapshot)
    }

    #[test]
    fn grouping_and_latest() {
        let list = vec![
            snap(3, "b", &["/x"], &["t"]),
            snap(1, "a", &["/x", "/y"], &[]),
            snap(2, "a", &["/y", "/x"], &["t"]),
            snap(4, "a", &["/x"], &[]),
        ];
        let by_host = group(list.clone(), "host".parse().unwrap());
        let hosts: Vec<_> = by_host
            .iter()
            .map(|(k, l)| (k.hostname.clone().unwrap(), l.len()))
            .collect();
        assert_eq!(hosts, [("a".to_string(), 3), ("b".to_string(), 1)]);
        let times: Vec<_> = by_host[0].1.iter().map(|(_, s)| s.time.secs).collect();
        assert_eq!(times, [1, 2, 4]);

        let by_paths = group(list.clone(), "paths".parse().unwrap());
        assert_eq!(by_paths.len(), 2, "path order does not matter");
        assert!(by_paths.iter().all(|(k, _)| k.hostname.is_none()));

        let mut all = group(list.clone(), GroupBy::default());
        assert_eq!(all.len(), 1);
        keep_latest(&mut all, 2);
        let times: Vec<_> = all[0].1.iter().map(|(_, s)| s.time.secs).collect();
        assert_eq!(times, [3, 4]);

        assert!(group(vec![], GroupBy::default()).is_empty());
        assert!("host,colour".parse::<GroupBy>().is_err());
        assert_eq!(
            " tags , paths,host".parse::<GroupBy>().unwrap(),
            GroupBy {
                host: true,
                paths: true,
                tags: true
            }
        );
    }

    #[test]
    fn empty_tag_list_means_untagged() {
        let filter = SnapshotFilter {
            tags: vec![vec![]],
            ..Default::default()
        };
        assert!(filter.matches(&snap(1, "a", &["/x"], &[]).1));
        assert!(!filter.matches(&snap(1, "a", &["/x"], &["t"]).1));
    }
}
