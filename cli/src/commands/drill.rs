//! `cairn drill`: restore drills of the policy file's sources, timed
//! against their RTO and recorded in the repositories' journals; and
//! `--list`, their history.

use crate::output::{local_time, size};
use crate::{one_line, Context, EXIT_OBJECTIVE_MISSED};
use anyhow::Result;
use cairn_engine::journal;
use cairn_format::journal::Event;
use cairn_format::Timestamp;
use cairn_recovery::drill::{drill, DrillOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The sources to drill (names of the policy file); all by default.
    sources: Vec<String>,
    /// Restore this snapshot instead of the source's newest.
    #[arg(long, value_name = "ID", conflicts_with = "random")]
    snapshot: Option<String>,
    /// Restore one of the source's snapshots chosen at random.
    #[arg(long)]
    random: bool,
    /// Restore from this repository of the source (its name in the policy
    /// file) instead of the first, as when the first is lost.
    #[arg(long, value_name = "NAME")]
    from: Option<String>,
    /// Keep the restored data and print where it is.
    #[arg(long)]
    keep: bool,
    /// Make the scratch folder in DIR (the system's temporary folder by default).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Print the drills recorded in the sources' repositories instead.
    #[arg(long, conflicts_with_all = ["snapshot", "random", "from", "keep", "scratch"])]
    list: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (path, policy) = super::run::load_policy(ctx)?;
    policy
        .check_sources(&args.sources)
        .map_err(anyhow::Error::msg)?;
    let wanted = |name: &String| args.sources.is_empty() || args.sources.contains(name);
    if args.list {
        return list(ctx, path, &policy, &wanted);
    }
    if ctx.json {
        anyhow::bail!("`cairn drill` has JSON output only with --list: leave out --json");
    }
    if args.snapshot.is_some() && args.sources.len() != 1 {
        anyhow::bail!("--snapshot needs the one source the snapshot belongs to named");
    }
    // With --from, the sources that go to that repository.
    let drilled: Vec<(&String, &cairn_recovery::policy::Source, &str)> = policy
        .sources
        .iter()
        .filter(|(n, _)| wanted(n))
        .filter_map(|(n, s)| {
            let from = args.from.as_deref().unwrap_or(&s.to[0]);
            s.to.iter().any(|r| r == from).then_some((n, s, from))
        })
        .collect();
    if drilled.is_empty() {
        let from = args.from.as_deref().unwrap_or_default();
        anyhow::bail!("no source asked for goes to repository {from:?}");
    }
    let opts = DrillOptions {
        snapshot: args.snapshot,
        random: args.random,
        keep: args.keep,
        scratch: args.scratch,
    };
    let mut failed = 0;
    let mut missed = 0;
    for (name, source, from) in drilled {
        let repo = super::run::named(ctx, path, from).and_then(|c| c.open());
        let drilled = repo
            .map_err(|e| one_line(&e))
            .and_then(|repo| drill(&repo, name, source, from, &opts));
        let d = match drilled {
            Ok(d) => d,
            Err(e) => {
                eprintln!("cairn: {name}: no drill: {e}");
                failed += 1;
                continue;
            }
        };
        let r = &d.result;
        let took = Duration::from_nanos(r.duration_nanos);
        let target = match source.rto {
            Some(rto) if took > rto.duration() => {
                missed += 1;
                format!(", ABOVE the RTO of {rto}")
            }
            Some(rto) => format!(", within the RTO of {rto}"),
            None => String::new(),
        };
        let verdict = match r.passed {
            true => "passed".to_string(),
            false => {
                failed += 1;
                format!("FAILED: {}", r.reason)
            }
        };
        println!(
            "{name}: drill of snapshot {} from {from} {verdict}; {} files, {} restored and verified in {:.2} s{target}",
            r.snapshot.short(),
            r.files,
            size(r.bytes),
            took.as_secs_f64(),
        );
        if let Some(dir) = &d.kept {
            println!("{name}: the restored data is kept in {}", dir.display());
        }
        for warning in &d.warnings {
            eprintln!("warning: {name}: {warning}");
        }
    }
    Ok(match (failed, missed) {
        (0, 0) => 0,
        (0, _) => EXIT_OBJECTIVE_MISSED,
        _ => 1,
    })
}

/// One drill as `--list` prints it.
struct Listed {
    source: String,
    repository: String,
    time: Timestamp,
    host: String,
    user: String,
    snapshot: String,
    duration_seconds: f64,
    bytes: u64,
    files: u64,
    passed: bool,
    reason: String,
}

/// Prints the drills of the `wanted` sources of `policy` recorded in their
/// repositories, oldest first.
fn list(
    ctx: &Context,
    path: &std::path::Path,
    policy: &cairn_recovery::Policy,
    wanted: &dyn Fn(&String) -> bool,
) -> Result<u8> {
    let mut repos: Vec<&String> = policy
        .sources
        .iter()
        .filter(|(n, _)| wanted(n))
        .flat_map(|(_, s)| &s.to)
        .collect();
    repos.sort();
    repos.dedup();
    let mut drills = Vec::new();
    for name in repos {
        let repo = super::run::named(ctx, path, name).and_then(|c| c.open_keys());
        let entries = match repo.map(|r| journal::entries(&r)) {
            Ok(Ok((entries, _))) => entries,
            Ok(Err(e)) => {
                eprintln!("cairn: repository {name}: {e}");
                continue;
            }
            Err(e) => {
                eprintln!("cairn: repository {name}: {}", one_line(&e));
                continue;
            }
        };
        for (_, e) in entries {
            if let Event::Drill(d) = e.event {
                if wanted(&d.source) {
                    drills.push(Listed {
                        source: d.source,
                        repository: d.repository,
                        time: e.time,
                        host: e.hostname,
                        user: e.username,
                        snapshot: d.snapshot.to_hex(),
                        duration_seconds: Duration::from_nanos(d.duration_nanos).as_secs_f64(),
                        bytes: d.bytes,
                        files: d.files,
                        passed: d.passed,
                        reason: d.reason,
                    });
                }
            }
        }
    }
    drills.sort_by_key(|d| d.time);
    if ctx.json {
        let listed: Vec<serde_json::Value> = drills
            .iter()
            .map(|d| {
                serde_json::json!({
                    "source": d.source,
                    "repository": d.repository,
                    "time": d.time.secs,
                    "host": d.host,
                    "user": d.user,
                    "snapshot": d.snapshot,
                    "duration_seconds": d.duration_seconds,
                    "bytes": d.bytes,
                    "files": d.files,
                    "passed": d.passed,
                    "reason": d.reason,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(0);
    }
    for d in &drills {
        let rto = policy.sources.get(&d.source).and_then(|s| s.rto);
        let against = rto.map_or(String::new(), |r| format!(" (RTO {r})"));
        println!(
            "{}  {:<12} {:<10} {} {:>8.2} s{against}  {}  on {}  snapshot {}{}",
            local_time(d.time),
            d.source,
            d.repository,
            if d.passed { "passed" } else { "FAILED" },
            d.duration_seconds,
            size(d.bytes),
            d.host,
            &d.snapshot[..8],
            match d.passed {
                true => String::new(),
                false => format!(": {}", d.reason),
            }
        );
    }
    if drills.is_empty() {
        println!("no drills recorded");
    }
    Ok(0)
}
