use super::snapshots::FilterArgs;
use crate::output::{emit, plural, size};
use crate::{or_env, profile, Context};
use anyhow::{bail, Result};
use cairn_engine::copy::copy;
use cairn_format::SnapshotId;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshots to copy (ID, unique prefix or `latest`); every snapshot
    /// the filters select when none is given.
    snapshots: Vec<String>,
    /// The repository to copy from [default: $CAIRN_FROM_REPOSITORY].
    #[arg(long = "from-repo", value_name = "LOCATION")]
    from_repo: Option<String>,
    #[command(flatten)]
    from: FromPassword,
    #[command(flatten)]
    filter: FilterArgs,
}

/// The password of a second repository, which a command reads from.
#[derive(clap::Args)]
pub struct FromPassword {
    /// Read the password of the repository copied from in this file
    /// [default: $CAIRN_FROM_PASSWORD_FILE].
    #[arg(long = "from-password-file", value_name = "FILE")]
    file: Option<String>,
    /// Run this shell command for the password of the repository copied
    /// from [default: $CAIRN_FROM_PASSWORD_COMMAND].
    #[arg(long = "from-password-command", value_name = "COMMAND")]
    command: Option<String>,
}

impl FromPassword {
    /// The context of the repository at `repo` (or `$CAIRN_FROM_REPOSITORY`)
    /// that `ctx`'s command reads from.
    pub fn context(self, ctx: &Context, repo: Option<String>) -> Result<Context> {
        let Some(repo) = or_env(repo, "CAIRN_FROM_REPOSITORY")? else {
            bail!("no repository to copy from: use --from-repo or set CAIRN_FROM_REPOSITORY");
        };
        let named = profile::resolve(repo, ctx.policy.as_deref())?;
        let password = profile::password(
            Some(&named),
            self.file,
            self.command,
            "CAIRN_FROM_PASSWORD",
            "password of the repository copied from",
        )?;
        Ok(ctx.source(Some(named.location), password))
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let src = args.from.context(ctx, args.from_repo)?.open()?;
    let filter = args.filter.filter()?;
    let mut selected = Vec::new();
    if args.snapshots.is_empty() {
        selected = filter.apply(src.snapshots()?);
    } else {
        for name in &args.snapshots {
            let found = src.find_snapshot(name)?;
            if filter.matches(&found.1) {
                selected.push(found);
            }
        }
    }
    let mut dst = ctx.open_keys()?;
    let shown = ctx.progress("blobs");
    let report = copy(&src, &mut dst, &selected, shown.as_ref().map(|(p, _)| &**p));
    drop(shown);
    let report = report?;
    let copied: Vec<_> = report.copied.iter().map(|(_, to)| *to).collect();
    crate::audit(&dst, "copy", &copied, "ok");
    if ctx.json {
        let wal = cairn_recovery::pg::copy_wal(&src, &dst, &selected)?;
        emit(&json!({
            "message_type": "summary",
            "copied": report.copied.iter()
                .map(|(from, to)| json!({"from": from.to_hex(), "to": to.to_hex()}))
                .collect::<Vec<_>>(),
            "present": report.present.iter().map(SnapshotId::to_hex).collect::<Vec<_>>(),
            "blobs_read": report.blobs_read,
            "blobs_added": report.blobs_added,
            "bytes_added": report.bytes_added,
            "bytes_added_stored": report.bytes_added_stored,
            "wal_files_copied": wal,
        }));
        return Ok(0);
    }
    for (from, to) in &report.copied {
        println!("copied snapshot {} as {}", from.short(), to.short());
    }
    println!(
        "{} copied, {} already there; {} read, {} added ({} stored)",
        plural(report.copied.len() as u64, "snapshot"),
        report.present.len(),
        plural(report.blobs_read, "blob"),
        plural(report.blobs_added, "blob"),
        size(report.bytes_added_stored),
    );
    let wal = cairn_recovery::pg::copy_wal(&src, &dst, &selected)?;
    if wal > 0 {
        println!(
            "{} of PostgreSQL clusters copied",
            plural(wal as u64, "WAL file")
        );
    }
    Ok(0)
}
