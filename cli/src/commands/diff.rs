use crate::output::{size, text};
use crate::Context;
use anyhow::Result;
use cairn_engine::diff::{self, Change};
use serde_json::json;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    /// The earlier snapshot: ID, unique prefix, or `latest`.
    first: String,
    /// The later snapshot: ID, unique prefix, or `latest`.
    second: String,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (_, first) = repo.find_snapshot(&args.first)?;
    let (_, second) = repo.find_snapshot(&args.second)?;
    let changes = diff::diff(&repo, &first.tree, &second.tree)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if ctx.json {
        let list: Vec<_> = changes
            .iter()
            .map(|c| {
                json!({
                    "path": text(&c.path), "change": c.kind.name(),
                    "size_before": c.size_before, "size_after": c.size_after,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        for Change { path, kind, .. } in &changes {
            write!(out, "{} ", kind.marker())?;
            out.write_all(path)?;
            out.write_all(b"\n")?;
        }
        writeln!(out, "{}", summary(&changes))?;
    }
    out.flush()?;
    Ok(0)
}

/// The counts of `changes`, on one line.
pub fn summary(changes: &[Change]) -> String {
    let s = diff::summarize(changes);
    format!(
        "{} added, {} removed, {} modified, {} metadata only, {} type changed; {} added, {} removed",
        s.added,
        s.removed,
        s.modified,
        s.metadata_only,
        s.type_changed,
        size(s.bytes_added),
        size(s.bytes_removed)
    )
}
