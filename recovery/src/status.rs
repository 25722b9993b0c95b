//! Whether each source's objectives hold, read from the repositories
//! themselves: the newest snapshot of the source in each repository it goes
//! to, its age against the source's RPO, and the 3-2-1 rule.
//!
//! A source's snapshots carry the tag [`source_tag`], so any host with the
//! passwords sees the same answer.

use crate::interval::Interval;
use crate::policy::{self, Policy, ThreeTwoOne};
use cairn_engine::repository::SnapshotList;
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The tag on every snapshot of the source `name`.
pub fn source_tag(name: &str) -> String {
    format!("source:{name}")
}

/// The state of every source asked about.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Whether every objective of every source holds.
    pub holds: bool,
    /// When it was assessed, in seconds since 1970.
    pub time: i64,
    pub sources: Vec<SourceStatus>,
}

/// One source's objectives and how they stand in each of its repositories.
#[derive(Debug, Serialize)]
pub struct SourceStatus {
    pub source: String,
    pub rpo_seconds: u64,
    pub rto_seconds: Option<u64>,
    pub three_two_one: Rule,
    pub repositories: Vec<RepositoryStatus>,
}

/// The 3-2-1 rule for one source, as [`ThreeTwoOne`] counts it.
#[derive(Debug, Serialize)]
pub struct Rule {
    pub holds: bool,
    pub copies: usize,
    pub kinds: usize,
    pub offsite: bool,
}

/// How one source stands in one repository.
#[derive(Debug, Serialize)]
pub struct RepositoryStatus {
    pub repository: String,
    pub state: State,
    /// The source's newest snapshot there.
    pub newest: Option<Newest>,
    /// Why the repository could not be read.
    pub error: Option<String>,
}

/// Whether the RPO holds in one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The newest snapshot is younger than the RPO.
    Ok,
    /// There is no snapshot younger than the RPO.
    Breach,
    /// The repository could not be opened or listed.
    Unreachable,
}

/// A source's newest snapshot in a repository.
#[derive(Debug, Serialize)]
pub struct Newest {
    pub id: String,
    /// In seconds since 1970.
    pub time: i64,
    pub age_seconds: u64,
}

/// Assesses `sources` of `policy` (all of them when empty) at `now`;
/// `open` opens a repository of the policy by name (the caller knows how
/// to find its password). Each repository is opened once.
pub fn assess(
    policy: &Policy,
    sources: &[String],
    now: Timestamp,
    mut open: impl FnMut(&str, &policy::Repository) -> Result<Repository, String>,
) -> Result<Status, String> {
    policy.check_sources(sources)?;
    let mut listed: BTreeMap<&str, Result<SnapshotList, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, source) in &policy.sources {
        if !sources.is_empty() && !sources.contains(name) {
            continue;
        }
        let tag = source_tag(name);
        let mut repositories = Vec::new();
        for repo in &source.to {
            let snapshots = listed.entry(repo).or_insert_with(|| {
                let found = &policy.repositories[repo];
                open(repo, found).and_then(|r| r.snapshots().map_err(|e| e.to_string()))
            });
            repositories.push(match snapshots {
                Err(e) => RepositoryStatus {
                    repository: repo.clone(),
                    state: State::Unreachable,
                    newest: None,
                    error: Some(e.clone()),
                },
                Ok(list) => judge(repo, newest_tagged(list, &tag), now, source.rpo),
            });
        }
        let rule: ThreeTwoOne = policy.three_two_one(source);
        out.push(SourceStatus {
            source: name.clone(),
            rpo_seconds: source.rpo.duration().as_secs(),
            rto_seconds: source.rto.map(|r| r.duration().as_secs()),
            three_two_one: Rule {
                holds: rule.holds(),
                copies: rule.copies,
                kinds: rule.kinds,
                offsite: rule.offsite,
            },
            repositories,
        });
    }
    let holds = out
        .iter()
        .flat_map(|s| &s.repositories)
        .all(|r| r.state == State::Ok);
    Ok(Status {
        holds,
        time: now.secs,
        sources: out,
    })
}

/// How the RPO `rpo` stands in `repo` whose newest snapshot of the source is `newest`.
fn judge(
    repo: &str,
    newest: Option<&(SnapshotId, cairn_format::snapshot::Snapshot)>,
    now: Timestamp,
    rpo: Interval,
) -> RepositoryStatus {
    let fresh = newest.is_some_and(|(_, s)| age(now, s.time) <= rpo.duration());
    let newest = newest.map(|(id, s)| Newest {
        id: id.to_hex(),
        time: s.time.secs,
        age_seconds: age(now, s.time).as_secs(),
    });
    RepositoryStatus {
        repository: repo.to_string(),
        state: if fresh { State::Ok } else { State::Breach },
        newest,
        error: None,
    }
}

/// How long before `now` the time `then` was; nothing when it is later (a
/// snapshot from a clock ahead of this one is taken as new).
pub(crate) fn age(now: Timestamp, then: Timestamp) -> Duration {
    let nanos = |t: Timestamp| i128::from(t.secs) * 1_000_000_000 + i128::from(t.nanos);
    let diff = (nanos(now) - nanos(then)).clamp(0, i128::from(u64::MAX));
    Duration::from_nanos(diff as u64)
}

/// The newest snapshot in `list` tagged `tag`.
pub(crate) fn newest_tagged<'a>(
    list: &'a [(SnapshotId, Snapshot)],
    tag: &str,
) -> Option<&'a (SnapshotId, Snapshot)> {
    list.iter()
        .filter(|(_, s)| s.tags.iter().any(|t| t == tag))
        .max_by_key(|(_, s)| s.time)
}
