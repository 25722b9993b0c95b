//! `run`: what is due of the policy, and nothing else. Each source whose
//! newest snapshot in its first repository is about to be older than its
//! RPO is backed up there; its new snapshots are copied to its other
//! repositories; its `keep` rules are applied where snapshots were added;
//! its repositories are pruned and checked when their journals say these
//! are due. Failures are recorded in the journals, for `status` to show.
//!
//! Runs of one policy file take turns (a lock on the file), and each finds
//! out what is due only once it holds the lock, so two runs started at once
//! back up a due source once.

use crate::drill::Drilled;
use crate::interval::Interval;
use crate::policy::{Input, Policy, Source};
use crate::status::{age, assess, newest_tagged, source_tag, Status};
use crate::upkeep;
use cairn_engine::audit;
use cairn_engine::backup::{backup, backup_stream, BackupOptions, StreamSource};
use cairn_engine::copy::copy;
use cairn_engine::filter::{parse_size, FilterOptions};
use cairn_engine::retention::{self, DEFAULT_GROUP_BY};
use cairn_engine::Repository;
use cairn_format::journal::{CheckResult, PruneResult};
use cairn_format::keyring::Role;
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The most a source is backed up ahead of its RPO: it is due once its
/// newest snapshot is older than the RPO less a quarter of it, or less
/// this, whichever is smaller.
pub const MOST_AHEAD: Duration = Duration::from_secs(3600);

/// How to open a repository of the policy, by name, without its index:
/// using the cache unless `fresh` asks for everything to be read from
/// storage (for a check, which judges what storage holds).
pub trait Opener {
    /// The repository `name`, opened without its index; why not, in one line.
    fn open(&mut self, name: &str, fresh: bool) -> Result<Repository, String>;
}

impl<F: FnMut(&str, bool) -> Result<Repository, String>> Opener for F {
    fn open(&mut self, name: &str, fresh: bool) -> Result<Repository, String> {
        self(name, fresh)
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    pub sources: Vec<SourceRun>,
    /// How the objectives stand after the run, when asked for
    /// ([`RunOptions::assess`]), or why that could not be found out.
    pub status: Option<Result<Status, String>>,
}

impl RunReport {
    /// The failures of the run: the source, and what failed.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.sources
            .iter()
            .flat_map(|s| s.failures.iter().map(|f| (s.source.clone(), f.to_string())))
            .collect()
    }
}

/// What a run did for one source.
#[derive(Debug, Default)]
pub struct SourceRun {
    pub source: String,
    /// The snapshot made, or why none was due: the newest one's age.
    pub backup: Option<Backup>,
    /// Snapshots copied, per repository.
    pub copied: Vec<(String, usize)>,
    /// Snapshots removed by `keep`, per repository.
    pub forgotten: Vec<(String, usize)>,
    /// Repositories pruned.
    pub pruned: Vec<(String, PruneResult)>,
    /// Repositories checked.
    pub checked: Vec<(String, CheckResult)>,
    /// The restore drill, when one was due.
    pub drilled: Vec<Drilled>,
    /// What failed.
    pub failures: Vec<StepFailure>,
    /// What went wrong without failing a step: failures that could not be
    /// recorded in a journal, say.
    pub warnings: Vec<String>,
}

/// A step of a source that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// `open`, `before`, `backup`, `after`, `copy`, `keep`, `prune`,
    /// `check` or `drill`.
    pub step: &'static str,
    /// The repository it was for.
    pub repository: String,
    /// What went wrong, in one line.
    pub message: String,
}

