use crate::output::{kind_name, local_time, mode_string, rfc3339, text};
use crate::Context;
use anyhow::Result;
use cairn_engine::browse;
use cairn_format::tree::{Node, NodeKind};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot ID, unique prefix, or `latest`.
    snapshot: String,
    /// List only this path inside the snapshot, and what is below it.
    path: Option<PathBuf>,
    /// Long format: type and mode, owner, size, modification time.
    #[arg(short, long)]
    long: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (_, snapshot) = repo.find_snapshot(&args.snapshot)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    let mut print = |path: &[u8], node: &Node| {
        if let Err(e) = print_entry(&mut out, path, node, ctx.json, args.long) {
            failed.get_or_insert(e);
        }
    };
    let start = match &args.path {
        Some(p) => browse::find_node(&repo, &snapshot.tree, p)?,
        None => None,
    };
    match start {
        None => browse::walk(&repo, &snapshot.tree, b"/", &mut print)?,
        Some(node) => {
            let mut path = b"/".to_vec();
            for name in browse::path_names(args.path.as_deref().expect("start comes from a path"))?
            {
                if path.len() > 1 {
                    path.push(b'/');
                }
                path.extend_from_slice(&name);
            }
            print(&path, &node);
            if let NodeKind::Dir { subtree } = &node.kind {
                browse::walk(&repo, subtree, &path, &mut print)?;
            }
        }
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    Ok(0)
}

/// Prints one entry: as a JSON line, or a path (with `long`, after the
/// mode, owners, size and time).
fn print_entry(
    out: &mut impl Write,
    path: &[u8],
    node: &Node,
    json: bool,
    long: bool,
) -> std::io::Result<()> {
    if json {
        let target = match &node.kind {
            NodeKind::Symlink { target } => Some(text(target)),
            _ => None,
        };
        let line = json!({
            "path": text(path), "type": kind_name(&node.kind), "mode": node.mode, "uid": node.uid, "gid": node.gid,
            "user": node.user, "group": node.group, "size": node.size, "mtime": rfc3339(node.mtime),
            "ctime": rfc3339(node.ctime), "inode": node.inode, "links": node.links, "link_target": target,
        });
        return writeln!(out, "{line}");
    }
    if long {
        let owner = |name: &str, id: u32| {
            if name.is_empty() {
                id.to_string()
            } else {
                name.to_string()
            }
        };
        write!(
            out,
            "{} {:>8} {:>8} {:>12} {} ",
            mode_string(node),
            owner(&node.user, node.uid),
            owner(&node.group, node.gid),
            node.size,
            local_time(node.mtime)
        )?;
    }
    out.write_all(path)?;
    if let (true, NodeKind::Symlink { target }) = (long, &node.kind) {
        out.write_all(b" -> ")?;
        out.write_all(target)?;
    }
    out.write_all(b"\n")
}
