//! Whether each source's objectives hold, read from the repositories
//! themselves: the newest snapshot of the source in each repository it goes
//! to and its age against the source's RPO, the last failure and the last
//! check their journals record, and the 3-2-1 rule.
//!
//! A source's snapshots carry the tag [`source_tag`], so any host with the
//! passwords sees the same answer.

use crate::policy::{self, Policy, Source, ThreeTwoOne};
use cairn_engine::backend::FileKind;
use cairn_engine::repository::SnapshotList;
use cairn_engine::{journal, Repository};
use cairn_format::journal::{CheckResult, DrillResult, Event, JournalEntry};
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};
use serde::Serialize;
use std::borrow::Borrow;
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
    /// The newest restore drill, from any of the source's repositories.
    pub last_drill: Option<LastDrill>,
    /// Whether the source asks for drills and none is as recent as it asks.
    pub drill_overdue: bool,
    /// Whether the drill objectives hold: the last drill passed, within the
    /// RTO, and is recent enough when the source asks for drills.
    pub drill_holds: bool,
}

/// A restore drill, from a repository's journal.
#[derive(Debug, Serialize)]
pub struct LastDrill {
    /// In seconds since 1970.
    pub time: i64,
    /// How long ago, by this host's clock.
    pub age_seconds: u64,
    /// The host it ran on.
    pub host: String,
    /// The repository restored from.
    pub repository: String,
    /// The snapshot restored.
    pub snapshot: String,
    /// The measured recovery time: restore and verification.
    pub duration_seconds: f64,
    /// Whether that is within the source's RTO (none when it has none).
    pub rto_met: Option<bool>,
    /// Bytes of file content restored.
    pub bytes: u64,
    /// Files restored and verified.
    pub files: u64,
    /// Whether it restored and verified everything.
    pub passed: bool,
    /// Why not.
    pub reason: String,
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
    /// Whether every objective holds here: the RPO, and a check that is
    /// recent enough (when the source asks for one) and found nothing wrong.
    pub holds: bool,
    /// How the RPO stands.
    pub state: State,
    /// The source's newest snapshot there.
    pub newest: Option<Newest>,
    /// Why the repository could not be read.
    pub error: Option<String>,
    /// The newest failure of a step of the source for this repository, as
    /// any of the source's repositories records it.
    pub last_failure: Option<LastFailure>,
    /// The newest check of the repository.
    pub last_check: Option<LastCheck>,
    /// Whether the source asks for checks and none is as recent as it asks.
    pub check_overdue: bool,
    /// Journal entries of the repository that could not be read (damaged,
    /// or of a kind this version does not know).
    pub unreadable_entries: usize,
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

/// A failed step, from a repository's journal.
#[derive(Debug, Serialize)]
pub struct LastFailure {
    /// In seconds since 1970.
    pub time: i64,
    /// The host it failed on.
    pub host: String,
    /// `backup`, `copy`, `keep`, … (see [`crate::run::StepFailure`]).
    pub step: String,
    /// What went wrong.
    pub message: String,
    /// Whether it is newer than the newest snapshot's arrival in the
    /// repository: no backup or copy has succeeded there since.
    pub current: bool,
}

/// A check, from a repository's journal.
#[derive(Debug, Serialize)]
pub struct LastCheck {
    /// In seconds since 1970.
    pub time: i64,
    /// How long ago, by this host's clock.
    pub age_seconds: u64,
    /// The host it ran on.
    pub host: String,
    /// The share of data read whole (`all`, `3/7`, `10%`), empty for
    /// structure only.
    pub subset: String,
    /// Packs read whole.
    pub packs_read: u64,
    /// Bytes read, headers included.
    pub bytes_read: u64,
    /// Problems found; 0 when the repository is sound.
    pub problems: u64,
    /// The first of them.
    pub first_problems: Vec<String>,
}

/// A source's newest snapshot in a repository.
#[derive(Debug, Serialize)]
pub struct Newest {
    pub id: String,
    /// In seconds since 1970.
    pub time: i64,
    pub age_seconds: u64,
}

/// What status reads from one repository.
struct Read<R> {
    repo: R,
    snapshots: SnapshotList,
    journal: Vec<JournalEntry>,
    unreadable: usize,
}

/// Assesses `sources` of `policy` (all of them when empty) at `now`;
/// `open` opens a repository of the policy by name (the caller knows how
/// to find its password), or lends one it keeps open. Each repository is
/// opened once.
pub fn assess<R: Borrow<Repository>>(
    policy: &Policy,
    sources: &[String],
    now: Timestamp,
    mut open: impl FnMut(&str, &policy::Repository) -> Result<R, String>,
) -> Result<Status, String> {
    policy.check_sources(sources)?;
    let mut read: BTreeMap<&str, Result<Read<R>, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, source) in &policy.sources {
        if !sources.is_empty() && !sources.contains(name) {
            continue;
        }
        for repo in &source.to {
            read.entry(repo).or_insert_with(|| {
                let repository = open(repo, &policy.repositories[repo])?;
                let snapshots = repository.borrow().snapshots().map_err(|e| e.to_string())?;
                let (journal, unreadable) =
                    journal::entries(repository.borrow()).map_err(|e| e.to_string())?;
                Ok(Read {
                    repo: repository,
                    snapshots,
                    journal: journal.into_iter().map(|(_, e)| e).collect(),
                    unreadable: unreadable.len(),
                })
            });
        }
        // A failure is recorded in every repository of the source that
        // could be reached, so one for an unreachable repository is found
        // in the others.
        // The journal entries of every repository of the source that was read.
        let entries = || {
            source
                .to
                .iter()
                .filter_map(|r| read[r.as_str()].as_ref().ok())
                .flat_map(|r| &r.journal)
        };
        let mut failures: Vec<&JournalEntry> = entries()
            .filter(|e| matches!(&e.event, Event::Failure(f) if f.source == *name))
            .collect();
        failures.sort_by_key(|e| e.time);
        let last_drill = entries()
            .filter_map(|e| match &e.event {
                Event::Drill(d) if d.source == *name => Some((e, d)),
                _ => None,
            })
            .max_by_key(|(e, _)| e.time)
            .map(|(e, d)| last_drill(e, d, source, now));
        let drill_overdue = source.drill.as_ref().is_some_and(|cadence| {
            last_drill
                .as_ref()
                .is_none_or(|d| d.age_seconds > cadence.every.duration().as_secs())
        });
        let drill_holds = !drill_overdue
            && last_drill
                .as_ref()
                .is_none_or(|d| d.passed && d.rto_met != Some(false));
        let repositories = source
            .to
            .iter()
            .map(|repo| match &read[repo.as_str()] {
                Err(e) => RepositoryStatus {
                    repository: repo.clone(),
                    holds: false,
                    state: State::Unreachable,
                    newest: None,
                    error: Some(e.clone()),
                    last_failure: last_failure(&failures, repo, None),
                    last_check: None,
                    check_overdue: false,
                    unreadable_entries: 0,
                },
                Ok(r) => judge(name, source, repo, r, &failures, now),
            })
            .collect();
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
            last_drill,
            drill_overdue,
            drill_holds,
        });
    }
    let holds = out
        .iter()
        .all(|s| s.drill_holds && s.repositories.iter().all(|r| r.holds));
    Ok(Status {
        holds,
        time: now.secs,
        sources: out,
    })
}