impl StepFailure {
    pub(crate) fn new(step: &'static str, repository: &str, message: impl Into<String>) -> Self {
        StepFailure {
            step,
            repository: repository.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.step {
            "open" => "cannot open repository",
            "before" => "before hook (no backup) for",
            "after" => "after hook for",
            "copy" => "copy to",
            "check" => "check of",
            "drill" => "drill from",
            other => other,
        };
        let into = match self.step {
            "backup" | "keep" | "prune" => " in",
            _ => "",
        };
        write!(f, "{what}{into} {}: {}", self.repository, self.message)
    }
}

/// The outcome of the backup step of a source.
#[derive(Debug)]
pub enum Backup {
    /// A snapshot was made.
    Made {
        id: SnapshotId,
        /// Entries that could not be read and were left out.
        skipped: usize,
    },
    /// The newest snapshot, this many seconds old, is recent enough.
    NotDue { age_seconds: u64 },
}

/// Options of a run.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Back up every source asked for, due or not.
    pub force: bool,
    /// The time zone `keep` counts days in; the system's when `None`.
    pub time_zone: Option<jiff::tz::TimeZone>,
    /// Act as if it were this time: what is due is judged, and snapshots
    /// and journal entries are dated, by it (to try a policy over
    /// simulated days). Now when `None`.
    pub now: Option<Timestamp>,
    /// Also assess the objectives afterwards (for notifications), with the
    /// repositories the run opened rather than opening them again.
    pub assess: bool,
}

impl RunOptions {
    /// The time it is, or is taken to be.
    fn clock(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }
}

/// The repositories a run has opened, each opened once (a password hash
/// each), and why those that could not be opened could not.
pub(crate) struct Repos<'a> {
    pub(crate) opener: &'a mut dyn Opener,
    open: HashMap<String, Result<Repository, String>>,
    /// Those whose journals were looked at in this run.
    journals: HashSet<String>,
}

impl Repos<'_> {
    /// The repository `name`.
    pub(crate) fn get(&mut self, name: &str) -> Result<&mut Repository, String> {
        let Repos { opener, open, .. } = self;
        let opened = open
            .entry(name.to_string())
            .or_insert_with(|| opener.open(name, false));
        opened.as_mut().map_err(|e| e.clone())
    }

    /// The repository `name`, and whether this is the first time in the
    /// run that its journal is asked for.
    pub(crate) fn for_journal(&mut self, name: &str) -> Result<(&mut Repository, bool), String> {
        let first = self.journals.insert(name.to_string());
        Ok((self.get(name)?, first))
    }

    /// `from` with its index loaded afresh (another host may have changed
    /// it since this run began), and `to`: two different repositories.
    fn pair(&mut self, from: &str, to: &str) -> Result<(&Repository, &mut Repository), String> {
        self.get(from)?
            .load_index()
            .map_err(|e| format!("repository {from}: {e}"))?;
        self.get(to)?;
        let (mut a, mut b) = (None, None);
        for (name, opened) in self
            .open
            .iter_mut()
            .filter_map(|(n, r)| Some((n, r.as_mut().ok()?)))
        {
            match name {
                n if n == from => a = Some(&*opened),
                n if n == to => b = Some(opened),
                _ => {}
            }
        }
        a.zip(b)
            .ok_or_else(|| format!("a source names repository {from} twice"))
    }
}

/// Carries out `sources` of `policy` (all when empty), read from the file
/// at `path`, which is locked for the run.
pub fn run(
    policy: &Policy,
    path: &Path,
    sources: &[String],
    opts: &RunOptions,
    opener: &mut dyn Opener,
) -> Result<RunReport, String> {
    policy.check_sources(sources)?;
    // Runs of one policy file take turns.
    let _turn = lock_file(path, false)?;
    let mut report = RunReport::default();
    let mut repos = Repos {
        opener,
        open: HashMap::new(),
        journals: HashSet::new(),
    };
    for (name, source) in &policy.sources {
        if sources.is_empty() || sources.contains(name) {
            let mut out = run_source(name, source, opts, &mut repos);
            upkeep::upkeep(source, opts.clock(), &mut repos, &mut out);
            upkeep::record_failures(name, source, opts.clock(), &mut repos, &mut out);
            report.sources.push(out);
        }
    }
    if opts.assess {
        let Repos { opener, open, .. } = &mut repos;
        report.status = Some(assess(policy, sources, Timestamp::now(), |name, _| {
            open.remove(name)
                .unwrap_or_else(|| opener.open(name, false))
        }));
    }
    Ok(report)
}

