use crate::output::{local_time, plural, size};
use crate::Context;
use anyhow::{bail, Result};
use cairn_engine::filter::parse_size;
use cairn_engine::prune::{prune, PruneOptions, PruneReport};
use cairn_engine::session::SessionInfo;
use cairn_engine::Repository;
use cairn_format::lock::Operation;

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
    run_on(&mut repo, args.tuning, args.dry_run)
}

/// Prunes an open repository and prints the outcome.
pub fn run_on(repo: &mut Repository, tuning: Tuning, dry_run: bool) -> Result<u8> {
    let opts = PruneOptions {
        max_unused: tuning.max_unused,
        max_repack: tuning.max_repack,
        dry_run,
        reseal_before: None,
    };
    let report = prune(repo, &opts)?;
    if !dry_run {
        let outcome = format!(
            "ok, {} deleted ({})",
            plural(report.packs_deleted, "pack"),
            size(report.bytes_deleted)
        );
        crate::audit(repo, "prune", &[], &outcome);
    }
    print_report(&report, dry_run);
    Ok(0)
}

fn print_report(r: &PruneReport, dry_run: bool) {
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
