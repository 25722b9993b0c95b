use crate::output::{kind_name, local_time, mode_string, plural, rfc3339, text};
use crate::Context;
use anyhow::Result;
use cairn_engine::find::{self, Match};
use cairn_engine::repository::SnapshotList;
use cairn_engine::Repository;
use cairn_format::tree::NodeKind;
use serde_json::json;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// Glob matched against entry names, or against absolute paths when it contains `/`.
    pattern: String,
    /// Search only this snapshot (ID, unique prefix or `latest`); may be repeated.
    #[arg(short, long = "snapshot", value_name = "ID")]
    snapshots: Vec<String>,
    /// Match without regard to case.
    #[arg(short, long)]
    ignore_case: bool,
}

/// The snapshots `names` refer to, each once, in the order given; every
/// snapshot when `names` is empty.
pub fn named_snapshots(repo: &Repository, names: &[String]) -> Result<SnapshotList> {
    if names.is_empty() {
        return Ok(repo.snapshots()?);
    }
    let mut list: SnapshotList = Vec::new();
    for name in names {
        let (id, snapshot) = repo.find_snapshot(name)?;
        if !list.iter().any(|(seen, _)| *seen == id) {
            list.push((id, snapshot));
        }
    }
    Ok(list)
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snapshots = named_snapshots(&repo, &args.snapshots)?;
    let matches = find::find(&repo, &snapshots, &args.pattern, args.ignore_case)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if ctx.json {
        let list: Vec<_> = matches
            .iter()
            .map(|m| {
                let time = snapshots
                    .iter()
                    .find(|(id, _)| *id == m.snapshot)
                    .map(|(_, s)| rfc3339(s.time));
                json!({
                    "snapshot": m.snapshot, "short_id": m.snapshot.short(), "snapshot_time": time,
                    "path": text(&m.path), "type": kind_name(&m.node.kind), "mode": m.node.mode,
                    "size": m.node.size, "mtime": rfc3339(m.node.mtime), "link_target": link_target(m),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        out.flush()?;
        return Ok(0);
    }
    let mut groups = 0;
    for (id, snapshot) in &snapshots {
        let mut hits = matches.iter().filter(|m| m.snapshot == *id).peekable();
        if hits.peek().is_none() {
            continue;
        }
        if groups > 0 {
            writeln!(out)?;
        }
        groups += 1;
        writeln!(
            out,
            "snapshot {} of {}",
            id.short(),
            local_time(snapshot.time)
        )?;
        for m in hits {
            write!(
                out,
                "{} {:>12} {} ",
                mode_string(&m.node),
                m.node.size,
                local_time(m.node.mtime)
            )?;
            out.write_all(&m.path)?;
            if let NodeKind::Symlink { target } = &m.node.kind {
                out.write_all(b" -> ")?;
                out.write_all(target)?;
            }
            out.write_all(b"\n")?;
        }
    }
    if groups > 0 {
        writeln!(out)?;
    }
    writeln!(
        out,
        "{} in {groups} of {}",
        plural(matches.len() as u64, "match"),
        plural(snapshots.len() as u64, "snapshot")
    )?;
    out.flush()?;
    Ok(0)
}

fn link_target(m: &Match) -> Option<String> {
    match &m.node.kind {
        NodeKind::Symlink { target } => Some(text(target)),
        _ => None,
    }
}