fn run_source(name: &str, source: &Source, opts: &RunOptions, repos: &mut Repos) -> SourceRun {
    let mut out = SourceRun {
        source: name.to_string(),
        ..Default::default()
    };
    let tag = source_tag(name);
    let primary = &source.to[0];
    let now = opts.clock();
    let failed = |step, message: String| StepFailure::new(step, primary, message);
    match repos.get(primary) {
        Err(e) => out.failures.push(failed("open", e)),
        Ok(repo) => {
            // A put-only key reads no snapshot: it knows its own backups.
            let all = match repo.parent_cache() {
                Some(cache) if repo.role() == Role::PutOnly => Ok(cache.remembered()),
                _ => repo.snapshots().map_err(|e| e.to_string()),
            };
            let newest = all.map(|list| newest_tagged(&list, &tag).map(|(_, s)| s.time));
            match newest {
                Err(e) => out.failures.push(failed("backup", e)),
                Ok(newest) => {
                    let age = newest.map(|t| age(now, t));
                    if opts.force || age.is_none_or(|a| due(a, source.rpo)) {
                        back_up(repo, source, &tag, opts.now, &mut out, failed);
                    } else if let Some(age) = age {
                        out.backup = Some(Backup::NotDue {
                            age_seconds: age.as_secs(),
                        });
                    }
                }
            }
        }
    }
    if repos
        .get(primary)
        .is_ok_and(|repo| repo.role() == Role::PutOnly)
    {
        if source.to.len() > 1 || source.keep.is_some() {
            out.warnings.push(format!(
                "copies and keep rules of {name} are left to a host with a full key: \
                 this one's key for {primary} is put-only"
            ));
        }
        return out;
    }
    let mut added = match out.backup {
        Some(Backup::Made { .. }) => vec![primary.clone()],
        _ => Vec::new(),
    };
    for target in &source.to[1..] {
        match copy_new(repos, primary, target, &tag, &mut out.warnings) {
            Ok(0) => {}
            Ok(n) => {
                out.copied.push((target.clone(), n));
                added.push(target.clone());
            }
            Err(e) => out.failures.push(StepFailure::new("copy", target, e)),
        }
    }
    if let Some(keep) = &source.keep {
        let tz = opts
            .time_zone
            .clone()
            .unwrap_or_else(jiff::tz::TimeZone::system);
        for name in &added {
            let forgotten = repos
                .get(name)
                .and_then(|repo| forget(repo, &tag, &keep.retention(), &tz, &mut out.warnings));
            match forgotten {
                Ok(n) => out.forgotten.push((name.clone(), n)),
                Err(e) => out.failures.push(StepFailure::new("keep", name, e)),
            }
        }
    }
    out
}

/// Whether something done every `every` (a backup within the RPO, a
/// check, a prune) and last done `age` ago is due: a little ahead, so that
/// it is done before `every` has passed.
pub(crate) fn due(age: Duration, every: Interval) -> bool {
    let every = every.duration();
    let ahead = (every / 4).min(MOST_AHEAD);
    age + ahead >= every
}

/// The snapshots of `repo` tagged `tag`.
pub(crate) fn tagged(repo: &Repository, tag: &str) -> Result<Vec<(SnapshotId, Snapshot)>, String> {
    let all = repo.snapshots().map_err(|e| e.to_string())?;
    Ok(all
        .into_iter()
        .filter(|(_, s)| s.tags.iter().any(|t| t == tag))
        .collect())
}

