use crate::output::{json_bytes, rfc3339};
use crate::Context;
use anyhow::{bail, Result};
use cairn_format::snapshot::Snapshot;
use cairn_format::BlobId;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    /// `config`, `snapshot`, or `tree`.
    what: String,
    /// Snapshot (ID, prefix or `latest`) or tree ID.
    id: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let json = match (args.what.as_str(), args.id.as_deref()) {
        ("config", None) => serde_json::to_string_pretty(ctx.open()?.config())?,
        ("snapshot", Some(id)) => {
            serde_json::to_string_pretty(&snapshot_json(&ctx.open()?.find_snapshot(id)?.1)?)?
        }
        ("tree", Some(id)) => {
            let Some(tree) = BlobId::from_hex(id) else {
                bail!("invalid tree ID {id:?}: give all 64 hex digits")
            };
            serde_json::to_string_pretty(&ctx.open()?.load_tree(&tree)?)?
        }
        ("config", Some(_)) => bail!("`cat config` takes no ID"),
        ("snapshot" | "tree", None) => bail!("`cat {}` needs an ID", args.what),
        (other, _) => bail!("cannot cat {other:?}: choose config, snapshot or tree"),
    };
    println!("{json}");
    Ok(0)
}

/// Every field of the snapshot, with its times in RFC 3339 and its paths
/// (backed up and skipped) as text where they are UTF-8.
fn snapshot_json(s: &Snapshot) -> Result<Value> {
    let mut v = serde_json::to_value(s)?;
    v["time"] = rfc3339(s.time).into();
    v["summary"]["started"] = rfc3339(s.summary.started).into();
    v["summary"]["finished"] = rfc3339(s.summary.finished).into();
    v["paths"] = s.paths.iter().map(|p| json_bytes(p)).collect();
    v["skipped"] = s
        .skipped
        .iter()
        .map(|e| json!({"path": json_bytes(&e.path), "reason": e.reason}))
        .collect();
    Ok(v)
}
