//! What the dashboard may change, with `--allow-actions`: back up a source
//! now, drill it, restore a path of a snapshot into a folder on this
//! machine. Each is shown on a confirmation page (GET) and done by its
//! form (POST, with the run's CSRF token); each is recorded in the audit
//! log of the repository it touched (run and drill record themselves).

use super::pages::{blocking, form, html, located, node_at, Fail, Message, Nav, Page};
use super::{paths, App};
use crate::commands::run::done;
use crate::output::plural;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cairn_format::SnapshotId;
use cairn_recovery::drill::{drill, DrillOptions};
use cairn_recovery::run::{run, Backup, RunOptions};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm {
    nav: Nav,
    what: String,
    verb: &'static str,
    action: String,
    back: String,
    fields: Vec<(&'static str, String)>,
}

/// The form of an action: the CSRF token, and where to restore to.
#[derive(Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
}

/// The refusal of an action when actions are off, or (for its POST) when
/// the form's CSRF token is not this run's.
fn refused(app: &App, csrf: Option<&str>) -> Option<Response> {
    let why = if !app.allow_actions {
        "actions are off: start cairn ui with --allow-actions to allow them\n"
    } else if csrf.is_some_and(|c| !app.auth.csrf_ok(c)) {
        "the form's CSRF token is missing or wrong\n"
    } else {
        return None;
    };
    Some((StatusCode::FORBIDDEN, why).into_response())
}

/// The source `name` of the policy, and the policy file's path.
fn source<'a>(
    app: &'a App,
    name: &str,
) -> Result<(&'a std::path::Path, &'a cairn_recovery::Policy), Fail> {
    let (path, policy) = app
        .ui
        .policy
        .as_ref()
        .ok_or_else(|| Fail::NotFound("no policy file: there are no sources".into()))?;
    match policy.sources.contains_key(name) {
        true => Ok((path, policy)),
        false => Err(Fail::NotFound(format!(
            "no source {name} in the policy file"
        ))),
    }
}

/// The page telling what an action did.
fn outcome(app: &App, title: &'static str, message: String) -> Result<Response, Fail> {
    app.ui.read_again();
    html(Message {
        nav: app.nav(),
        title,
        message,
    })
}

/// The actions on a source.
#[derive(Clone, Copy)]
enum Step {
    Run,
    Drill,
}

/// The confirmation page of `step` on the source `name`.
async fn confirm_step(app: Arc<App>, name: String, step: Step) -> Response {
    if let Some(refusal) = refused(&app, None) {
        return refusal;
    }
    blocking(app, move |app| {
        let (_, policy) = source(app, &name)?;
        let from = &policy.sources[&name].to[0];
        let (what, verb, path) = match step {
            Step::Run => (
                format!("Back up source {name} now, copy it to its other repositories and apply its keep rules?"),
                "back it up now",
                "run",
            ),
            Step::Drill => (
                format!("Drill source {name}: restore its newest snapshot from {from} into a scratch folder on this machine, verify it, time it against the RTO and record the result?"),
                "drill it now",
                "drill",
            ),
        };
        let link = paths::encode(name.as_bytes());
        html(Confirm {
            nav: app.nav(),
            what,
            verb,
            action: format!("/source/{link}/{path}"),
            back: format!("/source/{link}"),
            fields: Vec::new(),
        })
    })
    .await
}

pub async fn confirm_run(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    confirm_step(app, name, Step::Run).await
}

pub async fn confirm_drill(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    confirm_step(app, name, Step::Drill).await
}

pub async fn run_now(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    take_step(app, name, &body, Step::Run).await
}

pub async fn drill_now(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    take_step(app, name, &body, Step::Drill).await
}

/// Takes `step` on the source `name`, asked for by the form in `body`.
async fn take_step(app: Arc<App>, name: String, body: &[u8], step: Step) -> Response {
    let form: ActionForm = form(body);
    if let Some(refusal) = refused(&app, Some(&form.csrf)) {
        return refusal;
    }
    blocking(app, move |app| match step {
        Step::Run => run_source(app, &name),
        Step::Drill => drill_source(app, &name),
    })
    .await
}

/// Backs up the source `name` now, with its copies and keep rules.
fn run_source(app: &App, name: &str) -> Page {
    let (path, policy) = source(app, name)?;
    let opts = RunOptions {
        force: true,
        ..Default::default()
    };
    let mut open = |repo: &str, _fresh: bool| app.ui.open(repo);
    let report = run(policy, path, &[name.to_string()], &opts, &mut open).map_err(Fail::Server)?;
    let mut lines: Vec<String> = report.sources.iter().flat_map(done).collect();
    let failures = report.failures();
    lines.extend(
        failures
            .iter()
            .map(|(s, what)| format!("{s}: FAILED: {what}")),
    );
    lines.extend(
        report
            .sources
            .iter()
            .flat_map(|s| &s.warnings)
            .map(|w| format!("warning: {w}")),
    );
    let (title, record) = match failures.first() {
        None => ("Backed up", "ok".to_string()),
        Some((_, what)) => ("The run failed", what.clone()),
    };
    let made: Vec<SnapshotId> = report
        .sources
        .iter()
        .filter_map(|s| match s.backup {
            Some(Backup::Made { id, .. }) => Some(id),
            _ => None,
        })
        .collect();
    lines.extend(record_action(
        app,
        &policy.sources[name].to[0],
        "ui: run",
        &made,
        &record,
    ));
    outcome(app, title, lines.join("; "))
}

