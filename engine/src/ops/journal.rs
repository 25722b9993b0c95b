//! The journal: what happened to a repository that its snapshots do not
//! show — a failed step of a policy's source, a check and what it found, a
//! prune — kept as small sealed entries in the repository itself, so that
//! every host that opens it sees the same history (SPEC.md §17).
//!
//! Entries are written without a session: they refer to no blob, and prune
//! leaves them alone. Old ones are removed with [`trim`].
//!
//! ```
//! use cairn_engine::{backend::LocalBackend, journal, InitOptions, Repository};
//! use cairn_format::{journal::{Event, Failure}, key::KdfParams, Timestamp};
//! let dir = tempfile::tempdir().unwrap();
//! let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
//! let repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
//! let failure = Failure {
//!     source: "db".into(),
//!     repository: "offsite".into(),
//!     step: "copy".into(),
//!     message: "connection refused".into(),
//! };
//! journal::record(&repo, Timestamp::now(), Event::Failure(failure)).unwrap();
//! let (entries, unreadable) = journal::entries(&repo).unwrap();
//! assert_eq!(entries.len(), 1);
//! assert!(unreadable.is_empty());
//! ```

use crate::backend::FileKind;
use crate::check::{check, CheckOptions, CheckReport, Subset};
use crate::error::{Error, Result};
use crate::prune::{prune, PruneOptions};
use crate::repository::Repository;
use crate::sysinfo;
use cairn_format::journal::{CheckResult, Event, JournalEntry, PruneResult, MAX_PROBLEMS};
use cairn_format::{JournalId, Timestamp};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Writes an entry recording `event` at `time`, by this host and user.
/// Texts longer than an entry holds are cut.
pub fn record(repo: &Repository, time: Timestamp, event: Event) -> Result<JournalId> {
    let mut entry = JournalEntry {
        version: 1,
        time,
        hostname: sysinfo::hostname(),
        username: sysinfo::username(),
        event,
    };
    entry.fit();
    let sealed = entry.seal(repo.keys());
    Ok(JournalId(repo.store_file(FileKind::Journal, &sealed)?))
}

/// Journal entries with their IDs, oldest first.
pub type Entries = Vec<(JournalId, JournalEntry)>;

/// Every entry that can be read, oldest first, and the errors for those
/// that cannot (damaged, or of a kind this version does not know).
pub fn entries(repo: &Repository) -> Result<(Entries, Vec<Error>)> {
    let (read, errors) = repo.read_all(FileKind::Journal, JournalEntry::open, |e| e.time)?;
    let entries = read.into_iter().map(|(id, e)| (JournalId(id), e));
    Ok((entries.collect(), errors))
}

/// What an entry is about: a newer entry about the same thing supersedes it.
fn subject(event: &Event) -> (u8, &str, &str) {
    match event {
        Event::Failure(f) => (0, &f.source, &f.repository),
        Event::Check(_) => (1, "", ""),
        Event::Prune(_) => (2, "", ""),
        Event::Drill(d) => (3, &d.source, ""),
    }
}

