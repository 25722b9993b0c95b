//! `cairn run`: what is due of the policy file's backups, copies and
//! retention, and nothing else; meant to be called from cron or a timer.

use crate::output::{parse_time, plural, size};
use crate::{one_line, profile, Context};
use anyhow::{Context as _, Result};
use cairn_engine::Repository;
use cairn_format::Timestamp;
use cairn_recovery::notify;
use cairn_recovery::run::{run as run_policy, Backup, RunOptions, SourceRun};
use cairn_recovery::status::{assess, Status};
use cairn_recovery::{Interval, Policy};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The sources to run (names of the policy file); all by default.
    sources: Vec<String>,
    /// Back up the sources now, whether due or not.
    #[arg(long)]
    force: bool,
    /// Act as if it were this time (local, as `2026-03-29 01:30`, or RFC
    /// 3339): what is due is judged, and snapshots are dated, by it. For
    /// trying a policy's keep rules over simulated days.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<Timestamp>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (path, policy) = load_policy(ctx)?;
    let mut open = |name: &str, fresh: bool| -> Result<Repository, String> {
        let repo = named(ctx, path, name).and_then(|c| match fresh {
            true => c.open_keys_uncached(),
            false => c.open_keys(),
        });
        repo.map_err(|e| one_line(&e))
    };
    let opts = RunOptions {
        force: args.force,
        now: args.now,
        assess: policy.notify.is_configured(),
        ..Default::default()
    };
    let report =
        run_policy(&policy, path, &args.sources, &opts, &mut open).map_err(anyhow::Error::msg)?;
    for s in &report.sources {
        let done = done(s);
        if !done.is_empty() {
            println!("{}: {}", s.source, done.join("; "));
        }
    }
    for warning in report.sources.iter().flat_map(|s| &s.warnings) {
        eprintln!("warning: {warning}");
    }
    let failures = report.failures();
    for (source, what) in &failures {
        eprintln!("cairn: {source}: {what}");
    }
    match &report.status {
        Some(Ok(status)) => announce(path, &policy, status, &failures),
        Some(Err(e)) => eprintln!("cairn: no notifications: {e}"),
        None => {}
    }
    if !failures.is_empty() {
        anyhow::bail!("run: {} failed", plural(failures.len() as u64, "step"));
    }
    Ok(0)
}

/// The policy file and what it says.
pub fn load_policy(ctx: &Context) -> Result<(&Path, Policy)> {
    let path = ctx
        .policy
        .as_deref()
        .context("no policy file: give --config or set CAIRN_CONFIG")?;
    Ok((path, Policy::load(path)?))
}

/// How the objectives of `sources` of `policy` (from the file at `path`)
/// stand now, read from its repositories.
pub fn assess_now(
    ctx: &Context,
    path: &Path,
    policy: &Policy,
    sources: &[String],
) -> Result<Status, String> {
    assess(policy, sources, Timestamp::now(), |name, _| {
        named(ctx, path, name)
            .and_then(|c| c.open_keys())
            .map_err(|e| one_line(&e))
    })
}

/// The context of the policy file's repository `name`, with its password.
pub fn named(ctx: &Context, policy: &Path, name: &str) -> Result<Context> {
    let named = profile::resolve(format!("@{name}"), Some(policy))?;
    let password = profile::password(
        Some(&named),
        None,
        None,
        "CAIRN_PASSWORD",
        "repository password",
    )?;
    Ok(ctx.source(Some(named.location), password))
}

/// Tells the policy's webhook and email about `failures` and about the
/// breaches of `status` that began or cleared since the last command that
/// looked; what cannot be delivered is reported and does not fail the command.
pub fn announce(path: &Path, policy: &Policy, status: &Status, failures: &[(String, String)]) {
    let Some(state) = state_file(path) else {
        eprintln!("cairn: no notifications: no home folder to keep what was announced in");
        return;
    };
    let events = match notify::events(status, failures, &state) {
        Ok(events) => events,
        Err(e) => {
            eprintln!("cairn: no notifications: {e}");
            return;
        }
    };
    for event in &events {
        for problem in notify::deliver(&policy.notify, event) {
            eprintln!("cairn: notification not delivered: {problem}");
        }
    }
}

/// Where the breaches announced for the policy file at `path` are kept:
/// `$XDG_STATE_HOME/cairn/` (or `~/.local/state/cairn/`), a file per policy file.
fn state_file(path: &Path) -> Option<PathBuf> {
    let dir = crate::remembered::xdg_home("XDG_STATE_HOME", ".local/state")?.join("cairn");
    std::fs::create_dir_all(&dir).ok()?;
    let policy = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let hash = blake3::hash(policy.as_os_str().as_encoded_bytes());
    Some(dir.join(format!("announced-{}.json", &hash.to_hex()[..16])))
}

/// What a run did for one source, a phrase each.
pub fn done(s: &SourceRun) -> Vec<String> {
    let mut done = Vec::new();
    match &s.backup {
        Some(Backup::Made { id, skipped: 0 }) => {
            done.push(format!("snapshot {} saved", id.short()))
        }
        Some(Backup::Made { id, skipped }) => done.push(format!(
            "snapshot {} saved, leaving out {} that could not be read",
            id.short(),
            plural(*skipped as u64, "entry")
        )),
        Some(Backup::NotDue { age_seconds }) => done.push(format!(
            "not due (newest snapshot {} old)",
            Interval::from_secs(*age_seconds).map_or("0s".into(), |a| a.to_string())
        )),
        None => {}
    }
    for (repo, n) in &s.copied {
        done.push(format!(
            "{} copied to {repo}",
            plural(*n as u64, "snapshot")
        ));
    }
    for (repo, n) in s.forgotten.iter().filter(|(_, n)| *n > 0) {
        done.push(format!(
            "{} removed from {repo} by keep",
            plural(*n as u64, "snapshot")
        ));
    }
    for (repo, pruned) in &s.pruned {
        done.push(format!(
            "{repo} pruned ({} deleted, {} freed)",
            plural(pruned.packs_removed, "pack"),
            size(pruned.bytes_freed)
        ));
    }
    for (repo, c) in s.checked.iter().filter(|(_, c)| c.problems == 0) {
        done.push(format!(
            "{repo} checked{}: no problems",
            match c.subset.is_empty() {
                true => String::new(),
                false => format!(" (data {}, {} read)", c.subset, size(c.bytes_read)),
            }
        ));
    }
    for d in &s.drilled {
        let r = &d.result;
        let verdict = if r.passed { "passed" } else { "FAILED" };
        done.push(format!(
            "drill of {} from {} {verdict} in {:.2} s",
            r.snapshot.short(),
            r.repository,
            std::time::Duration::from_nanos(r.duration_nanos).as_secs_f64()
        ));
    }
    done
}
