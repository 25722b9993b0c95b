use crate::output::{local_time, plural, rfc3339, text};
use crate::Context;
use anyhow::{bail, Result};
use cairn_engine::repository::SnapshotList;
use cairn_engine::select::{self, GroupBy, GroupKey, SnapshotFilter};
use cairn_format::snapshot::Snapshot;
use cairn_format::SnapshotId;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Which snapshots a command works on.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// Only snapshots of this host; may be repeated (any of them).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Only snapshots that have every one of these comma-separated tags; may
    /// be repeated (any of the lists). `--tag ''` selects untagged snapshots.
    #[arg(long = "tag", value_name = "TAG[,TAG]")]
    tags: Vec<String>,
    /// Only snapshots that include this absolute path; may be repeated (all
    /// of them).
    #[arg(long = "path", value_name = "PATH")]
    paths: Vec<PathBuf>,
}

impl FilterArgs {
    /// The filter these options describe.
    pub fn filter(self) -> Result<SnapshotFilter> {
        if let Some(p) = self.paths.iter().find(|p| !p.is_absolute()) {
            bail!(
                "--path {}: give an absolute path, as backed up",
                p.display()
            );
        }
        Ok(SnapshotFilter {
            hosts: self.hosts,
            tags: self
                .tags
                .iter()
                .map(|list| {
                    list.split(',')
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect()
                })
                .collect(),
            paths: self.paths,
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Group snapshots by a comma list of `host`, `paths` and `tags`.
    #[arg(long, value_name = "FIELDS")]
    group_by: Option<GroupBy>,
    /// Show only the N newest snapshots (of each group).
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let filter = args.filter.filter()?;
    let repo = ctx.open()?;
    let snapshots = filter.apply(repo.snapshots()?);
    let mut groups = select::group(snapshots, args.group_by.unwrap_or_default());
    if let Some(n) = args.latest {
        select::keep_latest(&mut groups, n);
    }
    if ctx.json {
        let out = if args.group_by.is_some() {
            let list: Vec<Value> = groups
                .iter()
                .map(|(key, list)| json!({"group": group_json(key), "snapshots": list_json(list)}))
                .collect();
            Value::Array(list)
        } else {
            Value::Array(groups.iter().flat_map(|(_, l)| list_json(l)).collect())
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let (mut total, mut incomplete) = (0, 0);
    for (i, (key, list)) in groups.iter().enumerate() {
        if args.group_by.is_some() {
            if i > 0 {
                println!();
            }
            println!("{}:", group_text(key));
        }
        print_table(list);
        total += list.len();
        incomplete += list.iter().filter(|(_, s)| is_incomplete(s)).count();
    }
    match incomplete {
        0 => println!("{}", plural(total as u64, "snapshot")),
        n => println!(
            "{} ({n} incomplete: `cairn cat snapshot ID` lists the entries left out)",
            plural(total as u64, "snapshot")
        ),
    }
    Ok(0)
}

fn snapshot_json(id: &SnapshotId, s: &Snapshot) -> Value {
    json!({
        "id": id, "short_id": id.short(), "time": rfc3339(s.time), "hostname": s.hostname,
        "username": s.username, "paths": s.paths.iter().map(|p| text(p)).collect::<Vec<_>>(),
        "tags": s.tags, "tree": s.tree, "parent": s.parent, "incomplete": is_incomplete(s),
    })
}

/// Whether the snapshot left out entries: its backup could not read them,
/// or a repair found their data lost.
fn is_incomplete(s: &Snapshot) -> bool {
    !s.skipped.is_empty()
}

fn list_json(list: &SnapshotList) -> Vec<Value> {
    list.iter().map(|(id, s)| snapshot_json(id, s)).collect()
}

/// The fields grouped by, and only those.
fn group_json(key: &GroupKey) -> Value {
    let mut group = serde_json::Map::new();
    if let Some(host) = &key.hostname {
        group.insert("hostname".into(), json!(host));
    }
    if let Some(paths) = &key.paths {
        let paths: Vec<String> = paths.iter().map(|p| text(p)).collect();
        group.insert("paths".into(), json!(paths));
    }
    if let Some(tags) = &key.tags {
        group.insert("tags".into(), json!(tags));
    }
    Value::Object(group)
}

/// A group's key in words.
pub fn group_text(key: &GroupKey) -> String {
    let mut parts = Vec::new();
    if let Some(host) = &key.hostname {
        parts.push(format!("host {host}"));
    }
    if let Some(paths) = &key.paths {
        let paths: Vec<String> = paths.iter().map(|p| text(p)).collect();
        parts.push(format!("paths {}", paths.join(" ")));
    }
    if let Some(tags) = &key.tags {
        match tags.is_empty() {
            true => parts.push("no tags".into()),
            false => parts.push(format!("tags {}", tags.join(","))),
        }
    }
    if parts.is_empty() {
        return "all snapshots".into();
    }
    format!("snapshots with {}", parts.join(", "))
}

fn print_table(list: &SnapshotList) {
    println!(
        "{:<8}  {:<19}  {:<16}  {:<16}  paths",
        "ID", "time", "host", "tags"
    );
    for (id, s) in list {
        let paths: Vec<String> = s.paths.iter().map(|p| text(p)).collect();
        println!(
            "{:<8}  {:<19}  {:<16}  {:<16}  {}{}",
            id.short(),
            local_time(s.time),
            s.hostname,
            s.tags.join(","),
            paths.join(" "),
            if is_incomplete(s) {
                "  (incomplete)"
            } else {
                ""
            }
        );
    }
}
