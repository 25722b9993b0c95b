use crate::output::{emit, json_bytes, parse_time, plural, size};
use crate::{remembered, Context, EXIT_INCOMPLETE};
use anyhow::Result;
use cairn_engine::backup::{
    backup, backup_stream, dry_run, estimate, BackupOptions, ParentChoice, Skipped, StreamSource,
};
use cairn_engine::filter::{parse_size, read_list, FilterOptions};
use cairn_format::snapshot::Summary;
use cairn_format::{SnapshotId, Timestamp};
use serde_json::json;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Files and directories to back up.
    #[arg(required_unless_present_any = ["files_from", "stdin", "stdin_from_command"])]
    paths: Vec<PathBuf>,
    /// Back up standard input as one file.
    #[arg(long, conflicts_with_all = ["paths", "files_from", "stdin_from_command"])]
    stdin: bool,
    /// Run the command given after `--` and back up its standard output as one
    /// file; if the command fails, no snapshot is saved.
    #[arg(long, requires = "command", conflicts_with_all = ["paths", "files_from"])]
    stdin_from_command: bool,
    /// Name of the file that holds a stream in the snapshot.
    #[arg(long, default_value = "stdin", value_name = "NAME")]
    stdin_filename: String,
    /// The command for --stdin-from-command.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
    /// Also back up the paths listed in this file (one per line, `#` comments).
    #[arg(long, value_name = "FILE")]
    files_from: Vec<PathBuf>,
    /// Leave out paths matching this pattern (`*.o`, `/home/*/.cache`, `**/target`).
    #[arg(long, short = 'e', value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Like --exclude, ignoring case.
    #[arg(long, value_name = "PATTERN")]
    iexclude: Vec<String>,
    /// Read --exclude patterns from this file (one per line, `#` comments).
    #[arg(long, value_name = "FILE")]
    exclude_file: Vec<PathBuf>,
    /// Leave out directories containing an entry with this name.
    #[arg(long, value_name = "NAME")]
    exclude_if_present: Vec<String>,
    /// Leave out directories tagged with a valid CACHEDIR.TAG.
    #[arg(long)]
    exclude_caches: bool,
    /// Leave out files larger than SIZE (e.g. 500M, 2G).
    #[arg(long, value_name = "SIZE")]
    exclude_larger_than: Option<String>,
    /// Stay on the file system of each backed-up path (mount points are recorded empty).
    #[arg(long, short = 'x')]
    one_file_system: bool,
    /// Tag the snapshot (repeat, or separate with commas).
    #[arg(long = "tag", value_delimiter = ',')]
    tags: Vec<String>,
    /// Hold the snapshot until this time: `forget` and `run` do not remove
    /// it before then, on any host (a compliance hold; `tag --hold-until`
    /// extends it).
    #[arg(long, value_name = "TIME")]
    hold_until: Option<String>,
    /// Keep this backup's files from deletion for DAYS days (S3 Object
    /// Lock), and hold its snapshot as long, instead of the retention given
    /// at `init --retain-days`.
    #[arg(long, value_name = "DAYS")]
    retain_days: Option<u32>,
    /// Host name to record instead of this machine's.
    #[arg(long)]
    host: Option<String>,
    /// Compare against this snapshot instead of the newest one with the same
    /// host and paths (an older one makes a differential backup).
    #[arg(long, value_name = "SNAPSHOT")]
    parent: Option<String>,
    /// Read every file, even those the parent shows unchanged.
    #[arg(long)]
    force: bool,
    /// Say what the backup would read (files new or changed since the
    /// parent, and their bytes) without reading them, and write nothing to
    /// the repository.
    #[arg(long, short = 'n', conflicts_with_all = ["stdin", "stdin_from_command"])]
    dry_run: bool,
    /// Record this time for the snapshot instead of now: local time as
    /// `2026-03-29 01:30[:00]`, or RFC 3339 with an offset.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    time: Option<Timestamp>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let hold = args.hold_until.as_deref().map(parse_time).transpose()?;
    for tag in &args.tags {
        cairn_engine::hold::check_tag(tag)?;
    }
    let mut repo = ctx.open_keys()?;
    let parent = match &args.parent {
        Some(name) => ParentChoice::Snapshot(repo.find_snapshot(name)?.0),
        None => ParentChoice::AutoAmong(remembered::own_snapshots(&repo.backend().location())),
    };
    let mut paths = args.paths;
    for list in &args.files_from {
        paths.extend(read_list(list)?.into_iter().map(PathBuf::from));
    }
    let mut exclude = args.exclude;
    for file in &args.exclude_file {
        exclude.extend(read_list(file)?);
    }
    let filter = FilterOptions {
        exclude,
        iexclude: args.iexclude,
        exclude_if_present: args.exclude_if_present,
        exclude_caches: args.exclude_caches,
        exclude_larger_than: args
            .exclude_larger_than
            .as_deref()
            .map(parse_size)
            .transpose()?,
        one_file_system: args.one_file_system,
    };
    let shown = ctx.progress("files");
    let progress = shown.as_ref().map(|(p, _)| p.clone());
    if let Some(p) = progress
        .clone()
        .filter(|_| !args.stdin && !args.stdin_from_command)
    {
        // Counting what there is to read runs beside the backup, for the ETA,
        // on CPU time the backup leaves idle; the process does not wait for it.
        let (paths, filter) = (paths.clone(), filter.clone());
        std::thread::spawn(move || {
            idle_priority();
            estimate(&paths, &filter, &p)
        });
    }
    let mut tags: Vec<String> = args.tags.into_iter().filter(|t| !t.is_empty()).collect();
    tags.extend(hold.map(cairn_engine::hold::tag));
    let opts = BackupOptions {
        filter,
        parent,
        force: args.force,
        hostname: args.host,
        tags,
        progress,
        time: args.time,
        retain_days: args.retain_days,
    };
    if args.dry_run {
        let result = dry_run(&mut repo, &paths, &opts);
        drop(shown);
        let (s, skipped) = result?;
        report_skipped(ctx, &skipped);
        if ctx.json {
            emit(&summary(&s, None, None, &skipped, true));
            return Ok(left_out(ctx, &skipped, "the backup would leave out"));
        }
        println!("dry run: nothing was written to the repository");
        println!(
            "files: {} new, {} changed, {} unchanged; dirs: {}, other: {}",
            s.files_new, s.files_changed, s.files_unchanged, s.dirs, s.others
        );
        println!(
            "would read {} of {}",
            size(s.bytes_read),
            plural(s.files_new + s.files_changed, "file")
        );
        return Ok(left_out(ctx, &skipped, "the backup would leave out"));
    }
    let report = if args.stdin {
        let stdin = Box::new(std::io::stdin());
        backup_stream(
            &mut repo,
            StreamSource::Reader(stdin),
            &args.stdin_filename,
            &opts,
        )
    } else if args.stdin_from_command {
        let source = StreamSource::Command(args.command);
        backup_stream(&mut repo, source, &args.stdin_filename, &opts)
    } else {
        backup(&mut repo, &paths, &opts)
    };
    drop(shown);
    // A failed backup records nothing: bad input changes nothing.
    let report = report?;
    let outcome = match report.skipped.len() {
        0 => "ok".to_string(),
        n => format!(
            "ok, leaving out {} that could not be read",
            plural(n as u64, "entry")
        ),
    };
    crate::audit(&repo, "backup", &[report.id], &outcome);
    remembered::remember_snapshot(&repo.backend().location(), &report.id);
    report_skipped(ctx, &report.skipped);
    let s = &report.snapshot.summary;
    if ctx.json {
        let parent = report.snapshot.parent.as_ref();
        emit(&summary(
            s,
            Some(&report.id),
            parent,
            &report.skipped,
            false,
        ));
        return Ok(left_out(ctx, &report.skipped, "the snapshot leaves out"));
    }
    if let Some(parent) = &report.snapshot.parent {
        println!("parent snapshot {}", parent.short());
    }
    println!(
        "files: {} new, {} changed, {} unchanged; dirs: {}, other: {}",
        s.files_new, s.files_changed, s.files_unchanged, s.dirs, s.others
    );
    println!(
        "read {} in {:.2}s; added {} ({} stored) in {} and {}",
        size(s.bytes_read),
        seconds(s),
        size(s.bytes_added),
        size(s.bytes_added_stored),
        plural(s.data_blobs_added, "data blob"),
        plural(s.tree_blobs_added, "tree blob")
    );
    println!("snapshot {} saved", report.id.short());
    Ok(left_out(ctx, &report.skipped, "the snapshot leaves out"))
}

