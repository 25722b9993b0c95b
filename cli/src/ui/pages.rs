//! The dashboard's pages: each handler reads what it shows (on a blocking
//! thread: the engine reads storage) and renders a template.

use super::paths;
use super::state::Read;
use super::App;
use crate::output::{kind_name, local_time, mode_string, plural, size, text};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use cairn_engine::retention::{self, DEFAULT_GROUP_BY};
use cairn_engine::{browse, diff, journal, stats};
use cairn_format::journal::Event;
use cairn_format::tree::NodeKind;
use cairn_format::Timestamp;
use cairn_recovery::status::{source_tag, State as RepoState, Status};
use cairn_recovery::Interval;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Entries of a directory shown on one page.
const PAGE: usize = 1000;
/// Changes of a diff shown at most.
const SHOWN_CHANGES: usize = 5000;

/// Why a page cannot be shown.
pub enum Fail {
    /// What was asked for does not exist (or may not be asked for).
    NotFound(String),
    /// The request is malformed (a form field that cannot be used).
    Bad(String),
    /// Reading what the page shows failed.
    Server(String),
}

impl Fail {
    fn engine(e: cairn_engine::Error) -> Fail {
        Fail::Server(e.to_string())
    }
}

/// A page, or why it cannot be shown.
pub type Page = Result<Response, Fail>;

/// What every page shows in its navigation bar.
pub struct Nav {
    pub(super) policy: bool,
    /// Repository names and their link.
    pub(super) repos: Vec<(String, String)>,
    pub(super) login: bool,
    /// Whether actions are offered.
    pub(super) actions: bool,
    pub(super) csrf: String,
}

impl App {
    pub(super) fn nav(&self) -> Nav {
        Nav {
            policy: self.ui.policy.is_some(),
            repos: self
                .ui
                .repos
                .keys()
                .map(|n| (n.clone(), paths::encode(n.as_bytes())))
                .collect(),
            login: self.auth.needs_login(),
            actions: self.allow_actions,
            csrf: self.auth.csrf.clone(),
        }
    }

    /// Repository `name`, read; not found when the dashboard has none of
    /// that name.
    fn repo(&self, name: &str) -> Result<Arc<Read>, Fail> {
        match self.ui.read(name) {
            None => Err(Fail::NotFound(format!("no repository {name}"))),
            Some(read) => read.map_err(Fail::Server),
        }
    }
}

/// Renders `page` as HTML.
pub fn html(page: impl Template) -> Page {
    page.render()
        .map(|h| Html(h).into_response())
        .map_err(|e| Fail::Server(format!("cannot render the page: {e}")))
}

/// Runs `page` on a blocking thread and answers with what it made, or
/// with a page saying why it could not.
pub async fn blocking(app: Arc<App>, page: impl FnOnce(&App) -> Page + Send + 'static) -> Response {
    let nav_app = app.clone();
    let made = tokio::task::spawn_blocking(move || page(&app)).await;
    let (status, title, message) = match made {
        Ok(Ok(response)) => return response,
        Ok(Err(Fail::NotFound(m))) => (StatusCode::NOT_FOUND, "Not found", m),
        Ok(Err(Fail::Bad(m))) => (StatusCode::BAD_REQUEST, "Cannot do this", m),
        Ok(Err(Fail::Server(m))) => (StatusCode::INTERNAL_SERVER_ERROR, "Cannot show this", m),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Cannot show this",
            e.to_string(),
        ),
    };
    let page = Message {
        nav: nav_app.nav(),
        title,
        message,
    };
    match page.render() {
        Ok(h) => (status, Html(h)).into_response(),
        Err(_) => (status, "cannot render the page\n").into_response(),
    }
}

/// A page of one message: an error, or what an action did.
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub nav: Nav,
    pub title: &'static str,
    pub message: String,
}

pub async fn not_found(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(app, move |_| {
        Err(Fail::NotFound(format!("nothing at {}", uri.path())))
    })
    .await
}

