//! `cairn runbook`: a recovery runbook in Markdown, written from the
//! policy file and the live state of its repositories.

use crate::output::local_time;
use crate::Context;
use anyhow::{Context as _, Result};
use cairn_recovery::metrics::write_atomically;
use cairn_recovery::runbook::{runbook, RunbookOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The sources to cover (names of the policy file); all by default.
    sources: Vec<String>,
    /// Write it to this file (replaced whole) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Where a command source's output (a database dump, say) is restored
    /// before it is loaded: DIR/SOURCE.
    #[arg(long, value_name = "DIR", default_value = "/var/tmp/cairn-recovery")]
    work_dir: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let (path, policy) = super::run::load_policy(ctx)?;
    let status =
        super::run::assess_now(ctx, path, &policy, &args.sources).map_err(anyhow::Error::msg)?;
    let policy_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let host = cairn_engine::sysinfo::hostname();
    let text = runbook(
        &policy,
        &status,
        &RunbookOptions {
            policy_path: &policy_path,
            work_dir: &args.work_dir,
            time: &local_time,
            host: &host,
        },
    );
    match &args.output {
        Some(file) => write_atomically(file, &text)
            .with_context(|| format!("cannot write the runbook to {}", file.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}
