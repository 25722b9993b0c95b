//! Point-in-time recovery: the newest base backup that precedes the target
//! is unpacked into an empty data directory, with the settings that make
//! PostgreSQL fetch the archived WAL through cairn and replay it to the
//! target.

use super::{base_backups, no_base_backup, BaseBackup, BASE_FILE};
use cairn_engine::dump::{self, DumpTarget, FileReader};
use cairn_engine::{Error, Repository, Result};
use cairn_format::wal::format_lsn;
use cairn_format::{SnapshotId, Timestamp};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where recovery stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// At this time: transactions committed at or before it are replayed.
    Time(Timestamp),
    /// At this LSN.
    Lsn(u64),
    /// At the end of the archived WAL.
    Latest,
}

/// What PostgreSQL does once it reaches the target (`recovery_target_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pause, so that the result can be inspected before it is accepted.
    Pause,
    /// End recovery and accept connections that write.
    Promote,
    /// Stop the server.
    Shutdown,
}

impl Action {
    /// The value of `recovery_target_action`.
    pub fn setting(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Promote => "promote",
            Action::Shutdown => "shutdown",
        }
    }
}

/// How to recover.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The cluster, by the name its WAL is archived under.
    pub cluster: String,
    /// Where recovery stops.
    pub target: Target,
    /// What PostgreSQL does at the target (not used for [`Target::Latest`],
    /// where recovery ends and the server is promoted).
    pub action: Action,
    /// The data directory to fill: it must be empty or not exist.
    pub pgdata: PathBuf,
    /// The shell command PostgreSQL runs to fetch a WAL file (`%f`, `%p`).
    pub restore_command: String,
    /// Recover from this base backup rather than the newest one complete by
    /// the target (which it must be too).
    pub base_backup: Option<SnapshotId>,
    /// Turn WAL archiving off in the recovered cluster (`archive_mode =
    /// off`), for a copy that runs beside the original and must not archive
    /// into its archive; by default the base backup's settings stay.
    pub no_archive: bool,
}

/// The newest base backup that can reach `target`: one that is consistent
/// (complete) at or before it.
pub fn choose(backups: &[BaseBackup], target: Target) -> Option<&BaseBackup> {
    backups
        .iter()
        .filter(|b| match target {
            Target::Time(t) => b.stop_time <= t,
            Target::Lsn(lsn) => b.stop_lsn <= lsn,
            Target::Latest => true,
        })
        .max_by_key(|b| (b.stop_lsn, b.stop_time))
}

/// Unpacks the base backup for the target into `opts.pgdata` and writes the
/// recovery settings; returns the base backup used. Start PostgreSQL on the
/// directory to recover.
pub fn restore(repo: &Repository, opts: &RestoreOptions) -> Result<BaseBackup> {
    // Refused before anything is written.
    conf_quoted(&opts.restore_command)?;
    let backups = base_backups(repo, &opts.cluster)?;
    if backups.is_empty() {
        return Err(no_base_backup(&opts.cluster));
    }
    let candidates = match opts.base_backup {
        Some(id) => {
            let one: Vec<BaseBackup> = backups.iter().filter(|b| b.id == id).cloned().collect();
            if one.is_empty() {
                return Err(Error::Invalid(format!(
                    "snapshot {} is not a base backup of cluster {:?}",
                    id.short(),
                    opts.cluster
                )));
            }
            one
        }
        None => backups,
    };
    let chosen = choose(&candidates, opts.target).ok_or_else(|| {
        Error::Invalid(format!(
            "no base backup of cluster {:?} to choose from was complete by the target: the oldest was complete at {} (LSN {})",
            opts.cluster,
            super::time_text(candidates[0].stop_time),
            format_lsn(candidates[0].stop_lsn)
        ))
    })?;
    let snapshot = repo.load_snapshot(&chosen.id)?;
    let target = dump::resolve(repo, &snapshot, Path::new(BASE_FILE))?;
    let DumpTarget::File(node) = &target else {
        return Err(Error::Invalid(format!(
            "snapshot {} has no file {BASE_FILE}",
            chosen.id.short()
        )));
    };
    prepare_pgdata(&opts.pgdata)?;
    let filled = unpack(
        FileReader::new(repo, node, BASE_FILE.as_bytes()),
        &opts.pgdata,
    )
    .map_err(|e| {
        let what = format!("cannot unpack base backup {}", chosen.id.short());
        Error::io(format!("{what} into {}", opts.pgdata.display()), e)
    })
    .and_then(|_| write_settings(opts));
    if let Err(e) = filled {
        // Empty again, so that the same command can be run once the cause is fixed.
        empty_dir(&opts.pgdata);
        return Err(e);
    }
    Ok(chosen.clone())
}

/// Unpacks a base backup's tar stream into `pgdata`: regular files and
/// directories only (what `pg_basebackup` writes for a cluster without
/// tablespaces), each of which must land inside `pgdata`, with the modes
/// PostgreSQL gave them less any bit for others.
fn unpack(stream: impl Read, pgdata: &Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(false);
    archive.set_mask(0o077);
    archive.set_preserve_mtime(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let path = entry.path()?.display().to_string();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(std::io::Error::other(format!(
                "{path} is not a file or a directory ({kind:?}): a cluster with tablespaces or links cannot be restored this way"
            )));
        }
        if !entry.unpack_in(pgdata)? {
            return Err(std::io::Error::other(format!(
                "{path} would land outside the data directory"
            )));
        }
    }
    Ok(())
}

