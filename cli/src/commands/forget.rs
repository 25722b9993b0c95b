use super::prune;
use super::snapshots::{group_text, FilterArgs};
use crate::output::{emit, json_bytes, local_time, plural, rfc3339};
use crate::Context;
use anyhow::{bail, Result};
use cairn_engine::retention::{self, GroupBy, Policy, Within, DEFAULT_GROUP_BY};
use cairn_format::snapshot::Snapshot;
use cairn_format::SnapshotId;
use cairn_recovery::pg::retention as wal_retention;
use serde_json::json;
use std::collections::HashSet;

#[derive(clap::Args)]
pub struct Args {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest days that have one.
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N newest ISO weeks that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest years that have one.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
    /// Keep every snapshot within this duration of the newest, e.g. `1y5m7d2h`.
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<Within>,
    /// Keep the newest snapshot of each hour within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_hourly: Option<Within>,
    /// Keep the newest snapshot of each day within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_daily: Option<Within>,
    /// Keep the newest snapshot of each week within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_weekly: Option<Within>,
    /// Keep the newest snapshot of each month within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_monthly: Option<Within>,
    /// Keep the newest snapshot of each year within this duration of the newest.
    #[arg(long, value_name = "DURATION")]
    keep_within_yearly: Option<Within>,
    /// Keep every snapshot with this tag; may be repeated (any of them).
    #[arg(long, value_name = "TAG")]
    keep_tag: Vec<String>,
    /// Decide separately for each group: a comma list of `host`, `paths`
    /// and `tags`, or `''` for one group.
    #[arg(long, value_name = "FIELDS")]
    group_by: Option<GroupBy>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Only print each snapshot with the rules that keep it, or `remove`.
    #[arg(long)]
    dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    tuning: prune::Tuning,
    /// Remove these snapshots (ID, unique prefix or `latest`) instead of
    /// applying a policy.
    #[arg(value_name = "SNAPSHOT", conflicts_with_all = ["keep_last", "keep_hourly",
        "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within",
        "keep_within_hourly", "keep_within_daily", "keep_within_weekly",
        "keep_within_monthly", "keep_within_yearly", "keep_tag", "group_by"])]
    snapshots: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let policy = Policy {
        last: args.keep_last,
        hourly: args.keep_hourly,
        daily: args.keep_daily,
        weekly: args.keep_weekly,
        monthly: args.keep_monthly,
        yearly: args.keep_yearly,
        within: args.keep_within,
        within_hourly: args.keep_within_hourly,
        within_daily: args.keep_within_daily,
        within_weekly: args.keep_within_weekly,
        within_monthly: args.keep_within_monthly,
        within_yearly: args.keep_within_yearly,
        tags: args.keep_tag,
    };
    let filter = args.filter.filter()?;
    if args.snapshots.is_empty() && policy.is_empty() {
        bail!("no retention policy given (such as --keep-daily 7) and no snapshot named: nothing is removed");
    }
    // Listing and removing snapshots needs no index; prune loads it.
    let mut repo = ctx.open_keys()?;
    let snapshots = filter.apply(repo.snapshots()?);
    let mut remove = Vec::new();
    if args.snapshots.is_empty() {
        let tz = jiff::tz::TimeZone::system();
        let by = args.group_by.unwrap_or(DEFAULT_GROUP_BY);
        let groups = retention::apply(&snapshots, &policy, &by, &tz)?;
        let found: std::collections::HashMap<_, _> =
            snapshots.iter().map(|(id, s)| (*id, s)).collect();
        for (i, group) in groups.iter().enumerate() {
            if i > 0 && !ctx.json {
                println!();
            }
            if !ctx.json {
                println!("{}:", group_text(&group.key));
            }
            for d in &group.decisions {
                let reasons: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
                decision(ctx, &d.id, found[&d.id], &reasons);
                if d.reasons.is_empty() {
                    remove.push(d.id);
                }
            }
        }
    } else {
        let mut seen = HashSet::new();
        let now = cairn_format::Timestamp::now();
        for name in &args.snapshots {
            let (id, s) = repo.find_snapshot(name)?;
            // Every hold is checked before anything is removed.
            cairn_engine::hold::check_removable(&id, &s.tags, now)?;
            if seen.insert(id) {
                decision(ctx, &id, &s, &[]);
                remove.push(id);
            }
        }
    }
    let kept = snapshots
        .iter()
        .filter(|(id, _)| !remove.contains(id))
        .count();
    let summary = |wal_removed: usize| {
        json!({
            "message_type": "summary",
            "dry_run": args.dry_run,
            "snapshots": snapshots.len(),
            "kept": kept,
            "removed": remove.iter().map(SnapshotId::to_hex).collect::<Vec<_>>(),
            "wal_files_removed": wal_removed,
        })
    };
    if args.dry_run {
        match ctx.json {
            true => emit(&summary(0)),
            false => println!(
                "would remove {} of {}",
                remove.len(),
                plural(snapshots.len() as u64, "snapshot")
            ),
        }
        return Ok(0);
    }
    for (done, id) in remove.iter().enumerate() {
        if let Err(e) = repo.remove_snapshot(id) {
            crate::audit(&repo, "forget", &remove[..done], &format!("failed: {e}"));
            return Err(e.into());
        }
    }
    crate::audit(&repo, "forget", &remove, "ok");
    if !ctx.json {
        println!("removed {}", plural(remove.len() as u64, "snapshot"));
    }
    let wal_removed = expire_wal(ctx, &repo)?;
    let pruned = match args.prune {
        true => Some(prune::run_on(ctx, &mut repo, args.tuning, false)?),
        false => None,
    };
    match (ctx.json, pruned) {
        (true, pruned) => {
            let mut summary = summary(wal_removed);
            if let Some(r) = pruned {
                let mut prune = prune::summary(&r, false);
                prune.as_object_mut().map(|o| o.remove("message_type"));
                summary["prune"] = prune;
            }
            emit(&summary);
        }
        (false, Some(r)) => prune::print_report(&r, false),
        (false, None) => {}
    }
    Ok(0)
}

