use crate::output::{local_time, parse_time};
use crate::Context;
use anyhow::{bail, Context as _, Result};
use cairn_engine::backup::BackupOptions;
use cairn_engine::wal::{self, Archived};
use cairn_format::wal::{format_lsn, parse_lsn};
use cairn_recovery::pg::base_backup::{self, BaseBackupOptions};
use cairn_recovery::pg::restore::{self, Action, RestoreOptions, Target};
use cairn_recovery::pg::{base_backups, retention};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The cluster option every subcommand has.
#[derive(clap::Args)]
struct Cluster {
    /// The name the cluster's WAL and base backups are kept under in the
    /// repository: one repository can hold several clusters.
    #[arg(long, value_name = "NAME", default_value = "main")]
    cluster: String,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Archive one WAL file: for `archive_command = 'cairn ... pg archive-wal %p %f'`.
    /// Archiving the same file again succeeds; other content under the same
    /// name fails and leaves the archived file as it is.
    ArchiveWal {
        /// The file's path (PostgreSQL's %p).
        path: PathBuf,
        /// The file's name (PostgreSQL's %f).
        name: String,
        #[command(flatten)]
        cluster: Cluster,
    },
    /// Fetch one archived WAL file: for `restore_command = 'cairn ... pg
    /// restore-wal %f "%p"'`. Exits 1 at once when the file is not archived,
    /// and 200 when it cannot be fetched (so that PostgreSQL stops recovery
    /// instead of ending it early).
    RestoreWal {
        /// The file's name (PostgreSQL's %f).
        name: String,
        /// Where to write it (PostgreSQL's %p).
        path: PathBuf,
        #[command(flatten)]
        cluster: Cluster,
    },
    /// Take a base backup with pg_basebackup, streamed into a new snapshot
    /// that records its start and stop LSNs, timeline and time. It connects
    /// as libpq does: the options below, else PGHOST, PGPORT, PGUSER, ...
    BaseBackup(BaseBackupArgs),
    /// Recover into an empty data directory: the newest base backup
    /// complete by the target, and the settings that replay the archived
    /// WAL to the target when PostgreSQL starts on it.
    Restore(RestoreArgs),
    /// List the base backups, the archived WAL and any gap in it.
    List {
        #[command(flatten)]
        cluster: Cluster,
    },
}

#[derive(clap::Args)]
struct BaseBackupArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The server's host or socket directory (pg_basebackup -h).
    #[arg(short = 'H', long, value_name = "HOST")]
    host: Option<String>,
    /// The server's port (pg_basebackup -p).
    #[arg(short = 'p', long, value_name = "PORT")]
    port: Option<String>,
    /// The user to connect as, which needs the REPLICATION attribute (pg_basebackup -U).
    #[arg(short = 'U', long, value_name = "USER")]
    username: Option<String>,
    /// The pg_basebackup program to run.
    #[arg(long, value_name = "PROGRAM", default_value = "pg_basebackup")]
    pg_basebackup: OsString,
    /// Add a tag to the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
}

#[derive(clap::Args)]
struct RestoreArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The empty (or new) data directory to recover into.
    #[arg(long, value_name = "DIR")]
    pgdata: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// What PostgreSQL does at a time or LSN target: pause (inspect, then
    /// run pg_wal_replay_resume()), promote, or shutdown.
    #[arg(long, value_name = "ACTION", default_value = "pause",
          value_parser = ["pause", "promote", "shutdown"])]
    target_action: String,
    /// Recover from this base backup (a snapshot ID or prefix, as `pg list`
    /// shows) rather than the newest one complete by the target.
    #[arg(long, value_name = "ID")]
    base_backup: Option<String>,
    /// Turn WAL archiving off in the recovered cluster, for a copy that
    /// runs beside the original.
    #[arg(long)]
    no_archive: bool,
    /// The restore_command to write, instead of one calling this cairn with
    /// this repository and password file.
    #[arg(long, value_name = "COMMAND")]
    restore_command: Option<String>,
}