pub async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../templates/style.css"),
    )
        .into_response()
}

// ---- Overview -------------------------------------------------------------

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    nav: Nav,
    verdict: String,
    verdict_class: &'static str,
    assessed: String,
    sources: Vec<SourceRow>,
}

struct SourceRow {
    name: String,
    link: String,
    rpo: String,
    rto: Option<String>,
    repos: Vec<RepoRow>,
    drill: String,
    drill_class: &'static str,
    rule: String,
    rule_class: &'static str,
}

struct RepoRow {
    name: String,
    link: String,
    class: &'static str,
    state: &'static str,
    /// Full ID, short ID, time.
    newest: Option<(String, String, String)>,
    error: String,
    age: String,
    failure: String,
    check: String,
}

fn interval(secs: u64) -> String {
    Interval::from_secs(secs).map_or("0s".into(), |i| i.to_string())
}

fn at(secs: i64) -> String {
    local_time(Timestamp { secs, nanos: 0 })
}

pub async fn overview(State(app): State<Arc<App>>) -> Response {
    if app.ui.policy.is_none() {
        let first = app.ui.repos.keys().next().cloned().unwrap_or_default();
        return Redirect::to(&format!("/r/{}", paths::encode(first.as_bytes()))).into_response();
    }
    blocking(app, |app| {
        let status = app.ui.status().expect("there is a policy");
        let status = status
            .as_ref()
            .as_ref()
            .map_err(|e| Fail::Server(e.clone()))?;
        html(overview_page(app, status))
    })
    .await
}

fn overview_page(app: &App, status: &Status) -> Overview {
    let sources: Vec<SourceRow> = status.sources.iter().map(source_row).collect();
    let breached = status
        .sources
        .iter()
        .filter(|s| !s.drill_holds || s.repositories.iter().any(|r| !r.holds));
    let (verdict, verdict_class) = match breached.count() {
        0 => ("Every objective holds".to_string(), "ok"),
        n => (
            format!("{} not within its objectives", plural(n as u64, "source")),
            "bad",
        ),
    };
    Overview {
        nav: app.nav(),
        verdict,
        verdict_class,
        assessed: at(status.time),
        sources,
    }
}

