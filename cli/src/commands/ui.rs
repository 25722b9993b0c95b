//! `cairn ui`: the web dashboard, served until Ctrl-C.

use crate::ui::{self, Ui};
use crate::Context;
use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The address and port to serve on. An address other than loopback
    /// needs --token-file.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8470")]
    listen: SocketAddr,
    /// A file holding the token visitors must give to log in (required
    /// off loopback; never on the command line, where others could read it).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Read the repositories and the objectives' status again once what
    /// is shown is this many seconds old.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    refresh: u64,
    /// Offer actions: back up a source now, drill it, restore a path of a
    /// snapshot into a folder on this machine (each confirmed first, and
    /// recorded in the audit log). Needs --token-file, even on loopback.
    #[arg(long)]
    allow_actions: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let token = match &args.token_file {
        Some(path) => Some(read_token(path)?),
        None => None,
    };
    // Refused before any repository is opened.
    ui::check_access(args.listen, token.is_some(), args.allow_actions)?;
    let refresh = Duration::from_secs(args.refresh);
    // A repository named on the command line is shown alone; otherwise
    // the policy file's.
    let ui = match &ctx.repo {
        None => {
            let (path, policy) = super::run::load_policy(ctx)?;
            let mut repos = Vec::new();
            for name in policy.repositories.keys() {
                let opener = super::run::named(ctx, path, name)?.reopener()?;
                repos.push((name.clone(), opener));
            }
            Ui::new(repos, Some((path.to_path_buf(), policy)), refresh)
        }
        Some(_) => Ui::new(vec![("repository".into(), ctx.reopener()?)], None, refresh),
    };
    ui::serve(ui, args.listen, token, args.allow_actions)?;
    Ok(0)
}

/// The token in `path`, without a final line break; refused when short.
fn read_token(path: &PathBuf) -> Result<Vec<u8>> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.strip_suffix(b"\n").unwrap_or(&text);
    let token = token.strip_suffix(b"\r").unwrap_or(token);
    if token.len() < 16 {
        anyhow::bail!(
            "the token in {} is {} bytes long: give at least 16 (for example `head -c 24 /dev/urandom | base64`)",
            path.display(),
            token.len()
        );
    }
    Ok(token.to_vec())
}
