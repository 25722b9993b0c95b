//! `cairn audit`: the repository's audit log — who changed it, restored or
//! drilled from it, when, and how it ended — and `--verify`, whether the
//! log is whole.

use crate::output::{local_time, parse_time};
use crate::{Context, EXIT_DAMAGED};
use anyhow::Result;
use cairn_engine::audit::{self, AuditReport};
use cairn_format::Timestamp;

#[derive(clap::Args)]
pub struct Args {
    /// Only records from this time on (local, as `2026-03-29 01:30`, or RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<Timestamp>,
    /// Check that no record is missing or out of order and that every
    /// snapshot is accounted for; exit 4 if not.
    #[arg(long, conflicts_with_all = ["since", "json"])]
    verify: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open_keys()?;
    if args.verify {
        let report = audit::verify(&repo)?;
        for line in problems(&report) {
            eprintln!("{line}");
        }
        return Ok(match report.is_intact() {
            true => {
                println!("audit log intact: {} records", report.records);
                0
            }
            false => EXIT_DAMAGED,
        });
    }
    let (records, unreadable) = audit::records(&repo)?;
    for e in &unreadable {
        eprintln!("warning: {e}");
    }
    let shown = records
        .iter()
        .filter(|(_, r)| args.since.is_none_or(|t| r.time >= t));
    if ctx.json {
        let list: Vec<serde_json::Value> = shown
            .map(|(id, r)| {
                serde_json::json!({
                    "id": id.to_hex(),
                    "time": r.time.secs,
                    "host": r.hostname,
                    "user": r.username,
                    "command": r.command,
                    "snapshots": r.snapshots.iter().map(|s| s.to_hex()).collect::<Vec<_>>(),
                    "outcome": r.outcome,
                    "previous": r.previous.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    for (_, r) in shown {
        let snapshots: Vec<String> = r.snapshots.iter().map(|s| s.short()).collect();
        let involved = match snapshots.is_empty() {
            true => String::new(),
            false => format!("  snapshots {}", snapshots.join(" ")),
        };
        println!(
            "{}  {}@{}  {}: {}{involved}",
            local_time(r.time),
            r.username,
            r.hostname,
            r.command,
            r.outcome
        );
    }
    Ok(0)
}

/// What is wrong with the audit log, a line each.
pub fn problems(report: &AuditReport) -> Vec<String> {
    let mut out = Vec::new();
    for (missing, by) in &report.missing {
        out.push(format!(
            "audit log: record {} is missing (record {} names it)",
            missing.short(),
            by.short()
        ));
    }
    for id in &report.out_of_order {
        out.push(format!(
            "audit log: record {} is dated before a record it names",
            id.short()
        ));
    }
    for e in &report.unreadable {
        out.push(format!("audit log: {e}"));
    }
    if report.empty {
        out.push(
            "audit log: no records, although the repository has snapshots (deleted, or \
             the repository is older than the audit log and nothing changed it since)"
                .to_string(),
        );
    }
    for id in &report.unaccounted {
        out.push(format!(
            "audit log: no record accounts for snapshot {}",
            id.short()
        ));
    }
    out
}