fn source_row(s: &cairn_recovery::status::SourceStatus) -> SourceRow {
    let repos = s
        .repositories
        .iter()
        .map(|r| {
            let (class, state) = match r.state {
                RepoState::Unreachable => ("bad", "UNREACHABLE"),
                RepoState::Breach => ("bad", "BREACH"),
                RepoState::Ok => match &r.newest {
                    // Within 20% of the limit: amber.
                    Some(n)
                        if n.age_seconds.saturating_mul(5) > s.rpo_seconds.saturating_mul(4) =>
                    {
                        ("warn", "NEAR RPO")
                    }
                    _ => ("ok", "OK"),
                },
            };
            let failure = r.last_failure.as_ref().map_or(String::new(), |f| {
                format!(
                    "{} failed at {} on {}: {}",
                    f.step,
                    at(f.time),
                    f.host,
                    f.message
                )
            });
            let check = match &r.last_check {
                Some(c) if c.problems > 0 => format!(
                    "DAMAGED at {}: {}",
                    at(c.time),
                    plural(c.problems, "problem")
                ),
                Some(c) => format!(
                    "{}{}, no problems",
                    if r.check_overdue {
                        "overdue; last "
                    } else {
                        ""
                    },
                    at(c.time)
                ),
                None if r.check_overdue => "never checked (overdue)".into(),
                None => "never checked".into(),
            };
            RepoRow {
                name: r.repository.clone(),
                link: paths::encode(r.repository.as_bytes()),
                class,
                state,
                newest: r
                    .newest
                    .as_ref()
                    .map(|n| (n.id.clone(), n.id[..8].to_string(), at(n.time))),
                error: r.error.clone().unwrap_or_else(|| "no snapshot".into()),
                age: r.newest.as_ref().map_or("—".into(), |n| {
                    format!("{} of {}", interval(n.age_seconds), interval(s.rpo_seconds))
                }),
                failure,
                check,
            }
        })
        .collect();
    let (drill, drill_class) = match &s.last_drill {
        None if s.drill_overdue => ("Drill overdue: no restore drill recorded".into(), "bad"),
        None => ("No restore drill recorded".into(), "muted"),
        Some(d) => {
            let rto = s.rto_seconds.map_or(String::new(), |r| {
                format!(" against an RTO of {}", interval(r))
            });
            let head = match (d.passed, d.rto_met, s.drill_overdue) {
                (false, _, _) => "Last drill FAILED",
                (true, Some(false), _) => "Last drill MISSED the RTO",
                (true, _, true) => "Drill overdue; the last passed",
                _ => "Last drill passed",
            };
            let why = if d.passed {
                String::new()
            } else {
                format!(": {}", d.reason)
            };
            (
                format!(
                    "{head} at {} on {}: restored {} in {:.2} s{rto}{why}",
                    at(d.time),
                    d.host,
                    size(d.bytes),
                    d.duration_seconds
                ),
                if s.drill_holds { "ok" } else { "bad" },
            )
        }
    };
    let rule = &s.three_two_one;
    SourceRow {
        name: s.source.clone(),
        link: paths::encode(s.source.as_bytes()),
        rpo: interval(s.rpo_seconds),
        rto: s.rto_seconds.map(interval),
        repos,
        drill,
        drill_class,
        rule: format!(
            "{} ({}, {}, {})",
            if rule.holds { "holds" } else { "does not hold" },
            plural(rule.copies as u64, "copy"),
            plural(rule.kinds as u64, "kind of storage"),
            if rule.offsite {
                "one not local"
            } else {
                "all local"
            }
        ),
        rule_class: if rule.holds { "ok" } else { "warn" },
    }
}

// ---- Source -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage {
    nav: Nav,
    name: String,
    link: String,
    rpo: String,
    rto: Option<String>,
    repo: String,
    repo_link: String,
    error: Option<String>,
    snapshots_chart: String,
    drills_chart: String,
    drills: Vec<DrillRow>,
    retention: String,
    removed_next: Vec<String>,
}

struct DrillRow {
    class: &'static str,
    time: String,
    host: String,
    repository: String,
    snapshot: String,
    duration: String,
    restored: String,
    result: String,
}

