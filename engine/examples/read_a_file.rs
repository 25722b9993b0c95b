//! Lists a repository's snapshots and prints one file of the newest.
//!
//! ```sh
//! cargo run -p cairn-engine --example read_a_file -- REPO PASSWORD_FILE PATH
//! ```
//!
//! `PATH` is the file's absolute path as it was backed up.
#![allow(
    clippy::disallowed_methods,
    reason = "an example reads its command line"
)]

use cairn_engine::backend::LocalBackend;
use cairn_engine::{dump, Repository};
use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(repo), Some(password_file), Some(path)) = (args.next(), args.next(), args.next())
    else {
        return Err("usage: read_a_file REPO PASSWORD_FILE PATH".into());
    };
    let password = std::fs::read(password_file)?;
    let password = password.strip_suffix(b"\n").unwrap_or(&password);
    let repo = Repository::open(LocalBackend::new(repo), password)?;

    // Oldest first, each with its ID.
    let snapshots = repo.snapshots()?;
    for (id, snapshot) in &snapshots {
        let paths: Vec<_> = snapshot
            .paths
            .iter()
            .map(|p| String::from_utf8_lossy(p))
            .collect();
        eprintln!("{id} from {}: {}", snapshot.hostname, paths.join(" "));
    }
    let (_, newest) = snapshots.last().ok_or("the repository has no snapshot")?;

    // The file's content, read blob by blob and authenticated on the way.
    let mut out = std::io::stdout().lock();
    dump::dump(&repo, newest, &path, &mut out)?;
    out.flush()?;
    Ok(())
}