/// Removes everything in `dir` (which [`prepare_pgdata`] found empty).
fn empty_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = match entry.file_type().is_ok_and(|t| t.is_dir()) {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
        }
    }
}

/// Makes `pgdata` an empty directory only its owner can use (PostgreSQL
/// refuses any other); one that holds anything is refused.
fn prepare_pgdata(pgdata: &Path) -> Result<()> {
    let io = |what: &str, e| Error::io(format!("cannot {what} {}", pgdata.display()), e);
    match std::fs::read_dir(pgdata) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Invalid(format!(
                    "{} is not empty: recover into an empty or new data directory",
                    pgdata.display()
                )));
            }
            std::fs::set_permissions(pgdata, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("set the permissions of", e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .mode(0o700)
            .create(pgdata)
            .map_err(|e| io("create", e)),
        Err(e) => Err(io("read", e)),
    }
}

/// A string as a quoted value of `postgresql.conf`, which has no way to
/// write a line break or other control character: those are refused.
fn conf_quoted(text: &str) -> Result<String> {
    if text.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{text:?} cannot be written in postgresql.conf: it holds a control character"
        )));
    }
    Ok(format!(
        "'{}'",
        text.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// A timestamp as PostgreSQL reads one, to the microsecond (its precision),
/// cut rather than rounded so that it never moves past the target.
fn pg_time(t: Timestamp) -> String {
    let whole = jiff::Timestamp::new(t.secs, 0).map_or_else(
        |_| "?".into(),
        |ts| ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    );
    format!("{whole}.{:06}+00", t.nanos / 1000)
}

/// Appends the recovery settings to `postgresql.auto.conf` (which wins over
/// `postgresql.conf`) and creates `recovery.signal`.
fn write_settings(opts: &RestoreOptions) -> Result<()> {
    let mut lines = vec![
        format!(
            "# Recovery settings written by cairn pg restore at {}",
            super::time_text(Timestamp::now())
        ),
        format!("restore_command = {}", conf_quoted(&opts.restore_command)?),
    ];
    match opts.target {
        Target::Time(t) => lines.push(format!(
            "recovery_target_time = {}",
            conf_quoted(&pg_time(t))?
        )),
        Target::Lsn(lsn) => lines.push(format!(
            "recovery_target_lsn = {}",
            conf_quoted(&format_lsn(lsn))?
        )),
        Target::Latest => {}
    }
    if opts.target != Target::Latest {
        lines.push(format!(
            "recovery_target_action = {}",
            conf_quoted(opts.action.setting())?
        ));
    }
    if opts.no_archive {
        lines.push("archive_mode = off".into());
    }
    let auto = opts.pgdata.join("postgresql.auto.conf");
    let io = |path: &Path, e| Error::io(format!("cannot write {}", path.display()), e);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&auto)
        .map_err(|e| io(&auto, e))?;
    writeln!(file, "\n{}", lines.join("\n"))
        .and_then(|_| file.sync_all())
        .map_err(|e| io(&auto, e))?;
    let signal = opts.pgdata.join("recovery.signal");
    std::fs::File::create(&signal)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&signal, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(n: u8, stop_lsn: u64, stop_secs: i64) -> BaseBackup {
        BaseBackup {
            id: SnapshotId([n; 32]),
            cluster: "main".into(),
            timeline: 1,
            start_lsn: stop_lsn - 100,
            stop_lsn,
            segment_size: 16 << 20,
            start_time: Timestamp {
                secs: stop_secs - 1,
                nanos: 0,
            },
            stop_time: Timestamp {
                secs: stop_secs,
                nanos: 0,
            },
        }
    }

    #[test]
    fn the_newest_backup_complete_by_the_target_is_chosen() {
        let list = [backup(1, 1000, 100), backup(2, 5000, 200)];
        let at = |secs| Target::Time(Timestamp { secs, nanos: 0 });
        assert_eq!(choose(&list, at(150)).unwrap().id, list[0].id);
        assert_eq!(choose(&list, at(200)).unwrap().id, list[1].id);
        assert!(choose(&list, at(99)).is_none());
        assert_eq!(choose(&list, Target::Lsn(4999)).unwrap().id, list[0].id);
        assert_eq!(choose(&list, Target::Latest).unwrap().id, list[1].id);
    }

    #[test]
    fn settings_are_quoted_for_postgresql() {
        assert_eq!(conf_quoted(r"a'b\c").unwrap(), r"'a''b\\c'");
        assert!(conf_quoted("a\nrecovery_target = 'immediate'").is_err());
        let t = Timestamp {
            secs: 1_800_000_000,
            nanos: 123_456_789,
        };
        assert_eq!(pg_time(t), "2027-01-15 08:00:00.123456+00");
    }
}
