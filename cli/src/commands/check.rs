use crate::output::{emit, plural, size};
use crate::{Context, EXIT_DAMAGED};
use anyhow::Result;
use cairn_engine::check::{CheckOptions, CheckReport, Subset};
use cairn_engine::{journal, wal};
use cairn_format::Timestamp;
use cairn_recovery::pg::{by_cluster, retention};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Also read every pack whole and authenticate every blob, and every
    /// file of the PostgreSQL WAL archives.
    #[arg(long)]
    read_data: bool,
    /// Read only some packs whole: `N/M` (group N of M; run 1/M to M/M in
    /// turn to cover everything), a percentage such as `10%`, or a size
    /// such as `5G` (packs chosen at random).
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    read_data_subset: Option<Subset>,
}

/// The repairs that keep what is intact restorable, in the order they must
/// run: `repair snapshots` leaves out only what the index no longer lists,
/// so the index is rebuilt first from the blobs that authenticate.
const REPAIR: &str =
    "`cairn repair index --read-data`, then `cairn repair snapshots`, then `cairn prune`";

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    // What storage holds is judged, not a cached copy of it.
    let mut repo = ctx.open_keys_uncached()?;
    repo.load_index()?;
    let started = Instant::now();
    let shown = ctx.progress("packs");
    let opts = CheckOptions {
        read_data: args.read_data,
        subset: args.read_data_subset,
        progress: shown.as_ref().map(|(p, _)| p.clone()),
    };
    // Recorded for `cairn status`, on any host; a repository this key may
    // not write to is still checked.
    let checked = journal::check_and_record(&repo, &opts, Timestamp::now());
    drop(shown);
    let checked = checked?;
    if let Err(e) = &checked.recorded {
        eprintln!("warning: the check is not recorded in the repository's journal: {e}");
    }
    let report = checked.report;
    // A repository whose log has not begun (or was deleted whole) is for
    // `audit --verify` to report; check judges the records there are.
    match cairn_engine::audit::verify(&repo) {
        Ok(audit) if audit.records > 0 => {
            for line in super::audit::problems(&audit) {
                eprintln!("warning: {line}");
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: the audit log cannot be read: {e}"),
    }
    if !report.marked_packs.is_empty() {
        eprintln!(
            "warning: {} marked for deletion by a prune that has not finished: the next `cairn prune` completes it",
            plural(report.marked_packs.len() as u64, "pack"),
        );
    }
    if !report.unused_packs.is_empty() {
        eprintln!(
            "warning: {} ({}) in no index, left by an interrupted or running backup: run `cairn prune` to reclaim them",
            plural(report.unused_packs.len() as u64, "pack"),
            size(report.unused_bytes)
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let gaps = wal_problems(&repo, args.read_data)?;
    let clean = report.is_clean() && gaps.is_empty();
    if ctx.json {
        emit(&summary(&report, &gaps, seconds));
    } else {
        print_report(&report, &gaps, seconds);
    }
    Ok(if clean { 0 } else { EXIT_DAMAGED })
}

/// The `summary` message of a check that found `report` and the WAL
/// archives' problems `gaps`, in `seconds`.
fn summary(report: &CheckReport, gaps: &[String], seconds: f64) -> serde_json::Value {
    let errors: Vec<String> = report
        .errors
        .iter()
        .map(ToString::to_string)
        .chain(gaps.iter().cloned())
        .collect();
    let damaged: Vec<serde_json::Value> = report
        .damaged
        .iter()
        .map(|d| json!({"snapshot": d.snapshot.to_hex(), "path": d.path, "cause": d.cause}))
        .collect();
    json!({
        "message_type": "summary",
        "clean": report.is_clean() && gaps.is_empty(),
        "problems": errors.len(),
        "errors": errors,
        "damaged": damaged,
        "unlisted_damage": report.unlisted_damage,
        "snapshots": report.snapshots,
        "trees": report.trees,
        "data_blobs": report.data_blobs,
        "packs": report.packs,
        "packs_read": report.packs_read,
        "bytes_read": report.bytes_read,
        "unused_packs": report.unused_packs.len(),
        "unused_bytes": report.unused_bytes,
        "marked_packs": report.marked_packs.len(),
        "seconds": seconds,
    })
}

/// The outcome of a check as text: each problem on standard error, the
/// counts and the verdict on standard output.
fn print_report(report: &CheckReport, gaps: &[String], seconds: f64) {
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    for d in &report.damaged {
        eprintln!(
            "damaged: snapshot {} {}: {}",
            d.snapshot.short(),
            d.path,
            d.cause
        );
    }
    if report.unlisted_damage > 0 {
        eprintln!(
            "damaged: {} more, not listed",
            plural(report.unlisted_damage, "path")
        );
    }
    println!(
        "checked {}, {}, {}, {} ({} read whole; {} read) in {seconds:.1} s",
        plural(report.snapshots, "snapshot"),
        plural(report.trees, "tree"),
        plural(report.data_blobs, "data blob"),
        plural(report.packs, "pack"),
        report.packs_read,
        size(report.bytes_read),
    );
    for gap in gaps {
        eprintln!("error: {gap}");
    }
    if report.is_clean() && gaps.is_empty() {
        println!("no damage found");
        return;
    }
    let problems = report.errors.len() + gaps.len();
    println!("{} found", plural(problems as u64, "problem"));
    if !report.damaged.is_empty() {
        let snapshots: BTreeSet<_> = report.damaged.iter().map(|d| d.snapshot).collect();
        let paths = (report.damaged.len() as u64).saturating_add(report.unlisted_damage);
        println!(
            "affected: {} in {}; to keep the rest restorable, run {REPAIR}",
            plural(paths, "path"),
            plural(snapshots.len() as u64, "snapshot")
        );
    }
}

/// The problems of the PostgreSQL WAL archives: the gaps of each cluster
/// with base backups, and with `read_all` every archived file that does not
/// authenticate.
fn wal_problems(repo: &cairn_engine::Repository, read_all: bool) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for (cluster, backups) in by_cluster(&repo.snapshots()?) {
        for gap in retention::gaps(repo, &cluster, &backups)? {
            found.push(format!(
                "cluster {cluster}: {}",
                super::pg::gap_text(&backups[0], &gap)
            ));
        }
    }
    if read_all {
        let (_, problems) = wal::verify(repo)?;
        found.extend(problems.iter().map(ToString::to_string));
    }
    Ok(found)
}
