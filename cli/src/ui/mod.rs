//! `cairn ui`: a web dashboard of the recovery objectives, snapshots and
//! audit log, served from this process. Pages are rendered here (templates
//! in `cli/templates/`), with no script and nothing fetched from elsewhere.

mod actions;
mod auth;
mod chart;
mod download;
mod pages;
mod paths;
mod state;

pub use state::{Opener, Ui};

use anyhow::Context as _;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// The dashboard: what it shows, and who may see it.
pub struct App {
    pub ui: Ui,
    auth: auth::Auth,
    /// `--allow-actions`: backups, drills and restores may be started.
    allow_actions: bool,
}

/// Serves `ui` on `listen` until Ctrl-C or SIGTERM, with its actions when
/// `allow_actions`. Without `token`, `listen` must be a loopback address:
/// elsewhere anyone who reaches it could read every snapshot.
pub fn serve(
    ui: Ui,
    listen: SocketAddr,
    token: Option<Vec<u8>>,
    allow_actions: bool,
) -> anyhow::Result<()> {
    check_access(listen, token.is_some(), allow_actions)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // Host names are checked against the address bound (its port
        // chosen by the system when 0 was asked for).
        let local = listener.local_addr()?;
        let app = Arc::new(App {
            ui,
            auth: auth::Auth::new(local, token),
            allow_actions,
        });
        eprintln!("cairn ui: serving http://{local}/ (Ctrl-C to stop)");
        axum::serve(listener, router(app))
            .with_graceful_shutdown(stopped())
            .await
            .context("the web server failed")
    })
}

/// Refuses what would let others in: an address other than loopback, or
/// actions (which write files as this user), without a token.
pub fn check_access(listen: SocketAddr, token: bool, allow_actions: bool) -> anyhow::Result<()> {
    if !token && !listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {listen} without --token-file: anyone who can reach it could read every snapshot"
        );
    }
    if !token && allow_actions {
        anyhow::bail!(
            "--allow-actions needs --token-file, even on loopback: without it any user of this machine could restore files anywhere as this user"
        );
    }
    Ok(())
}

/// Every page, behind the guard.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/style.css", get(pages::style))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/source/{source}", get(pages::source))
        .route(
            "/source/{source}/run",
            get(actions::confirm_run).post(actions::run_now),
        )
        .route(
            "/source/{source}/drill",
            get(actions::confirm_drill).post(actions::drill_now),
        )
        .route(
            "/r/{repo}/restore/{snapshot}",
            get(actions::confirm_restore).post(actions::restore_now),
        )
        .route(
            "/r/{repo}/restore/{snapshot}/{*path}",
            get(actions::confirm_restore).post(actions::restore_now),
        )
        .route("/r/{repo}", get(pages::snapshots))
        .route("/r/{repo}/stats", get(pages::stats))
        .route("/r/{repo}/audit", get(pages::audit))
        .route("/r/{repo}/diff", get(pages::diff))
        .route("/r/{repo}/b/{snapshot}", get(pages::browse))
        .route("/r/{repo}/b/{snapshot}/{*path}", get(pages::browse))
        .route("/r/{repo}/d/{snapshot}", get(download::download))
        .route("/r/{repo}/d/{snapshot}/{*path}", get(download::download))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::guard,
        ))
        .with_state(app)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be set");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
