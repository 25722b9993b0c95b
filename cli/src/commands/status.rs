//! `cairn status`: whether each source's recovery objectives hold, from the
//! repositories of the policy file.

use crate::output::{local_time, plural, size};
use crate::{Context, EXIT_OBJECTIVE_MISSED};
use anyhow::{Context as _, Result};
use cairn_format::Timestamp;
use cairn_recovery::status::{RepositoryStatus, SourceStatus, State};
use cairn_recovery::{metrics, Interval};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The sources to report on (names of the policy file); all by default.
    sources: Vec<String>,
    /// Also write it to this file in the text format of node_exporter's
    /// textfile collector (replaced whole, never half-written).
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (path, policy) = super::run::load_policy(ctx)?;
    let status =
        super::run::assess_now(ctx, path, &policy, &args.sources).map_err(anyhow::Error::msg)?;
    if policy.notify.is_configured() {
        super::run::announce(path, &policy, &status, &[]);
    }
    if let Some(file) = &args.prometheus {
        metrics::write_atomically(file, &metrics::prometheus(&status))
            .with_context(|| format!("cannot write metrics to {}", file.display()))?;
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        for source in &status.sources {
            let rule = &source.three_two_one;
            let rto = source
                .rto_seconds
                .and_then(Interval::from_secs)
                .map_or(String::new(), |r| format!(", RTO {r}"));
            println!(
                "{} (RPO {}{rto}; 3-2-1 {}: {} {}, {} {}, {})",
                source.source,
                Interval::from_secs(source.rpo_seconds).map_or("0s".into(), |r| r.to_string()),
                if rule.holds { "holds" } else { "does not hold" },
                rule.copies,
                if rule.copies == 1 {
                    "repository"
                } else {
                    "repositories"
                },
                rule.kinds,
                if rule.kinds == 1 {
                    "kind of storage"
                } else {
                    "kinds of storage"
                },
                if rule.offsite {
                    "one not local"
                } else {
                    "all local"
                },
            );
            let width = source.repositories.iter().map(|r| r.repository.len()).max();
            for repo in &source.repositories {
                let w = width.unwrap_or(0);
                println!("  {:<w$}  {}", repo.repository, describe(repo));
                for line in details(repo) {
                    println!("  {:<w$}  {line}", "");
                }
            }
            if let Some(line) = drill(source) {
                println!("  {line}");
            }
        }
    }
    Ok(if status.holds {
        0
    } else {
        EXIT_OBJECTIVE_MISSED
    })
}

/// The state of one source in one repository, on one line.
fn describe(repo: &RepositoryStatus) -> String {
    let newest = repo.newest.as_ref().map(|n| {
        let age =
            Interval::from_secs(n.age_seconds).map_or("just now".into(), |a| format!("{a} ago"));
        let time = local_time(Timestamp {
            secs: n.time,
            nanos: 0,
        });
        format!("newest snapshot {} at {time}, {age}", &n.id[..8])
    });
    match (repo.state, newest) {
        (State::Ok, Some(n)) => format!("OK      {n}"),
        (State::Breach, Some(n)) => format!("BREACH  {n}"),
        (_, None) if repo.state != State::Unreachable => "BREACH  no snapshot".into(),
        _ => format!(
            "UNREACHABLE  {}",
            repo.error.as_deref().unwrap_or("cannot be read")
        ),
    }
}

/// The last failure and the last check of one source in one repository,
/// a line each, when there are any.
fn details(repo: &RepositoryStatus) -> Vec<String> {
    let at = |secs| local_time(Timestamp { secs, nanos: 0 });
    let mut lines = Vec::new();
    if let Some(f) = &repo.last_failure {
        let (head, which) = match f.current {
            true => ("FAILING", "last"),
            false => ("", "earlier,"),
        };
        lines.push(format!(
            "{head:<7} {which} {} failed at {} on {}: {}",
            f.step,
            at(f.time),
            f.host,
            f.message
        ));
    }
    let overdue = if repo.check_overdue { "OVERDUE" } else { "" };
    match &repo.last_check {
        Some(c) => {
            let read = match c.subset.is_empty() {
                true => "structure".to_string(),
                false => format!(
                    "structure and data {} ({} read)",
                    c.subset,
                    size(c.bytes_read)
                ),
            };
            let (head, verdict) = match c.problems {
                0 => (overdue, "no problems".to_string()),
                n => (
                    "DAMAGED",
                    format!("{}: {}", plural(n, "problem"), c.first_problems.join("; ")),
                ),
            };
            lines.push(format!(
                "{head:<7} checked {read} at {}: {verdict}",
                at(c.time)
            ));
        }
        None if repo.check_overdue => lines.push(format!("{overdue:<7} never checked")),
        None => {}
    }
    lines
}

/// The source's last restore drill, on one line, when there is one or one is due.
fn drill(source: &SourceStatus) -> Option<String> {
    let Some(d) = &source.last_drill else {
        return source
            .drill_overdue
            .then(|| "DRILL OVERDUE  no restore drill recorded".to_string());
    };
    let head = match (d.passed, d.rto_met, source.drill_overdue) {
        (false, _, _) => "DRILL FAILED",
        (true, Some(false), _) => "RTO MISSED",
        (true, _, true) => "DRILL OVERDUE",
        _ => "drill passed",
    };
    let rto = source
        .rto_seconds
        .and_then(Interval::from_secs)
        .map_or(String::new(), |r| format!(" (RTO {r})"));
    let why = match d.passed {
        true => String::new(),
        false => format!(": {}", d.reason),
    };
    Some(format!(
        "{head}  at {} on {}, snapshot {} from {}: {:.2} s{rto}, {}{why}",
        local_time(Timestamp {
            secs: d.time,
            nanos: 0
        }),
        d.host,
        &d.snapshot[..8],
        d.repository,
        d.duration_seconds,
        size(d.bytes),
    ))
}
