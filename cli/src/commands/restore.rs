use crate::output::{emit, json_bytes, plural, size};
use crate::Context;
use anyhow::Result;
use cairn_engine::restore::{restore_with, Overwrite, RestoreOptions, RestoreReport};
use cairn_format::SnapshotId;
use serde_json::json;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
        match ctx.json {
            true => emit(&json!({
                "message_type": "error",
                "item": json_bytes(path.as_os_str().as_bytes()),
                "error": e.to_string(),
            })),
            false => eprintln!("cairn: cannot restore {}: {e}", path.display()),
        }
    }
    match ctx.json {
        true => emit(&summary(&report, &id, &args.target)),
        false => print_report(&report, &id, &args.target, &opts),
    }
    if report.errors.is_empty() {
        return Ok(0);
    }
    let failed = plural(report.errors.len() as u64, "entry");
    match report.errors.iter().any(|(_, e)| crate::is_damage(e)) {
        true => anyhow::bail!("{failed} could not be restored; {}", crate::DAMAGE_HINT),
        false => anyhow::bail!("{failed} could not be restored"),
    }
}

/// The `summary` message of a restore of snapshot `id` into `target`.
fn summary(r: &RestoreReport, id: &SnapshotId, target: &Path) -> serde_json::Value {
    json!({
        "message_type": "summary",
        "snapshot_id": id.to_hex(),
        "target": json_bytes(target.as_os_str().as_bytes()),
        "files_created": r.files - r.files_replaced,
        "files_replaced": r.files_replaced,
        "files_unchanged": r.files_unchanged,
        "files_kept": r.files_kept,
        "dirs": r.dirs,
        "others": r.others,
        "bytes": r.bytes,
        "bytes_written": r.bytes_written,
        "deleted": r.deleted,
        "verified": r.verified,
        "devices_skipped": r.devices_skipped,
        "errors": r.errors.len(),
    })
}

/// The outcome of a restore as text: what was restored, and the counts
/// the options asked for.
fn print_report(report: &RestoreReport, id: &SnapshotId, target: &Path, opts: &RestoreOptions) {
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
        target.display(),
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