/// Records an action the dashboard took in the audit log of `repo`: that
/// it came from here, and how it ended (the repository's own records say
/// what it did); a warning when the record cannot be written.
fn record_action(
    app: &App,
    repo: &str,
    command: &str,
    snapshots: &[SnapshotId],
    outcome: &str,
) -> Option<String> {
    let warning = match app.ui.read(repo) {
        Some(Ok(read)) => cairn_engine::audit::try_record(&read.repo, command, snapshots, outcome),
        Some(Err(e)) => Some(format!("cannot record {command} in the audit log: {e}")),
        None => Some(format!("cannot record {command}: no repository {repo}")),
    };
    warning.map(|w| format!("warning: {w}"))
}

/// Drills the source `name` from its first repository.
fn drill_source(app: &App, name: &str) -> Page {
    let (_, policy) = source(app, name)?;
    let source = &policy.sources[name];
    let from = &source.to[0];
    let drilled = app
        .ui
        .open(from)
        .and_then(|repo| drill(&repo, name, source, from, &DrillOptions::default()));
    let drilled = match drilled {
        Ok(d) => d,
        Err(e) => {
            let warning = record_action(app, from, "ui: drill", &[], &e);
            return Err(Fail::Server(
                warning.map_or(e.clone(), |w| format!("{e}; {w}")),
            ));
        }
    };
    let r = &drilled.result;
    let mut message = format!(
        "Drill of {} from {}: {} in {:.2} s",
        r.snapshot.short(),
        from,
        if r.passed { "passed" } else { "FAILED" },
        r.duration_nanos as f64 / 1e9
    );
    if !r.passed {
        message.push_str(&format!(": {}", r.reason));
    }
    let record = if r.passed {
        "ok".to_string()
    } else {
        r.reason.clone()
    };
    let warnings = drilled.warnings.iter().map(|w| format!("warning: {w}"));
    let warnings = warnings.chain(record_action(
        app,
        from,
        "ui: drill",
        &[r.snapshot],
        &record,
    ));
    for w in warnings {
        message.push_str(&format!("; {w}"));
    }
    outcome(app, "Drilled", message)
}

#[derive(Deserialize)]
pub struct TargetQuery {
    #[serde(default)]
    target: String,
}

/// The folder to restore into: an absolute path, or an error saying so.
fn target(given: &str) -> Result<std::path::PathBuf, Fail> {
    let path = std::path::PathBuf::from(given.trim());
    match path.is_absolute() {
        true => Ok(path),
        false => Err(Fail::Bad(format!(
            "restore needs an absolute folder on this machine, not {given:?}"
        ))),
    }
}

pub async fn confirm_restore(
    State(app): State<Arc<App>>,
    Query(q): Query<TargetQuery>,
    uri: Uri,
) -> Response {
    if let Some(refusal) = refused(&app, None) {
        return refusal;
    }
    blocking(app, move |app| {
        let (repo, read, index, names) = located(app, &uri)?;
        let (id, snap) = &read.snapshots[index];
        let inner = paths::inner(&names);
        node_at(&read.repo, snap, &inner)?;
        let into = target(&q.target)?;
        html(Confirm {
            nav: app.nav(),
            what: format!(
                "Restore {} of snapshot {} ({} of {}) into {} on this machine? Files there with the same names are replaced.",
                inner.display(),
                id.short(),
                crate::output::local_time(snap.time),
                repo,
                into.display()
            ),
            verb: "restore",
            action: uri.path().to_string(),
            back: uri.path().replacen("/restore/", "/b/", 1),
            fields: vec![("target", into.display().to_string())],
        })
    })
    .await
}

pub async fn restore_now(State(app): State<Arc<App>>, uri: Uri, body: Bytes) -> Response {
    let form: ActionForm = form(&body);
    if let Some(refusal) = refused(&app, Some(&form.csrf)) {
        return refusal;
    }
    blocking(app, move |app| {
        let (_, read, index, names) = located(app, &uri)?;
        let (id, snap) = &read.snapshots[index];
        let inner = paths::inner(&names);
        node_at(&read.repo, snap, &inner)?;
        let into = target(&form.target)?;
        let subpath = (!names.is_empty()).then_some(inner.as_path());
        let restored = cairn_engine::restore::restore(&read.repo, snap, subpath, &into);
        let (record, mut message) = match &restored {
            Ok(r) if r.errors.is_empty() => (
                format!("ok, into {}", into.display()),
                format!(
                    "Restored {} of snapshot {} into {}: {}, {}",
                    inner.display(),
                    id.short(),
                    into.display(),
                    plural(r.files, "file"),
                    plural(r.dirs, "folder")
                ),
            ),
            Ok(r) => {
                let failed = format!(
                    "{} could not be restored, into {}",
                    plural(r.errors.len() as u64, "entry"),
                    into.display()
                );
                let first = r
                    .errors
                    .iter()
                    .take(3)
                    .map(|(p, e)| format!("{}: {e}", p.display()));
                let first: Vec<String> = first.collect();
                (failed.clone(), format!("{failed}: {}", first.join("; ")))
            }
            Err(e) => (e.to_string(), format!("The restore failed: {e}")),
        };
        let audited = cairn_engine::audit::try_record(&read.repo, "ui: restore", &[*id], &record);
        if let Some(w) = audited {
            message.push_str(&format!(" (warning: {w})"));
        }
        outcome(app, "Restore", message)
    })
    .await
}
