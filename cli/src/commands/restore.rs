use crate::output::{plural, size};
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
    /// Clear the set-user-ID and set-group-ID bits of restored modes.
    #[arg(long)]
    no_setid: bool,
    /// Do not create block or character device nodes (they are reported as skipped).
    #[arg(long)]
    no_devices: bool,
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
        no_setid: args.no_setid,
        no_devices: args.no_devices,
        progress: shown.as_ref().map(|(p, _)| p.clone()),
    };
    allow_open_files();
    let report = restore_with(&repo, &snapshot, subpath.as_deref(), &args.target, &opts);
    drop(shown);
    let report = report?;
    let outcome = match report.errors.len() {
        0 => format!("ok, into {}", args.target.display()),
        n => format!(
            "{} could not be restored, into {}",
            plural(n as u64, "entry"),
            args.target.display()
        ),
    };
    crate::audit(&repo, "restore", &[id], &outcome);
    for (path, e) in &report.errors {
        eprintln!("cairn: cannot restore {}: {e}", path.display());
    }
    let files = [
        plural(report.files - report.files_replaced, "file") + " created",
        plural(report.files_replaced, "file") + " replaced",
        format!("{} unchanged", report.files_unchanged),
    ];
    let kept = match opts.overwrite {
        Overwrite::Never => format!(", {} kept (differing)", report.files_kept),
        _ => String::new(),
    };
    println!(
        "restored snapshot {} into {}: {}{kept}, {}, {}",
        id.short(),
        args.target.display(),
        files.join(", "),
        plural(report.dirs, "directory"),
        plural(report.others, "other entry"),
    );
    let mut content = vec![
        format!("{} of content", size(report.bytes)),
        format!("{} written", size(report.bytes_written)),
    ];
    if opts.delete {
        content.push(plural(report.deleted, "entry") + " deleted");
    }
    if opts.verify {
        content.push(plural(report.verified, "file") + " verified");
    }
    if opts.no_devices {
        content.push(plural(report.devices_skipped, "device node") + " skipped");
    }
    println!("{}", content.join(", "));
    if report.errors.is_empty() {
        Ok(0)
    } else {
        let failed = plural(report.errors.len() as u64, "entry");
        anyhow::bail!("{failed} could not be restored")
    }
}

/// Raises this process's soft limit of open files to its hard limit (at
/// most 2^20, the kernel's usual ceiling): a restore holds a handle on every
/// directory level it is in, and a deep tree would otherwise stop at the
/// usual soft limit of 1,024. Failure leaves the limit as it was.
fn allow_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for both calls to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            let wanted = limit.rlim_max.min(1 << 20);
            if limit.rlim_cur < wanted {
                limit.rlim_cur = wanted;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}
