use crate::output::size;
use crate::{Context, EXIT_DAMAGED};
use anyhow::Result;
use cairn_engine::check::{check, CheckOptions, Subset};
use std::collections::BTreeSet;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Also read every pack whole and authenticate every blob.
    #[arg(long)]
    read_data: bool,
    /// Read only some packs whole: `N/M` (group N of M; run 1/M to M/M in
    /// turn to cover everything), a percentage such as `10%`, or a size
    /// such as `5G` (packs chosen at random).
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    read_data_subset: Option<Subset>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let started = Instant::now();
    let shown = ctx.progress("packs");
    let opts = CheckOptions {
        read_data: args.read_data,
        subset: args.read_data_subset,
        progress: shown.as_ref().map(|(p, _)| p.clone()),
    };
    let report = check(&repo, &opts);
    drop(shown);
    let report = report?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
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
        eprintln!("damaged: {} more paths, not listed", report.unlisted_damage);
    }
    println!(
        "checked {} snapshots, {} trees, {} data blobs, {} packs ({} read whole; {} read) in {:.1} s",
        report.snapshots,
        report.trees,
        report.data_blobs,
        report.packs,
        report.packs_read,
        size(report.bytes_read),
        started.elapsed().as_secs_f64()
    );
    if report.is_clean() {
        println!("no damage found");
        return Ok(0);
    }
    println!("{} problems found", report.errors.len());
    if !report.damaged.is_empty() {
        let snapshots: BTreeSet<_> = report.damaged.iter().map(|d| d.snapshot).collect();
        let paths = (report.damaged.len() as u64).saturating_add(report.unlisted_damage);
        println!(
            "{paths} paths in {} snapshots are affected; `cairn repair snapshots` keeps the rest restorable",
            snapshots.len()
        );
    }
    Ok(EXIT_DAMAGED)
}