/// Where recovery stops: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// Recover to this time: "2026-03-29 01:30:15", RFC 3339, or
    /// PostgreSQL's "2026-03-29 01:30:15.123+00".
    #[arg(long, value_name = "TIME")]
    target_time: Option<String>,
    /// Recover to this LSN (as X/Y, like pg_current_wal_lsn() shows).
    #[arg(long, value_name = "LSN")]
    target_lsn: Option<String>,
    /// Recover to the end of the archived WAL, then promote.
    #[arg(long)]
    latest: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    match args.command {
        Command::ArchiveWal {
            path,
            name,
            cluster,
        } => {
            let repo = ctx.open_keys()?;
            if wal::archive_file(&repo, &cluster.cluster, &name, &path)? == Archived::AlreadyThere {
                eprintln!("cairn: {name} was archived before with the same content");
            }
            Ok(0)
        }
        Command::RestoreWal {
            name,
            path,
            cluster,
        } => restore_wal(ctx, &cluster.cluster, &name, &path),
        Command::BaseBackup(a) => base_backup(ctx, a),
        Command::Restore(a) => restore(ctx, a),
        Command::List { cluster } => list(ctx, &cluster.cluster),
    }
}

/// Exit status of `restore-wal` when the file may be archived but cannot be
/// fetched (storage unreachable, damage, wrong password, bad arguments):
/// above 125, so that PostgreSQL stops recovery rather than taking the file
/// as missing. `main` gives it to every failure of `restore-wal`.
pub const EXIT_RESTORE_WAL_FAILED: u8 = 200;

/// True when the command line `args` runs `pg restore-wal`.
pub fn is_restore_wal(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let mut pg = false;
    for a in args.skip(1) {
        match a.to_str() {
            Some("pg") => pg = true,
            Some("restore-wal") if pg => return true,
            _ => {}
        }
    }
    false
}

/// Fetches `name` into `path`: exit status 0, or 1 when it is not archived.
fn restore_wal(ctx: &Context, cluster: &str, name: &str, path: &Path) -> Result<u8> {
    let repo = ctx.open_keys()?;
    let Some(content) = wal::fetch(&repo, cluster, name)? else {
        eprintln!("cairn: {name} is not in the archive of cluster {cluster}");
        return Ok(1);
    };
    write_new(path, &content)?;
    Ok(0)
}

/// Writes `content` to `path` through a temporary file, so that PostgreSQL
/// never sees a partial WAL file.
fn write_new(path: &Path, content: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".cairn-part");
    let tmp = PathBuf::from(tmp);
    let written = std::fs::write(&tmp, content).and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

fn base_backup(ctx: &Context, a: BaseBackupArgs) -> Result<u8> {
    let mut connection: Vec<OsString> = Vec::new();
    for (flag, value) in [("-h", &a.host), ("-p", &a.port), ("-U", &a.username)] {
        if let Some(v) = value {
            connection.extend([flag.into(), v.into()]);
        }
    }
    let opts = BaseBackupOptions {
        cluster: a.cluster.cluster,
        program: a.pg_basebackup,
        connection,
    };
    let backup = BackupOptions {
        tags: a.tags,
        ..Default::default()
    };
    let mut repo = ctx.open_keys()?;
    let (report, b) = base_backup::take(&mut repo, &opts, &backup)?;
    crate::audit(&repo, "pg base-backup", &[report.id], "ok");
    println!(
        "snapshot {} saved: base backup of cluster {}, timeline {}, LSN {} to {}",
        report.id.short(),
        b.cluster,
        b.timeline,
        format_lsn(b.start_lsn),
        format_lsn(b.stop_lsn)
    );
    Ok(0)
}

