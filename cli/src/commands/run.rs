//! `cairn run`: what is due of the policy file's backups, copies and
//! retention, and nothing else; meant to be called from cron or a timer.

use crate::output::plural;
use crate::{one_line, profile, Context};
use anyhow::{Context as _, Result};
use cairn_engine::Repository;
use cairn_recovery::run::{run as run_policy, Backup, RunOptions};
use cairn_recovery::{Interval, Policy};

#[derive(clap::Args)]
pub struct Args {
    /// The sources to run (names of the policy file); all by default.
    sources: Vec<String>,
    /// Back up the sources now, whether due or not.
    #[arg(long)]
    force: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (path, policy) = load_policy(ctx)?;
    let mut open = |name: &str, index: bool| -> Result<Repository, String> {
        let repo = named(ctx, path, name).and_then(|c| match index {
            true => c.open(),
            false => c.open_keys(),
        });
        repo.map_err(|e| one_line(&e))
    };
    let opts = RunOptions {
        force: args.force,
        ..Default::default()
    };
    let report =
        run_policy(&policy, path, &args.sources, &opts, &mut open).map_err(anyhow::Error::msg)?;
    for s in &report.sources {
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
        if !done.is_empty() {
            println!("{}: {}", s.source, done.join("; "));
        }
    }
    let failures = report.failures();
    for f in &failures {
        eprintln!("cairn: {f}");
    }
    if !failures.is_empty() {
        anyhow::bail!("run: {} failed", plural(failures.len() as u64, "step"));
    }
    Ok(0)
}

/// The policy file and what it says.
pub fn load_policy(ctx: &Context) -> Result<(&std::path::Path, Policy)> {
    let path = ctx
        .policy
        .as_deref()
        .context("no policy file: give --config or set CAIRN_CONFIG")?;
    Ok((path, Policy::load(path)?))
}

/// The context of the policy file's repository `name`, with its password.
pub fn named(ctx: &Context, policy: &std::path::Path, name: &str) -> Result<Context> {
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
