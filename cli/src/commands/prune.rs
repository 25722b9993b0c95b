use crate::output::{emit, local_time, plural, size};
use crate::Context;
use anyhow::{bail, Result};
use cairn_engine::filter::parse_size;
use cairn_engine::prune::{prune, PruneOptions, PruneReport};
use cairn_engine::session::SessionInfo;
use cairn_engine::Repository;
use cairn_format::lock::Operation;
use serde_json::json;

/// How much a prune repacks.
#[derive(clap::Args)]
pub struct Tuning {
    /// Repack a pack when more than this share of it is unused, e.g. `5%`.
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_percent)]
    max_unused: f64,
    /// Repack at most this much in one run, e.g. `500M` or `2G`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_repack: Option<u64>,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    tuning: Tuning,
    /// Only print what would be deleted and repacked.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    // Prune loads the index itself, once it has listed the snapshots.
    let mut repo = ctx.open_keys()?;
    let report = run_on(ctx, &mut repo, args.tuning, args.dry_run)?;
    match ctx.json {
        true => emit(&summary(&report, args.dry_run)),
        false => print_report(&report, args.dry_run),
    }
    Ok(0)
}

/// Prunes an open repository, showing progress, and records it in the
/// audit log; notes on stale sessions go to standard error.
pub fn run_on(
    ctx: &Context,
    repo: &mut Repository,
    tuning: Tuning,
    dry_run: bool,
) -> Result<PruneReport> {
    let shown = ctx.progress("packs");
    let opts = PruneOptions {
        max_unused: tuning.max_unused,
        max_repack: tuning.max_repack,
        dry_run,
        reseal_before: None,
        progress: shown.as_ref().map(|(p, _)| p.clone()),
    };
    let report = prune(repo, &opts);
    drop(shown);
    let report = report?;
    if !dry_run {
        let outcome = format!(
            "ok, {} deleted ({})",
            plural(report.packs_deleted, "pack"),
            size(report.bytes_deleted)
        );
        crate::audit(repo, "prune", &[], &outcome);
    }
    print_notes(&report);
    Ok(report)
}

/// The `summary` message of a prune.
pub fn summary(r: &PruneReport, dry_run: bool) -> serde_json::Value {
    json!({
        "message_type": "summary",
        "dry_run": dry_run,
        "snapshots": r.snapshots,
        "packs_unused": r.packs_unused,
        "bytes_unused": r.bytes_unused,
        "packs_repacked": r.packs_repacked,
        "bytes_repacked": r.bytes_repacked,
        "bytes_copied": r.bytes_copied,
        "packs_kept": r.packs_kept,
        "unused_bytes_kept": r.unused_bytes_kept,
        "packs_deleted": r.packs_deleted,
        "bytes_deleted": r.bytes_deleted,
        "packs_retained": r.packs_retained,
        "packs_rescued": r.packs_rescued,
        "marks_waiting": r.waiting.len(),
    })
}

/// What a prune did, as text.
pub fn print_report(r: &PruneReport, dry_run: bool) {
    let (will, did) = if dry_run {
        ("would", "would be")
    } else {
        ("will", "")
    };
    println!("walked {}", plural(r.snapshots, "snapshot"));
    println!(
        "unused packs:   {} ({}){}",
        r.packs_unused,
        size(r.bytes_unused),
        if dry_run { ", would be deleted" } else { "" }
    );
    println!(
        "repacked packs: {} ({}), {} of used data copied{}",
        r.packs_repacked,
        size(r.bytes_repacked),
        size(r.bytes_copied),
        if dry_run { " (would be)" } else { "" }
    );
    println!(
        "kept packs:     {}, with {} unused",
        r.packs_kept,
        size(r.unused_bytes_kept)
    );
    if !dry_run {
        println!(
            "deleted:        {} ({})",
            plural(r.packs_deleted, "pack"),
            size(r.bytes_deleted)
        );
    }
    if r.packs_retained > 0 {
        println!(
            "kept {} that storage keeps from deletion until a later date (Object Lock)",
            plural(r.packs_retained, "pack")
        );
    }
    if r.packs_rescued > 0 {
        println!(
            "kept {} that snapshots written meanwhile use",
            plural(r.packs_rescued, "marked pack")
        );
    }
    for (mark, sessions) in &r.waiting {
        println!(
            "deletions of mark {} {will} wait until these have finished; run prune again later{did}:",
            mark.short()
        );
        for s in sessions {
            println!("  {}", describe(s));
        }
    }
}

/// The sessions and lock records a prune found gone, for `cairn unlock`,
/// on standard error.
fn print_notes(r: &PruneReport) {
    for s in &r.stale_sessions {
        eprintln!(
            "note: {} is gone without ending; `cairn unlock` removes its records",
            describe(s)
        );
    }
    for u in &r.stale_unreadable {
        eprintln!(
            "note: lock record {} cannot be read ({}) and is too old to matter; `cairn unlock` removes it",
            u.id.to_hex(),
            u.error
        );
    }
}

/// One session, for messages.
pub fn describe(s: &SessionInfo) -> String {
    let r = &s.latest;
    let op = match r.operation {
        Operation::Backup => "backup",
        Operation::Prune => "prune",
        Operation::Rewrite => "snapshot rewrite",
        Operation::Repair => "repair",
    };
    let state = match &s.liveness {
        cairn_engine::session::Liveness::Running => "running".to_string(),
        cairn_engine::session::Liveness::Ended => "ended".to_string(),
        cairn_engine::session::Liveness::Stale(why) => format!("stale: {why}"),
    };
    format!(
        "{op} {} on {} (pid {}, user {}) started {}, last seen {} [{state}]",
        s.id_hex(),
        r.hostname,
        r.pid,
        r.username,
        local_time(r.started),
        local_time(r.written)
    )
}

/// `5%` or `5` as the fraction 0.05.
fn parse_percent(s: &str) -> Result<f64> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a percentage"))?;
    if !(0.0..=100.0).contains(&n) {
        bail!("{s:?} is not between 0% and 100%");
    }
    Ok(n / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse() {
        assert_eq!(parse_percent("5%").unwrap(), 0.05);
        assert_eq!(parse_percent("12.5").unwrap(), 0.125);
        assert!(parse_percent("150%").is_err());
        assert!(parse_percent("x").is_err());
    }
}