fn restore(ctx: &Context, a: RestoreArgs) -> Result<u8> {
    let target = match (&a.target.target_time, &a.target.target_lsn) {
        (Some(t), _) => Target::Time(parse_time(t)?),
        (_, Some(l)) => Target::Lsn(
            parse_lsn(l).with_context(|| format!("{l:?} is not an LSN such as 0/3000060"))?,
        ),
        _ => Target::Latest,
    };
    let action = match a.target_action.as_str() {
        "promote" => Action::Promote,
        "shutdown" => Action::Shutdown,
        _ => Action::Pause,
    };
    let restore_command = match a.restore_command {
        Some(c) => c,
        None => restore_command(ctx, &a.cluster.cluster)?,
    };
    let repo = ctx.open()?;
    let base_backup = match &a.base_backup {
        Some(name) => Some(repo.find_snapshot(name)?.0),
        None => None,
    };
    let opts = RestoreOptions {
        base_backup,
        cluster: a.cluster.cluster,
        target,
        action,
        pgdata: a.pgdata,
        restore_command,
        no_archive: a.no_archive,
    };
    let b = restore::restore(&repo, &opts)?;
    crate::audit(&repo, "pg restore", &[b.id], "ok");
    println!(
        "restored base backup {} (complete at {}, LSN {}) into {}: start PostgreSQL on it to replay the archived WAL",
        b.id.short(),
        local_time(b.stop_time),
        format_lsn(b.stop_lsn),
        opts.pgdata.display()
    );
    Ok(0)
}

/// A restore_command that runs this program with this repository and
/// password file or command.
fn restore_command(ctx: &Context, cluster: &str) -> Result<String> {
    // Quoted for the shell, and with `%` doubled: PostgreSQL replaces `%f`,
    // `%p` and `%r` anywhere in the command.
    let q = |t: &str| format!("'{}'", t.replace('\'', r"'\''").replace('%', "%%"));
    let absolute = |path: &str| {
        std::fs::canonicalize(path)
            .with_context(|| format!("cannot find {path}"))
            .map(|p| p.display().to_string())
    };
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut repo = ctx.repo.clone().context("no repository given")?;
    if Path::new(&repo).exists() {
        repo = absolute(&repo)?;
    }
    let password = match (&ctx.password.file, &ctx.password.command) {
        (Some(f), _) => format!("--password-file {}", q(&absolute(f)?)),
        (None, Some(c)) => format!("--password-command {}", q(c)),
        _ => bail!(
            "the restore_command needs a password file or command: give --password-file \
             (a machine key from `cairn key add --machine FILE`, say) or --restore-command"
        ),
    };
    Ok(format!(
        "{} -r {} {password} pg restore-wal --cluster {} %f \"%p\"",
        q(&exe.display().to_string()),
        q(&repo),
        q(cluster)
    ))
}

fn list(ctx: &Context, cluster: &str) -> Result<u8> {
    let repo = ctx.open()?;
    let backups = base_backups(&repo, cluster)?;
    println!("base backups of cluster {cluster}:");
    for b in &backups {
        println!(
            "  {}  started {}  timeline {}  LSN {} to {}  complete {}",
            b.id.short(),
            local_time(b.start_time),
            b.timeline,
            format_lsn(b.start_lsn),
            format_lsn(b.stop_lsn),
            local_time(b.stop_time)
        );
    }
    let names = wal::list(&repo, cluster)?;
    let newest = names.iter().filter(|n| n.len() == 24).max();
    match (names.first(), newest) {
        (Some(first), Some(last)) => {
            let at = wal::archived_at(&repo, cluster, last)?;
            println!(
                "WAL archive: {} files from {first}; newest segment {last}, archived {}",
                names.len(),
                local_time(at.into())
            );
        }
        _ => println!("WAL archive: {} files, no segment", names.len()),
    }
    let gaps = retention::gaps(&repo, cluster, &backups)?;
    for g in &gaps {
        println!("gap: {}", gap_text(&backups[0], g));
    }
    Ok(if gaps.is_empty() {
        0
    } else {
        crate::EXIT_DAMAGED
    })
}

/// A gap, for people.
pub fn gap_text(any: &cairn_recovery::pg::BaseBackup, g: &retention::Gap) -> String {
    let ids: Vec<String> = g.backups.iter().map(|id| id.short()).collect();
    format!(
        "WAL segments {} to {} are missing: base backups {} cannot recover past them",
        any.segment_name(g.first),
        any.segment_name(g.last),
        ids.join(", ")
    )
}
