//! A [`Status`] in the text format of Prometheus' node_exporter textfile
//! collector, written so that the collector never reads half a file.

use crate::status::{State, Status};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The metrics of `status`, in Prometheus' text exposition format.
pub fn prometheus(status: &Status) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let per_source = |value: &dyn Fn(&crate::status::SourceStatus) -> Option<f64>| {
        status
            .sources
            .iter()
            .filter_map(|s| Some((format!("source=\"{}\"", escape(&s.source)), value(s)?)))
            .collect::<Vec<_>>()
    };
    let per_copy = |value: &dyn Fn(&crate::status::RepositoryStatus) -> Option<f64>| {
        let mut samples = Vec::new();
        for s in &status.sources {
            for r in &s.repositories {
                if let Some(v) = value(r) {
                    let labels = format!(
                        "source=\"{}\",repository=\"{}\"",
                        escape(&s.source),
                        escape(&r.repository)
                    );
                    samples.push((labels, v));
                }
            }
        }
        samples
    };
    family(
        "cairn_rpo_seconds",
        "The recovery point objective of the source: the most data, in time, it may lose.",
        per_source(&|s| Some(s.rpo_seconds as f64)),
    );
    family(
        "cairn_rto_seconds",
        "The recovery time objective of the source: how long a restore may take.",
        per_source(&|s| s.rto_seconds.map(|r| r as f64)),
    );
    family(
        "cairn_three_two_one",
        "1 if the source goes to two repositories or more, on two kinds of storage, one not local.",
        per_source(&|s| Some(f64::from(u8::from(s.three_two_one.holds)))),
    );
    family(
        "cairn_last_drill_timestamp_seconds",
        "When the source's last restore drill ran.",
        per_source(&|s| s.last_drill.as_ref().map(|d| d.time as f64)),
    );
    family(
        "cairn_last_drill_duration_seconds",
        "The recovery time the source's last restore drill measured: restore and verification.",
        per_source(&|s| s.last_drill.as_ref().map(|d| d.duration_seconds)),
    );
    family(
        "cairn_last_drill_success",
        "1 if the source's last restore drill restored and verified everything.",
        per_source(&|s| s.last_drill.as_ref().map(|d| f64::from(u8::from(d.passed)))),
    );
    family(
        "cairn_drill_objectives_met",
        "1 if the source's last drill passed within the RTO and is as recent as the source asks.",
        per_source(&|s| Some(f64::from(u8::from(s.drill_holds)))),
    );
    family(
        "cairn_last_success_timestamp_seconds",
        "When the newest snapshot of the source in the repository was taken.",
        per_copy(&|r| r.newest.as_ref().map(|n| n.time as f64)),
    );
    family(
        "cairn_snapshot_age_seconds",
        "Age of the newest snapshot of the source in the repository.",
        per_copy(&|r| r.newest.as_ref().map(|n| n.age_seconds as f64)),
    );
    family(
        "cairn_rpo_met",
        "1 if the newest snapshot of the source in the repository is within its RPO.",
        per_copy(&|r| Some(f64::from(u8::from(r.state == State::Ok)))),
    );
    family(
        "cairn_objectives_met",
        "1 if every objective of the source holds in the repository: its RPO, and a recent enough check that found nothing wrong.",
        per_copy(&|r| Some(f64::from(u8::from(r.holds)))),
    );
    family(
        "cairn_last_failure_timestamp_seconds",
        "When a step of the source for the repository last failed, as the journals record it.",
        per_copy(&|r| r.last_failure.as_ref().map(|f| f.time as f64)),
    );
    let per_repository = |value: &dyn Fn(&crate::status::RepositoryStatus) -> Option<f64>| {
        let values: BTreeMap<&str, f64> = status
            .sources
            .iter()
            .flat_map(|s| &s.repositories)
            .filter_map(|r| Some((r.repository.as_str(), value(r)?)))
            .collect();
        values
            .into_iter()
            .map(|(r, v)| (format!("repository=\"{}\"", escape(r)), v))
            .collect::<Vec<_>>()
    };
    family(
        "cairn_repository_reachable",
        "1 if the repository could be opened and its snapshots listed.",
        per_repository(&|r| Some(f64::from(u8::from(r.state != State::Unreachable)))),
    );
    family(
        "cairn_last_check_timestamp_seconds",
        "When the repository was last checked.",
        per_repository(&|r| r.last_check.as_ref().map(|c| c.time as f64)),
    );
    family(
        "cairn_last_check_problems",
        "Problems the last check of the repository found; 0 when it is sound.",
        per_repository(&|r| r.last_check.as_ref().map(|c| c.problems as f64)),
    );
    out
}

/// A label value with backslashes, double quotes and line feeds escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `text` to `path` through a temporary file in the same folder,
/// synced and renamed over it: a reader sees the old file or the new one.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    // Readable by the collector, which seldom runs as the same user.
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
