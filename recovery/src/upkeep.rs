//! The part of a run that keeps a source's repositories healthy and its
//! history known: prunes and rolling checks when their cadence is due, and
//! failed steps recorded in the journals, all read from and written to the
//! repositories' journals (SPEC.md §17), so that every host sees them.

use crate::drill::{drill, DrillOptions};
use crate::policy::Source;
use crate::run::{audited, due, Repos, SourceRun, StepFailure};
use crate::status::{age, newest_check};
use cairn_engine::check::{CheckOptions, Subset};
use cairn_engine::journal;
use cairn_engine::prune::PruneOptions;
use cairn_engine::Repository;
use cairn_format::journal::{CheckResult, Event, Failure, JournalEntry};
use cairn_format::keyring::Role;
use cairn_format::Timestamp;
use std::time::Duration;

/// How long journal entries are kept: older ones go once a newer entry
/// about the same thing exists (see [`journal::trim`]).
pub const JOURNAL_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The source's prune and rolling check in each of its repositories, and
/// its restore drill from its first repository, when due by the
/// repositories' journals (so any host's prune, check or drill counts).
pub(crate) fn upkeep(source: &Source, now: Timestamp, repos: &mut Repos, out: &mut SourceRun) {
    if source.prune.is_none() && source.check.is_none() && source.drill.is_none() {
        return;
    }
    let mut last_drill: Option<Timestamp> = None;
    for name in &source.to {
        let step = if source.prune.is_some() {
            "prune"
        } else {
            "check"
        };
        let journal = match repos.for_journal(name) {
            // The source's own steps have reported it.
            Err(_) => continue,
            Ok((repo, _)) if repo.role() == Role::PutOnly => {
                out.warnings.push(format!(
                    "checks, prunes and drills of {name} are left to a host with a full key: \
                     this one's key is put-only"
                ));
                return;
            }
            Ok((repo, first)) => match read_journal(repo, now, first) {
                Ok(journal) => journal,
                Err(e) => {
                    let message = format!("cannot read the journal: {e}");
                    out.failures.push(StepFailure::new(step, name, message));
                    continue;
                }
            },
        };
        let drills = journal
            .iter()
            .filter(|e| matches!(&e.event, Event::Drill(d) if d.source == out.source));
        last_drill = last_drill.max(drills.map(|e| e.time).max());
        if let Some(every) = source.prune {
            let last = journal
                .iter()
                .rev()
                .find(|e| matches!(e.event, Event::Prune(_)));
            if last.is_none_or(|e| due(age(now, e.time), every)) {
                let pruned = repos.get(name).and_then(|repo| {
                    let done = journal::prune_and_record(repo, &PruneOptions::default(), now)
                        .map_err(|e| e.to_string())?;
                    audited(repo, "run: prune", &[], &mut out.warnings);
                    Ok(done)
                });
                match pruned {
                    Ok(done) => out.pruned.push((name.clone(), done)),
                    Err(e) => out.failures.push(StepFailure::new("prune", name, e)),
                }
            }
        }
        if let Some(cadence) = &source.check {
            let last = newest_check(&journal, |c| cadence.counts(c));
            if last.is_none_or(|(e, _)| due(age(now, e.time), cadence.every)) {
                let rotation = cadence.subset.and_then(|s| match s {
                    Subset::Group { m, .. } => newest_check(&journal, |c| c.groups == m),
                    _ => None,
                });
                let subset = next_subset(cadence.subset, rotation.map(|(_, c)| c));
                match check_now(repos, name, subset, now) {
                    Ok(done) => {
                        if done.problems > 0 {
                            let message = format!(
                                "{} problem(s) found: {}",
                                done.problems,
                                done.first_problems.join("; ")
                            );
                            out.failures.push(StepFailure::new("check", name, message));
                        }
                        out.checked.push((name.clone(), done));
                    }
                    Err(e) => out.failures.push(StepFailure::new("check", name, e)),
                }
            }
        }
    }
    if let Some(cadence) = &source.drill {
        if last_drill.is_none_or(|t| due(age(now, t), cadence.every)) {
            drill_now(source, repos, out);
        }
    }
}

