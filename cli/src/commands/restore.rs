use crate::output::size;
use crate::Context;
use anyhow::Result;
use cairn_engine::restore::{restore_with, Overwrite, RestoreOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot ID, unique prefix or `latest`, optionally followed by `:PATH`
    /// to restore only that path of it.
    snapshot: String,
    /// Directory to restore into (created if missing).
    #[arg(short, long)]
    target: PathBuf,
    /// Restore only paths matching this pattern, and what is below them.
    #[arg(long, short = 'i', value_name = "PATTERN")]
    include: Vec<String>,
    /// Like --include, ignoring case.
    #[arg(long, value_name = "PATTERN")]
    iinclude: Vec<String>,
    /// Leave out paths matching this pattern.
    #[arg(long, short = 'e', value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Like --exclude, ignoring case.
    #[arg(long, value_name = "PATTERN")]
    iexclude: Vec<String>,
    /// Existing files: `always` compares content and rewrites what differs,
    /// `if-changed` keeps files whose size and modification time match,
    /// `never` leaves them alone.
    #[arg(long, value_enum, default_value = "always")]
    overwrite: OverwriteArg,
    /// Delete files in restored directories that are not in the snapshot.
    #[arg(long)]
    delete: bool,
    /// Read every restored file back and check it against the snapshot.
    #[arg(long)]
    verify: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OverwriteArg {
    Always,
    IfChanged,
    Never,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (name, subpath) = match args.snapshot.split_once(':') {
        Some((name, path)) => (name, Some(PathBuf::from(path))),
        None => (args.snapshot.as_str(), None),
    };
    let repo = ctx.open()?;
    let (id, snapshot) = repo.find_snapshot(name)?;
    let shown = ctx.progress("files");
    let opts = RestoreOptions {
        include: args.include,
        iinclude: args.iinclude,
        exclude: args.exclude,
        iexclude: args.iexclude,
        overwrite: match args.overwrite {
            OverwriteArg::Always => Overwrite::Always,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::Never => Overwrite::Never,
        },
        delete: args.delete,
        verify: args.verify,
        progress: shown.as_ref().map(|(p, _)| p.clone()),
    };
    let report = restore_with(&repo, &snapshot, subpath.as_deref(), &args.target, &opts);
    drop(shown);
    let report = report?;
    for (path, e) in &report.errors {
        eprintln!("cairn: cannot restore {}: {e}", path.display());
    }
    println!(
        "restored snapshot {} into {}: {} files written, {} unchanged, {} directories, {} other entries",
        id.short(),
        args.target.display(),
        report.files,
        report.files_unchanged,
        report.dirs,
        report.others
    );
    println!(
        "{} of content, {} written{}{}",
        size(report.bytes),
        size(report.bytes_written),
        if opts.delete {
            format!(", {} entries deleted", report.deleted)
        } else {
            String::new()
        },
        if opts.verify {
            format!(", {} files verified", report.verified)
        } else {
            String::new()
        },
    );
    if report.errors.is_empty() {
        Ok(0)
    } else {
        anyhow::bail!("{} entries could not be restored", report.errors.len())
    }
}