/// Backs up `source` into `repo`, tagged `tag` (and its own tags), after
/// its `before` hook (which must succeed) and followed by its `after` hook.
fn back_up(
    repo: &mut Repository,
    source: &Source,
    tag: &str,
    time: Option<Timestamp>,
    out: &mut SourceRun,
    failed: impl Fn(&'static str, String) -> StepFailure,
) {
    if let Some(hook) = &source.before {
        if let Err(e) = hook_run(hook) {
            out.failures.push(failed("before", e));
            return;
        }
    }
    match snapshot(repo, source, tag, time) {
        Ok(made) => {
            if let Backup::Made { id, .. } = &made {
                audited(repo, "run: backup", &[*id], &mut out.warnings);
            }
            out.backup = Some(made);
        }
        Err(e) => out.failures.push(failed("backup", e)),
    }
    if let Some(hook) = &source.after {
        if let Err(e) = hook_run(hook) {
            out.failures.push(failed("after", e));
        }
    }
}

/// A snapshot of `source` in `repo`, tagged `tag`, dated `time` (or now).
fn snapshot(
    repo: &mut Repository,
    source: &Source,
    tag: &str,
    time: Option<Timestamp>,
) -> Result<Backup, String> {
    let mut tags = vec![tag.to_string()];
    tags.extend(source.tags.iter().cloned());
    let mut opts = BackupOptions {
        tags,
        time,
        ..Default::default()
    };
    let report = match &source.input {
        Input::Paths {
            paths,
            exclude,
            iexclude,
            exclude_if_present,
            exclude_caches,
            exclude_larger_than,
            one_file_system,
        } => {
            opts.filter = FilterOptions {
                exclude: exclude.clone(),
                iexclude: iexclude.clone(),
                exclude_if_present: exclude_if_present.clone(),
                exclude_caches: *exclude_caches,
                exclude_larger_than: exclude_larger_than
                    .as_deref()
                    .map(parse_size)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                one_file_system: *one_file_system,
            };
            backup(repo, paths, &opts)
        }
        Input::Command { command, filename } => {
            let argv = command.iter().map(Into::into).collect();
            backup_stream(repo, StreamSource::Command(argv), filename, &opts)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(Backup::Made {
        id: report.id,
        skipped: report.skipped.len(),
    })
}

/// Runs a hook (a program and its arguments); fails unless it exits 0.
fn hook_run(argv: &[String]) -> Result<(), String> {
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("{} failed ({status})", argv[0])),
    }
}

/// Copies the snapshots tagged `tag` that `target` lacks from `primary`;
/// how many were copied. No blob is read when `target` has the newest.
fn copy_new(
    repos: &mut Repos,
    primary: &str,
    target: &str,
    tag: &str,
    warnings: &mut Vec<String>,
) -> Result<usize, String> {
    let wanted = tagged(repos.get(primary)?, tag)?;
    let had = tagged(repos.get(target)?, tag)?;
    let newest = |list: &[(SnapshotId, Snapshot)]| newest_tagged(list, tag).map(|(_, s)| s.time);
    if newest(&wanted) <= newest(&had) {
        return Ok(0);
    }
    let (src, dst) = repos.pair(primary, target)?;
    let report = copy(src, dst, &wanted, None).map_err(|e| e.to_string())?;
    let copied: Vec<SnapshotId> = report.copied.iter().map(|(_, to)| *to).collect();
    audited(dst, "run: copy", &copied, warnings);
    Ok(copied.len())
}

/// Applies `keep` to the snapshots tagged `tag` in `repo`; how many were removed.
fn forget(
    repo: &Repository,
    tag: &str,
    keep: &retention::Policy,
    tz: &jiff::tz::TimeZone,
    warnings: &mut Vec<String>,
) -> Result<usize, String> {
    let snapshots = tagged(repo, tag)?;
    let groups =
        retention::apply(&snapshots, keep, &DEFAULT_GROUP_BY, tz).map_err(|e| e.to_string())?;
    let mut removed = Vec::new();
    for d in groups.iter().flat_map(|g| &g.decisions) {
        if d.reasons.is_empty() {
            repo.remove_snapshot(&d.id).map_err(|e| e.to_string())?;
            removed.push(d.id);
        }
    }
    if !removed.is_empty() {
        audited(repo, "run: keep", &removed, warnings);
    }
    Ok(removed.len())
}

/// Adds a record of `command`, which succeeded with `snapshots`, to the
/// audit log of `repo`; a record that cannot be written is a warning.
pub(crate) fn audited(
    repo: &Repository,
    command: &str,
    snapshots: &[SnapshotId],
    warnings: &mut Vec<String>,
) {
    warnings.extend(audit::try_record(repo, command, snapshots, "ok"));
}

/// Takes the turn of the commands that lock the file at `path` (creating
/// it when `create`): an exclusive lock on it, waited for, released when
/// the file is closed.
pub(crate) fn lock_file(path: &Path, create: bool) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
}
