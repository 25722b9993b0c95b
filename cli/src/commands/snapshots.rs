use crate::output::{local_time, rfc3339, text};
use crate::Context;
use anyhow::Result;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let snapshots = repo.snapshots()?;
    if args.json {
        let list: Vec<_> = snapshots
            .iter()
            .map(|(id, s)| {
                json!({
                    "id": id, "short_id": id.short(), "time": rfc3339(s.time), "hostname": s.hostname,
                    "username": s.username, "paths": s.paths.iter().map(|p| text(p)).collect::<Vec<_>>(),
                    "tags": s.tags, "tree": s.tree, "parent": s.parent,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!(
        "{:<8}  {:<19}  {:<16}  {:<16}  paths",
        "ID", "time", "host", "tags"
    );
    for (id, s) in &snapshots {
        let paths: Vec<String> = s.paths.iter().map(|p| text(p)).collect();
        println!(
            "{:<8}  {:<19}  {:<16}  {:<16}  {}",
            id.short(),
            local_time(s.time),
            s.hostname,
            s.tags.join(","),
            paths.join(" ")
        );
    }
    println!("{} snapshots", snapshots.len());
    Ok(0)
}