pub async fn source(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    blocking(app, move |app| {
        let (_, policy) = app
            .ui
            .policy
            .as_ref()
            .ok_or_else(|| Fail::NotFound("no policy file: there are no sources".into()))?;
        let source = policy
            .sources
            .get(&name)
            .ok_or_else(|| Fail::NotFound(format!("no source {name} in the policy file")))?;
        let primary = source.to.first().cloned().unwrap_or_default();
        let tag = source_tag(&name);
        let mut page = SourcePage {
            nav: app.nav(),
            link: paths::encode(name.as_bytes()),
            rpo: interval(source.rpo.duration().as_secs()),
            rto: source.rto.map(|r| interval(r.duration().as_secs())),
            repo_link: paths::encode(primary.as_bytes()),
            repo: primary.clone(),
            error: None,
            snapshots_chart: String::new(),
            drills_chart: String::new(),
            drills: Vec::new(),
            retention: "No keep rules: every snapshot is kept.".into(),
            removed_next: Vec::new(),
            name,
        };
        let mut drills = Vec::new();
        for repo in &source.to {
            let Some(Ok(read)) = app.ui.read(repo) else {
                continue;
            };
            let (entries, _) = journal::entries(&read.repo).map_err(Fail::engine)?;
            for (_, e) in entries {
                if let Event::Drill(d) = e.event {
                    if d.source == page.name {
                        drills.push((e.time, e.hostname, d));
                    }
                }
            }
        }
        drills.sort_by_key(|d| std::cmp::Reverse(d.0));
        let rto = source.rto.map(|r| r.duration().as_secs_f64());
        page.drills_chart = super::chart::drills(&drills, rto);
        page.drills = drills
            .iter()
            .map(|(time, host, d)| DrillRow {
                class: match (d.passed, rto) {
                    (false, _) => "bad",
                    (true, Some(r)) if d.duration_nanos as f64 / 1e9 > r => "bad",
                    _ => "ok",
                },
                time: local_time(*time),
                host: host.clone(),
                repository: d.repository.clone(),
                snapshot: d.snapshot.short(),
                duration: format!("{:.2} s", d.duration_nanos as f64 / 1e9),
                restored: format!("{}, {}", size(d.bytes), plural(d.files, "file")),
                result: match d.passed {
                    true => "passed".into(),
                    false => format!("failed: {}", d.reason),
                },
            })
            .collect();
        match app.ui.read(&primary) {
            Some(Ok(read)) => {
                let tagged: Vec<_> = read
                    .snapshots
                    .iter()
                    .filter(|(_, s)| s.tags.contains(&tag))
                    .cloned()
                    .collect();
                page.snapshots_chart = super::chart::snapshots(&tagged);
                if let Some(keep) = &source.keep {
                    let groups = retention::apply(
                        &tagged,
                        &keep.retention(),
                        &DEFAULT_GROUP_BY,
                        &jiff::tz::TimeZone::system(),
                    )
                    .map_err(Fail::engine)?;
                    let removed: Vec<_> = groups
                        .iter()
                        .flat_map(|g| &g.decisions)
                        .filter(|d| d.reasons.is_empty())
                        .filter_map(|d| tagged.iter().find(|(id, _)| *id == d.id))
                        .collect();
                    page.retention = match removed.len() {
                        0 => "The keep rules remove no snapshot at the next run.".into(),
                        n => format!(
                            "The keep rules remove {} at the next run:",
                            plural(n as u64, "snapshot")
                        ),
                    };
                    page.removed_next = removed
                        .iter()
                        .map(|(id, s)| format!("{} {}", id.short(), local_time(s.time)))
                        .collect();
                }
            }
            Some(Err(e)) => page.error = Some(e),
            None => page.error = Some(format!("no repository {primary}")),
        }
        html(page)
    })
    .await
}

// ---- Snapshots ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "snapshots.html")]
struct Snapshots {
    nav: Nav,
    repo: String,
    link: String,
    source: Option<String>,
    count: String,
    rows: Vec<SnapshotRow>,
}

struct SnapshotRow {
    time: String,
    id: String,
    short: String,
    host: String,
    paths: String,
    tags: String,
    files: String,
    added: String,
    size: String,
    previous: Option<String>,
}

#[derive(Deserialize)]
pub struct SourceQuery {
    source: Option<String>,
}

pub async fn snapshots(
    State(app): State<Arc<App>>,
    Path(repo): Path<String>,
    Query(q): Query<SourceQuery>,
) -> Response {
    blocking(app, move |app| {
        let read = app.repo(&repo)?;
        let source = q.source.filter(|s| !s.is_empty());
        let tag = source.as_deref().map(source_tag);
        let shown: Vec<_> = read
            .snapshots
            .iter()
            .filter(|(_, s)| tag.as_ref().is_none_or(|t| s.tags.contains(t)))
            .collect();
        let mut rows = Vec::with_capacity(shown.len());
        for (i, (id, s)) in shown.iter().enumerate() {
            let sum = &s.summary;
            rows.push(SnapshotRow {
                time: local_time(s.time),
                id: id.to_hex(),
                short: id.short(),
                host: s.hostname.clone(),
                paths: s
                    .paths
                    .iter()
                    .map(|p| text(p))
                    .collect::<Vec<_>>()
                    .join(", "),
                tags: s.tags.join(", "),
                files: format!("{} / {}", sum.files_new, sum.files_changed),
                added: size(sum.bytes_added_stored),
                size: size(sum.total_size),
                previous: i.checked_sub(1).map(|p| shown[p].0.to_hex()),
            });
        }
        rows.reverse();
        html(Snapshots {
            nav: app.nav(),
            link: paths::encode(repo.as_bytes()),
            repo,
            source,
            count: plural(rows.len() as u64, "snapshot"),
            rows,
        })
    })
    .await
}

