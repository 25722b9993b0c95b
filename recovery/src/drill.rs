//! Restore drills: a source's snapshot restored from one of its
//! repositories into a scratch folder, as a recovery would restore it,
//! every file read back and checked against the snapshot, the source's own
//! verification run on it, and the time all that took measured against
//! the RTO. The result is recorded in the repository's journal (SPEC.md
//! §17), so that `status` on any host shows the last drill.
//!
//! A drill never touches the source's live data: it writes only inside
//! its scratch folder, which it removes afterwards unless asked to keep it.

use crate::policy::Source;
use crate::run::tagged;
use crate::status::source_tag;
use cairn_engine::restore::{restore_with, RestoreOptions};
use cairn_engine::Repository;
use cairn_engine::{audit, journal};
use cairn_format::journal::{DrillResult, Event};
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Which snapshot a drill restores, and where.
#[derive(Debug, Default)]
pub struct DrillOptions {
    /// This snapshot (an ID or unique prefix) instead of the newest.
    pub snapshot: Option<String>,
    /// One of the source's snapshots, chosen at random, instead of the newest.
    pub random: bool,
    /// Keep the restored data (the folder is then in [`Drilled::kept`]).
    pub keep: bool,
    /// Where the scratch folder is made; the system's temporary folder by default.
    pub scratch: Option<PathBuf>,
}

/// What a drill did.
#[derive(Debug)]
pub struct Drilled {
    /// What was measured, as recorded.
    pub result: DrillResult,
    /// The folder holding the restored data, when kept.
    pub kept: Option<PathBuf>,
    /// What went wrong without failing the drill: a result that could not
    /// be recorded, a scratch folder that could not be removed.
    pub warnings: Vec<String>,
}

/// Drills the source `name` (`source` of the policy) from `repo`, the
/// policy's repository `repo_name`, whose index is loaded. Fails only when
/// there is nothing to drill (no snapshot, no scratch folder); a drill
/// that restores or verifies wrongly is a result that did not pass.
pub fn drill(
    repo: &Repository,
    name: &str,
    source: &Source,
    repo_name: &str,
    opts: &DrillOptions,
) -> Result<Drilled, String> {
    let (id, snapshot) = pick(repo, name, opts)?;
    let base = opts.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix(&format!("cairn-drill-{name}-"))
        .tempdir_in(&base)
        .map_err(|e| format!("cannot make a scratch folder in {}: {e}", base.display()))?;
    let started = Instant::now();
    let outcome = restore_and_verify(repo, &snapshot, scratch.path(), source);
    let took = started.elapsed();
    let (files, bytes, failure) = match outcome {
        Ok((files, bytes)) => (files, bytes, None),
        Err((files, bytes, why)) => (files, bytes, Some(why)),
    };
    let result = DrillResult {
        source: name.to_string(),
        repository: repo_name.to_string(),
        snapshot: id,
        duration_nanos: u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
        bytes,
        files,
        passed: failure.is_none(),
        reason: failure.unwrap_or_default(),
    };
    let mut warnings = Vec::new();
    if let Err(e) = journal::record(repo, Timestamp::now(), Event::Drill(result.clone())) {
        warnings.push(format!("the drill is not recorded in the journal: {e}"));
    }
    let outcome = match result.passed {
        true => "ok, passed".to_string(),
        false => format!("failed: {}", result.reason),
    };
    warnings.extend(audit::try_record(repo, "drill", &[id], &outcome));
    let kept = match opts.keep {
        true => Some(scratch.keep()),
        false => {
            let dir = scratch.path().to_path_buf();
            if let Err(e) = scratch.close() {
                warnings.push(format!(
                    "the scratch folder {} could not be removed: {e}",
                    dir.display()
                ));
            }
            None
        }
    };
    Ok(Drilled {
        result,
        kept,
        warnings,
    })
}

/// The snapshot of the source `name` to drill.
fn pick(
    repo: &Repository,
    name: &str,
    opts: &DrillOptions,
) -> Result<(SnapshotId, Snapshot), String> {
    let tag = source_tag(name);
    if let Some(wanted) = &opts.snapshot {
        let (id, snapshot) = repo.find_snapshot(wanted).map_err(|e| e.to_string())?;
        return match snapshot.tags.contains(&tag) {
            true => Ok((id, snapshot)),
            false => Err(format!(
                "snapshot {} is not one of {name} (it lacks the tag {tag})",
                id.short()
            )),
        };
    }
    let mut all = tagged(repo, &tag)?;
    if all.is_empty() {
        return Err(format!("no snapshot of {name} (tagged {tag}) to drill"));
    }
    let at = match opts.random {
        true => {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            (random % all.len() as u64) as usize
        }
        // Oldest first: the newest is the last.
        false => all.len() - 1,
    };
    Ok(all.swap_remove(at))
}

/// Restores `snapshot` into `dir` reading every file back, then runs the
/// source's verification; the files and bytes restored, and why the drill
/// failed if it did.
fn restore_and_verify(
    repo: &Repository,
    snapshot: &Snapshot,
    dir: &Path,
    source: &Source,
) -> Result<(u64, u64), (u64, u64, String)> {
    let opts = RestoreOptions {
        verify: true,
        ..Default::default()
    };
    let report =
        restore_with(repo, snapshot, None, dir, &opts).map_err(|e| (0, 0, e.to_string()))?;
    let counts = (report.files, report.bytes);
    let fail = |why: String| (counts.0, counts.1, why);
    if let Some((path, e)) = report.errors.first() {
        return Err(fail(format!(
            "{} could not be restored; the first, {}: {e}",
            plural(report.errors.len(), "entry", "entries"),
            path.display()
        )));
    }
    if report.verified != report.files {
        return Err(fail(format!(
            "only {} of {} restored files read back as the snapshot has them",
            report.verified, report.files
        )));
    }
    if let Some(command) = source.drill.as_ref().and_then(|d| d.verify.as_deref()) {
        verify(command, dir).map_err(fail)?;
    }
    Ok(counts)
}

/// Runs the shell command `command` with `{dir}` standing for `dir`;
/// fails with the end of what it printed on error unless it exits 0.
fn verify(command: &str, dir: &Path) -> Result<(), String> {
    let quoted = shell_quote(&dir.display().to_string());
    // Run in the scratch folder, so that relative paths stay in it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(command.replace("{dir}", &quoted))
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run the verify command: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let last = said
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!(
        "the verify command failed ({}): {last}",
        out.status
    ))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` quoted for a POSIX shell.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