/// Removes the entries of `list` (oldest first, as [`entries`] gives them)
/// older than `before`, except the newest about each thing (each source in
/// each repository for failures; the last check; the last prune; the last
/// drill of each source), so that
/// the journal stays small and the latest of everything stays known.
/// Returns how many were removed.
pub fn trim(
    repo: &Repository,
    list: &[(JournalId, JournalEntry)],
    before: Timestamp,
) -> Result<usize> {
    let mut seen = HashSet::new();
    let mut removed = 0;
    for (id, entry) in list.iter().rev() {
        let newest = seen.insert(subject(&entry.event));
        if !newest && entry.time < before {
            match repo.remove_file(FileKind::Journal, &id.to_hex()) {
                Ok(()) | Err(Error::Missing(_)) => removed += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// A check of `repo` with `opts`, recorded in its journal dated `time`.
#[derive(Debug)]
pub struct RecordedCheck {
    /// What the check found.
    pub report: CheckReport,
    /// What the journal was given.
    pub result: CheckResult,
    /// The entry written, or why none could be (a key or storage that may
    /// not write, say): the check itself stands either way.
    pub recorded: Result<JournalId>,
}

/// Checks `repo` (whose index is loaded) with `opts` and records the
/// result in its journal, dated `time`.
pub fn check_and_record(
    repo: &Repository,
    opts: &CheckOptions,
    time: Timestamp,
) -> Result<RecordedCheck> {
    let started = Instant::now();
    let report = check(repo, opts)?;
    let result = check_result(&report, opts, started.elapsed());
    let recorded = record(repo, time, Event::Check(result.clone()));
    Ok(RecordedCheck {
        report,
        result,
        recorded,
    })
}

/// The journal's account of a check run with `opts` that reported
/// `report` after `took`.
fn check_result(report: &CheckReport, opts: &CheckOptions, took: Duration) -> CheckResult {
    let (group, groups) = match opts.subset {
        Some(Subset::Group { n, m }) if !opts.read_data => (n, m),
        _ => (0, 0),
    };
    let subset = match (opts.read_data, opts.subset) {
        (true, _) => "all".to_string(),
        (false, Some(s)) => s.to_string(),
        (false, None) => String::new(),
    };
    CheckResult {
        subset,
        group,
        groups,
        packs: report.packs,
        packs_read: report.packs_read,
        bytes_read: report.bytes_read,
        duration_nanos: nanos(took),
        problems: report.errors.len() as u64,
        first_problems: report
            .errors
            .iter()
            .take(MAX_PROBLEMS)
            .map(|e| e.to_string())
            .collect(),
    }
}

/// Prunes `repo` with `opts` and records what it deleted in its journal,
/// dated `time`; fails if either fails.
pub fn prune_and_record(
    repo: &mut Repository,
    opts: &PruneOptions,
    time: Timestamp,
) -> Result<PruneResult> {
    let started = Instant::now();
    let report = prune(repo, opts)?;
    let result = PruneResult {
        packs_removed: report.packs_deleted,
        bytes_freed: report.bytes_deleted,
        duration_nanos: nanos(started.elapsed()),
    };
    record(repo, time, Event::Prune(result.clone()))?;
    Ok(result)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use crate::InitOptions;
    use cairn_format::journal::Failure;
    use cairn_format::key::KdfParams;

    fn repo(dir: &std::path::Path) -> Repository {
        let opts = InitOptions {
            kdf: KdfParams::argon2id(64, 1, 1),
            ..Default::default()
        };
        Repository::init(LocalBackend::new(dir.join("repo")), b"pw", &opts).unwrap()
    }

    fn failure(source: &str, message: &str) -> Event {
        Event::Failure(Failure {
            source: source.into(),
            repository: "local".into(),
            step: "backup".into(),
            message: message.into(),
        })
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    #[test]
    fn trim_keeps_recent_entries_and_the_newest_about_each_thing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        for (t, source) in [(10, "db"), (20, "db"), (30, "app"), (40, "db"), (90, "db")] {
            record(&repo, at(t), failure(source, &format!("at {t}"))).unwrap();
        }
        let prune = PruneResult {
            packs_removed: 1,
            bytes_freed: 2,
            duration_nanos: 3,
        };
        record(&repo, at(15), Event::Prune(prune)).unwrap();
        let (list, errors) = entries(&repo).unwrap();
        assert!(errors.is_empty());
        let times: Vec<i64> = list.iter().map(|(_, e)| e.time.secs).collect();
        assert_eq!(times, [10, 15, 20, 30, 40, 90]);

        // Before 50: the db failures at 10, 20 and 40 are superseded by the
        // one at 90; app's only failure and the only prune stay.
        assert_eq!(trim(&repo, &list, at(50)).unwrap(), 3);
        let (left, _) = entries(&repo).unwrap();
        let times: Vec<i64> = left.iter().map(|(_, e)| e.time.secs).collect();
        assert_eq!(times, [15, 30, 90]);
    }

    #[test]
    fn long_texts_are_cut_to_fit() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path());
        let long = "x".repeat(cairn_format::journal::MAX_TEXT_LEN * 2);
        record(&repo, at(1), failure("db", &long)).unwrap();
        let (list, _) = entries(&repo).unwrap();
        let Event::Failure(f) = &list[0].1.event else {
            panic!("not a failure")
        };
        assert_eq!(f.message.len(), cairn_format::journal::MAX_TEXT_LEN);
    }

    #[test]
    fn subsets_are_written_as_they_are_parsed() {
        for text in ["3/7", "12.5%", "7%", "0.1%", "524288000"] {
            let subset: Subset = text.parse().unwrap();
            assert_eq!(subset.to_string(), text);
        }
        let report = CheckReport {
            packs: 7,
            packs_read: 1,
            ..Default::default()
        };
        let mut opts = CheckOptions {
            subset: "2/7".parse().ok(),
            ..Default::default()
        };
        let got = check_result(&report, &opts, Duration::from_millis(5));
        assert_eq!((got.group, got.groups, got.subset.as_str()), (2, 7, "2/7"));
        assert_eq!((got.duration_nanos, got.problems), (5_000_000, 0));
        opts.read_data = true;
        let got = check_result(&report, &opts, Duration::ZERO);
        assert_eq!((got.group, got.groups, got.subset.as_str()), (0, 0, "all"));
    }
}