// ---- Statistics -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    nav: Nav,
    repo: String,
    rows: Vec<(&'static str, String)>,
}

pub async fn stats(State(app): State<Arc<App>>, Path(repo): Path<String>) -> Response {
    blocking(app, move |app| {
        let read = app.repo(&repo)?;
        let s = stats::stats(&read.repo, &read.snapshots).map_err(Fail::engine)?;
        let rows = vec![
            ("Snapshots", s.snapshots.to_string()),
            ("Files", s.files.to_string()),
            ("Size restored", size(s.restore_size)),
            ("Data, before compression", size(s.raw_size)),
            ("Data, stored", size(s.data_stored_size)),
            ("Stored in all", size(s.stored_size)),
            ("Deduplication", format!("{:.2}×", s.dedup_ratio)),
            ("Compression", format!("{:.2}×", s.compression_ratio)),
            ("Data blobs", s.data_blobs.to_string()),
            ("Tree blobs", s.tree_blobs.to_string()),
        ];
        html(StatsPage {
            nav: app.nav(),
            repo,
            rows,
        })
    })
    .await
}

// ---- Audit -------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    repo: String,
    link: String,
    commands: Vec<String>,
    hosts: Vec<String>,
    command: String,
    host: String,
    warnings: Vec<String>,
    rows: Vec<AuditRow>,
}

struct AuditRow {
    class: &'static str,
    time: String,
    host: String,
    user: String,
    command: String,
    snapshots: String,
    outcome: String,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    command: String,
    #[serde(default)]
    host: String,
}

pub async fn audit(
    State(app): State<Arc<App>>,
    Path(repo): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Response {
    blocking(app, move |app| {
        let read = app.repo(&repo)?;
        let (records, unreadable) =
            cairn_engine::audit::records(&read.repo).map_err(Fail::engine)?;
        let commands: BTreeSet<String> = records.iter().map(|(_, r)| r.command.clone()).collect();
        let hosts: BTreeSet<String> = records.iter().map(|(_, r)| r.hostname.clone()).collect();
        let rows = records
            .iter()
            .rev()
            .filter(|(_, r)| q.command.is_empty() || r.command == q.command)
            .filter(|(_, r)| q.host.is_empty() || r.hostname == q.host)
            .map(|(_, r)| AuditRow {
                class: if r.outcome == "ok" { "" } else { "bad" },
                time: local_time(r.time),
                host: r.hostname.clone(),
                user: r.username.clone(),
                command: r.command.clone(),
                snapshots: r
                    .snapshots
                    .iter()
                    .map(|s| s.short())
                    .collect::<Vec<_>>()
                    .join(" "),
                outcome: r.outcome.clone(),
            })
            .collect();
        html(AuditPage {
            nav: app.nav(),
            link: paths::encode(repo.as_bytes()),
            repo,
            commands: commands.into_iter().collect(),
            hosts: hosts.into_iter().collect(),
            command: q.command,
            host: q.host,
            warnings: unreadable.iter().map(|e| e.to_string()).collect(),
            rows,
        })
    })
    .await
}

// ---- Diff -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage {
    nav: Nav,
    repo: String,
    link: String,
    /// Full ID and label of every snapshot, newest first.
    options: Vec<(String, String)>,
    a: String,
    b: String,
    summary: Option<String>,
    changes: Vec<ChangeRow>,
    shown: usize,
    total: usize,
}