/// How the source `name` stands in `repo`, read as `read`, at `now`;
/// `failures` are the source's failures from all its repositories'
/// journals, oldest first.
fn judge(
    name: &str,
    source: &Source,
    repo: &str,
    read: &Read<impl Borrow<Repository>>,
    failures: &[&JournalEntry],
    now: Timestamp,
) -> RepositoryStatus {
    let newest = newest_tagged(&read.snapshots, &source_tag(name));
    let fresh = newest.is_some_and(|(_, s)| age(now, s.time) <= source.rpo.duration());
    let check_overdue = source.check.as_ref().is_some_and(|cadence| {
        newest_check(&read.journal, |c| cadence.counts(c))
            .is_none_or(|(e, _)| age(now, e.time) > cadence.every.duration())
    });
    let last_check = newest_check(&read.journal, |_| true).map(|(e, c)| LastCheck {
        time: e.time.secs,
        age_seconds: age(now, e.time).as_secs(),
        host: e.hostname.clone(),
        subset: c.subset.clone(),
        packs_read: c.packs_read,
        bytes_read: c.bytes_read,
        problems: c.problems,
        first_problems: c.first_problems.clone(),
    });
    let sound = last_check.as_ref().is_none_or(|c| c.problems == 0);
    RepositoryStatus {
        repository: repo.to_string(),
        holds: fresh && sound && !check_overdue,
        state: if fresh { State::Ok } else { State::Breach },
        last_failure: last_failure(
            failures,
            repo,
            newest.map(|n| arrived(read.repo.borrow(), n)),
        ),
        newest: newest.map(|(id, s)| Newest {
            id: id.to_hex(),
            time: s.time.secs,
            age_seconds: age(now, s.time).as_secs(),
        }),
        error: None,
        last_check,
        check_overdue,
        unreadable_entries: read.unreadable,
    }
}

/// The drill `d` recorded by `e`, of `source`, as `status` shows it at `now`.
fn last_drill(e: &JournalEntry, d: &DrillResult, source: &Source, now: Timestamp) -> LastDrill {
    let took = std::time::Duration::from_nanos(d.duration_nanos);
    LastDrill {
        time: e.time.secs,
        age_seconds: age(now, e.time).as_secs(),
        host: e.hostname.clone(),
        repository: d.repository.clone(),
        snapshot: d.snapshot.to_hex(),
        duration_seconds: took.as_secs_f64(),
        rto_met: source.rto.map(|rto| took <= rto.duration()),
        bytes: d.bytes,
        files: d.files,
        passed: d.passed,
        reason: d.reason.clone(),
    }
}

/// The newest check in `journal` (oldest first) that `wanted` accepts.
pub(crate) fn newest_check(
    journal: &[JournalEntry],
    wanted: impl Fn(&CheckResult) -> bool,
) -> Option<(&JournalEntry, &CheckResult)> {
    journal.iter().rev().find_map(|e| match &e.event {
        Event::Check(c) if wanted(c) => Some((e, c)),
        _ => None,
    })
}

/// When the snapshot `newest` arrived in `repo`: when storage created its
/// file (a copy arrives later than its snapshot was taken), or else the
/// snapshot's own time.
fn arrived(repo: &Repository, (id, snapshot): &(SnapshotId, Snapshot)) -> Timestamp {
    match repo.backend().modified(FileKind::Snapshot, &id.to_hex()) {
        Ok(time) => Timestamp::from(time).max(snapshot.time),
        Err(_) => snapshot.time,
    }
}

/// The newest of `failures` for `repo`; current when newer than `newest`,
/// when the newest snapshot arrived there.
fn last_failure(
    failures: &[&JournalEntry],
    repo: &str,
    newest: Option<Timestamp>,
) -> Option<LastFailure> {
    failures.iter().rev().find_map(|e| match &e.event {
        Event::Failure(f) if f.repository == repo => Some(LastFailure {
            time: e.time.secs,
            host: e.hostname.clone(),
            step: f.step.clone(),
            message: f.message.clone(),
            current: newest.is_none_or(|t| e.time > t),
        }),
        _ => None,
    })
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