/// Reports each entry that could not be read: on standard error, or with
/// `--json` as `error` messages.
fn report_skipped(ctx: &Context, skipped: &[Skipped]) {
    for s in skipped {
        match ctx.json {
            true => emit(&json!({
                "message_type": "error",
                "item": json_bytes(s.path.as_os_str().as_bytes()),
                "error": s.error.to_string(),
            })),
            false => eprintln!("cairn: skipped {}: {}", s.path.display(), s.error),
        }
    }
}

/// The `summary` message of a backup (`id` none in a dry run).
fn summary(
    s: &Summary,
    id: Option<&SnapshotId>,
    parent: Option<&SnapshotId>,
    skipped: &[Skipped],
    dry_run: bool,
) -> serde_json::Value {
    json!({
        "message_type": "summary",
        "dry_run": dry_run,
        "snapshot_id": id.map(SnapshotId::to_hex),
        "parent": parent.map(SnapshotId::to_hex),
        "files_new": s.files_new,
        "files_changed": s.files_changed,
        "files_unchanged": s.files_unchanged,
        "dirs": s.dirs,
        "others": s.others,
        "bytes_read": s.bytes_read,
        "bytes_added": s.bytes_added,
        "bytes_added_stored": s.bytes_added_stored,
        "data_blobs_added": s.data_blobs_added,
        "tree_blobs_added": s.tree_blobs_added,
        "entries_skipped": skipped.len(),
        "seconds": seconds(s),
    })
}

/// How long the backup of `s` took, in seconds.
fn seconds(s: &Summary) -> f64 {
    (s.finished.secs - s.started.secs) as f64
        + (f64::from(s.finished.nanos) - f64::from(s.started.nanos)) / 1e9
}

/// Says how many entries could not be read, after `what` (not with
/// `--json`, whose summary counts them); the exit code.
fn left_out(ctx: &Context, skipped: &[Skipped], what: &str) -> u8 {
    if skipped.is_empty() {
        return 0;
    }
    if ctx.json {
        return EXIT_INCOMPLETE;
    }
    eprintln!(
        "cairn: {what} {} that could not be read",
        plural(skipped.len() as u64, "entry")
    );
    EXIT_INCOMPLETE
}

/// Moves the calling thread to the idle scheduling class: it runs only when
/// a core has nothing else to do. Failure leaves it at normal priority.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: the parameter is a valid, initialised struct; pid 0 is this thread.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}