struct ChangeRow {
    marker: char,
    path: String,
    kind: &'static str,
    before: String,
    after: String,
}

#[derive(Deserialize)]
pub struct DiffQuery {
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
}

pub async fn diff(
    State(app): State<Arc<App>>,
    Path(repo): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Response {
    blocking(app, move |app| {
        let read = app.repo(&repo)?;
        let mut page = DiffPage {
            nav: app.nav(),
            link: paths::encode(repo.as_bytes()),
            options: read
                .snapshots
                .iter()
                .rev()
                .map(|(id, s)| {
                    (
                        id.to_hex(),
                        format!("{} {} {}", id.short(), local_time(s.time), s.hostname),
                    )
                })
                .collect(),
            repo,
            summary: None,
            changes: Vec::new(),
            shown: 0,
            total: 0,
            a: q.a,
            b: q.b,
        };
        if page.a.is_empty() && page.b.is_empty() {
            return html(page);
        }
        let find = |id: &str| {
            read.snapshot(id)
                .ok_or_else(|| Fail::NotFound(format!("no snapshot {id} in {}", page.repo)))
        };
        let (first, second) = (find(&page.a)?, find(&page.b)?);
        let changes =
            diff::diff(&read.repo, &first.1.tree, &second.1.tree).map_err(Fail::engine)?;
        page.summary = Some(crate::commands::diff::summary(&changes));
        page.total = changes.len();
        page.changes = changes
            .iter()
            .take(SHOWN_CHANGES)
            .map(|c| ChangeRow {
                marker: c.kind.marker(),
                path: text(&c.path),
                kind: c.kind.name(),
                before: c.size_before.map_or(String::new(), size),
                after: c.size_after.map_or(String::new(), size),
            })
            .collect();
        page.shown = page.changes.len();
        html(page)
    })
    .await
}

// ---- Browse -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "browse.html")]
struct Browse {
    nav: Nav,
    link: String,
    id: String,
    short: String,
    time: String,
    host: String,
    path: String,
    /// The path of this folder in URLs (empty at the root).
    here: String,
    /// Each folder above and this one: name, URL path.
    crumbs: Vec<(String, String)>,
    count: String,
    page: usize,
    pages: usize,
    entries: Vec<EntryRow>,
}

struct EntryRow {
    name: String,
    href: String,
    dir: bool,
    file: bool,
    kind: &'static str,
    mode: String,
    size: String,
    mtime: String,
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

/// A repository's name, the repository, a snapshot's index in it, and a
/// path inside the snapshot.
pub type Located = (String, Arc<Read>, usize, Vec<Vec<u8>>);

/// The repository (by name), the snapshot (by index in it) and the path
/// inside it of a URL `/r/REPO/X/SNAPSHOT/PATH...`; not found when the
/// path could leave the snapshot.
pub fn located(app: &App, uri: &Uri) -> Result<Located, Fail> {
    let raw = uri.path();
    let bad = || Fail::NotFound(format!("{raw} is not a path inside a snapshot"));
    let repo = paths::segment(raw, 2).ok_or_else(bad)?;
    let snapshot = paths::segment(raw, 4).ok_or_else(bad)?;
    let names = paths::names(raw, 5).ok_or_else(bad)?;
    let (repo, snapshot) = (text(&repo), text(&snapshot));
    let read = app.repo(&repo)?;
    let index = read
        .snapshots
        .iter()
        .position(|(id, _)| id.to_hex() == snapshot)
        .ok_or_else(|| Fail::NotFound(format!("no snapshot {snapshot} in {repo}")))?;
    Ok((repo, read, index, names))
}

/// The node at `inner` in `snapshot` (`None` for its root); not found
/// when the snapshot has none there.
pub fn node_at(
    repo: &cairn_engine::Repository,
    snapshot: &cairn_format::snapshot::Snapshot,
    inner: &std::path::Path,
) -> Result<Option<cairn_format::tree::Node>, Fail> {
    browse::find_node(repo, &snapshot.tree, inner).map_err(|e| match e {
        cairn_engine::Error::PathNotInSnapshot(_) => Fail::NotFound(e.to_string()),
        e => Fail::engine(e),
    })
}

pub async fn browse(State(app): State<Arc<App>>, Query(q): Query<PageQuery>, uri: Uri) -> Response {
    blocking(app, move |app| {
        let (repo, read, index, names) = located(app, &uri)?;
        let (id, snap) = &read.snapshots[index];
        let inner = paths::inner(&names);
        let tree = match node_at(&read.repo, snap, &inner)? {
            None => snap.tree,
            Some(node) => match node.kind {
                NodeKind::Dir { subtree } => subtree,
                _ => {
                    let to = format!(
                        "/r/{}/d/{}{}",
                        paths::encode(repo.as_bytes()),
                        id.to_hex(),
                        paths::encode_all(&names)
                    );
                    return Ok(Redirect::to(&to).into_response());
                }
            },
        };
        let nodes = read.repo.load_tree(&tree).map_err(Fail::engine)?.nodes;
        let pages = nodes.len().div_ceil(PAGE).max(1);
        let page = q.page.unwrap_or(1).clamp(1, pages);
        let here = paths::encode_all(&names);
        let entries = nodes
            .iter()
            .skip((page - 1) * PAGE)
            .take(PAGE)
            .map(|n| EntryRow {
                name: text(&n.name),
                href: format!("{here}/{}", paths::encode(&n.name)),
                dir: matches!(n.kind, NodeKind::Dir { .. }),
                file: matches!(n.kind, NodeKind::File { .. } | NodeKind::Bundled { .. }),
                kind: kind_name(&n.kind),
                mode: mode_string(n),
                size: match n.kind {
                    NodeKind::Dir { .. } => String::new(),
                    _ => size(n.size),
                },
                mtime: local_time(n.mtime),
            })
            .collect();
        let crumbs = (1..=names.len())
            .map(|i| (text(&names[i - 1]), paths::encode_all(&names[..i])))
            .collect();
        html(Browse {
            nav: app.nav(),
            link: paths::encode(repo.as_bytes()),
            id: id.to_hex(),
            short: id.short(),
            time: local_time(snap.time),
            host: snap.hostname.clone(),
            path: inner.display().to_string(),
            here,
            crumbs,
            count: plural(nodes.len() as u64, "entry"),
            page,
            pages,
            entries,
        })
    })
    .await
}

// ---- Login ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    nav: Nav,
    failed: bool,
}

pub async fn login_form(State(app): State<Arc<App>>) -> Response {
    if !app.auth.needs_login() {
        return Redirect::to("/").into_response();
    }
    let page = Login {
        nav: Nav {
            login: false,
            repos: Vec::new(),
            ..app.nav()
        },
        failed: false,
    };
    html(page).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(State(app): State<Arc<App>>, Form(form): Form<LoginForm>) -> Response {
    match app.auth.login(&form.token) {
        Some(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        None => {
            let page = Login {
                nav: Nav {
                    login: false,
                    repos: Vec::new(),
                    ..app.nav()
                },
                failed: true,
            };
            let body =
                html(page).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            (StatusCode::UNAUTHORIZED, body).into_response()
        }
    }
}

#[derive(Default, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A POSTed form; its fields empty when the body is not one, so that a
/// request without the CSRF token is refused as such.
pub fn form<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> T {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

pub async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: CsrfForm = form(&body);
    if !app.auth.csrf_ok(&form.csrf) {
        return (
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong\n",
        )
            .into_response();
    }
    app.auth.logout(&headers);
    let expired = "cairn_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
    ([(header::SET_COOKIE, expired)], Redirect::to("/login")).into_response()
}