/// Shows what becomes of snapshot `id`: kept for `reasons`, or removed
/// when there are none.
fn decision(ctx: &Context, id: &SnapshotId, s: &Snapshot, reasons: &[String]) {
    if ctx.json {
        emit(&json!({
            "message_type": "snapshot",
            "id": id.to_hex(),
            "time": rfc3339(s.time),
            "hostname": s.hostname,
            "paths": s.paths.iter().map(|p| json_bytes(p)).collect::<Vec<_>>(),
            "tags": s.tags,
            "action": if reasons.is_empty() { "remove" } else { "keep" },
            "reasons": reasons,
        }));
        return;
    }
    let verdict = match reasons.is_empty() {
        true => "remove".to_string(),
        false => format!("keep ({})", reasons.join(", ")),
    };
    println!(
        "{:<8}  {:<19}  {:<16}  {:<16}  {verdict}",
        id.short(),
        local_time(s.time),
        s.hostname,
        s.tags.join(",")
    );
}

/// Removes the archived PostgreSQL WAL that no kept base backup needs any
/// more: what lies before the oldest one of each cluster. Returns how many
/// files it removed.
fn expire_wal(ctx: &Context, repo: &cairn_engine::Repository) -> Result<usize> {
    let mut count = 0;
    for (cluster, backups) in cairn_recovery::pg::by_cluster(&repo.snapshots()?) {
        let removed = wal_retention::expire(repo, &cluster, &backups)?;
        count += removed.len();
        if !removed.is_empty() && !ctx.json {
            println!(
                "removed {} of cluster {cluster} older than its oldest base backup",
                plural(removed.len() as u64, "WAL file")
            );
        }
    }
    Ok(count)
}
