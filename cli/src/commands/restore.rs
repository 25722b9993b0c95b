use crate::output::size;
use crate::Context;
use anyhow::Result;
use cairn_engine::restore::restore;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot ID, unique prefix or `latest`, optionally followed by `:PATH`
    /// to restore only that path of it.
    snapshot: String,
    /// Directory to restore into (created if missing).
    #[arg(short, long)]
    target: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (name, subpath) = match args.snapshot.split_once(':') {
        Some((name, path)) => (name, Some(PathBuf::from(path))),
        None => (args.snapshot.as_str(), None),
    };
    let repo = ctx.open()?;
    let (id, snapshot) = repo.find_snapshot(name)?;
    let report = restore(&repo, &snapshot, subpath.as_deref(), &args.target)?;
    for (path, e) in &report.errors {
        eprintln!("cairn: cannot restore {}: {e}", path.display());
    }
    println!(
        "restored snapshot {}: {} files ({}), {} directories, {} other entries into {}",
        id.short(),
        report.files,
        size(report.bytes),
        report.dirs,
        report.others,
        args.target.display()
    );
    if report.errors.is_empty() {
        Ok(0)
    } else {
        anyhow::bail!("{} entries could not be restored", report.errors.len())
    }
}
