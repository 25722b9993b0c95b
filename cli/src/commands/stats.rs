use crate::output::size;
use crate::Context;
use anyhow::Result;
use cairn_engine::stats;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshots to count (ID, unique prefix or `latest`); all of them when none is given.
    snapshots: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snapshots = super::find::named_snapshots(&repo, &args.snapshots)?;
    let s = stats::stats(&repo, &snapshots)?;
    if ctx.json {
        let object = json!({
            "snapshots": s.snapshots, "files": s.files, "restore_size": s.restore_size,
            "data_blobs": s.data_blobs, "tree_blobs": s.tree_blobs, "raw_size": s.raw_size,
            "data_stored_size": s.data_stored_size, "stored_size": s.stored_size,
            "dedup_ratio": s.dedup_ratio, "compression_ratio": s.compression_ratio,
        });
        println!("{}", serde_json::to_string_pretty(&object)?);
        return Ok(0);
    }
    let rows = [
        ("snapshots", s.snapshots.to_string()),
        ("files", s.files.to_string()),
        ("restore size", size(s.restore_size)),
        ("unique data blobs", s.data_blobs.to_string()),
        ("unique tree blobs", s.tree_blobs.to_string()),
        ("unique data size", size(s.raw_size)),
        ("stored data size", size(s.data_stored_size)),
        ("stored size", size(s.stored_size)),
        ("dedup ratio", format!("{:.2}", s.dedup_ratio)),
        ("compression ratio", format!("{:.2}", s.compression_ratio)),
    ];
    for (label, value) in rows {
        println!("{label:<18} {value:>12}");
    }
    Ok(0)
}
