use crate::output::size;
use crate::{Context, EXIT_DAMAGED};
use anyhow::Result;
use cairn_engine::check::{check, CheckOptions};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Also read every pack whole and authenticate every blob.
    #[arg(long)]
    read_data: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let started = Instant::now();
    let shown = ctx.progress("packs");
    let opts = CheckOptions {
        read_data: args.read_data,
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
    println!(
        "checked {} snapshots, {} trees, {} data blobs, {} packs ({} read) in {:.1} s",
        report.snapshots,
        report.trees,
        report.data_blobs,
        report.packs,
        size(report.bytes_read),
        started.elapsed().as_secs_f64()
    );
    if report.is_clean() {
        println!("no damage found");
        Ok(0)
    } else {
        println!("{} problems found", report.errors.len());
        Ok(EXIT_DAMAGED)
    }
}