/// Drills the source of `out` from its first repository, as `cairn drill` does.
fn drill_now(source: &Source, repos: &mut Repos, out: &mut SourceRun) {
    let primary = &source.to[0];
    let drilled = repos.get(primary).and_then(|repo| {
        repo.load_index().map_err(|e| e.to_string())?;
        drill(repo, &out.source, source, primary, &DrillOptions::default())
    });
    match drilled {
        Ok(d) => {
            if !d.result.passed {
                let why = format!("the restore drill failed: {}", d.result.reason);
                out.failures.push(StepFailure::new("drill", primary, why));
            }
            out.warnings.extend(d.warnings.iter().cloned());
            out.drilled.push(d);
        }
        Err(e) => out.failures.push(StepFailure::new("drill", primary, e)),
    }
}

/// The journal of `repo`, oldest first; entries that cannot be read are
/// left out. When `tidy` (once a run), entries older than [`JOURNAL_KEPT`]
/// that newer ones supersede are removed first, where storage lets them be
/// (where it does not, the journal only grows).
fn read_journal(
    repo: &Repository,
    now: Timestamp,
    tidy: bool,
) -> Result<Vec<JournalEntry>, String> {
    let (mut entries, _) = journal::entries(repo).map_err(|e| e.to_string())?;
    if tidy {
        let before = Timestamp {
            secs: now.secs.saturating_sub(JOURNAL_KEPT.as_secs() as i64),
            nanos: now.nanos,
        };
        if journal::trim(repo, &entries, before).is_ok_and(|n| n > 0) {
            (entries, _) = journal::entries(repo).map_err(|e| e.to_string())?;
        }
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

/// What a rolling check reads this time: after group `n` of `m`, group
/// `n + 1` (and after the last, the first); any other subset as given.
fn next_subset(wanted: Option<Subset>, last: Option<&CheckResult>) -> Option<Subset> {
    match (wanted, last) {
        (Some(Subset::Group { m, .. }), Some(c)) if c.groups == m => Some(Subset::Group {
            n: c.group % m + 1,
            m,
        }),
        (wanted, _) => wanted,
    }
}

/// Checks the repository `name`, read afresh from storage (a check judges
/// what storage holds, not a cached copy), reading `subset` of its data,
/// and records the result in its journal.
fn check_now(
    repos: &mut Repos,
    name: &str,
    subset: Option<Subset>,
    now: Timestamp,
) -> Result<CheckResult, String> {
    let mut repo = repos.opener.open(name, true)?;
    repo.load_index().map_err(|e| e.to_string())?;
    let opts = CheckOptions {
        subset,
        ..Default::default()
    };
    let checked = journal::check_and_record(&repo, &opts, now).map_err(|e| e.to_string())?;
    checked.recorded.map_err(|e| e.to_string())?;
    Ok(checked.result)
}

/// Records the failures of the source `name` in `out` in the journal of
/// each of its repositories that can be reached, so that `status` on any
/// host shows them. Nothing here fails the run: the failures are reported
/// anyway, and what cannot be recorded is a warning.
pub(crate) fn record_failures(
    name: &str,
    source: &Source,
    now: Timestamp,
    repos: &mut Repos,
    out: &mut SourceRun,
) {
    if out.failures.is_empty() {
        return;
    }
    for repo_name in &source.to {
        let (repo, first) = match repos.for_journal(repo_name) {
            Ok(found) => found,
            Err(_) => continue,
        };
        for f in &out.failures {
            let event = Event::Failure(Failure {
                source: name.to_string(),
                repository: f.repository.clone(),
                step: f.step.to_string(),
                message: f.message.clone(),
            });
            if let Err(e) = journal::record(repo, now, event) {
                out.warnings.push(format!(
                    "the failure is not recorded in the journal of {repo_name}: {e}"
                ));
                break;
            }
        }
        if first {
            let _ = read_journal(repo, now, true);
        }
    }
}
