use crate::Context;
use anyhow::{bail, Result};
use cairn_engine::dump;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot ID, unique prefix, or `latest`.
    snapshot: String,
    /// Path inside the snapshot: a file is written as it is, a directory
    /// (`/` for the whole snapshot) as a tar archive of its contents.
    path: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> Result<u8> {
    let repo = ctx.open()?;
    let (_, snapshot) = repo.find_snapshot(&args.snapshot)?;
    let target = dump::resolve(&repo, &snapshot, &args.path)?;
    let stdout = std::io::stdout();
    if target.is_tar() && stdout.is_terminal() {
        bail!(
            "{} is a directory and would be written as a tar archive: \
             refusing to write that to a terminal; redirect the output to a file or a pipe",
            args.path.display()
        );
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    dump::write(&repo, &target, &mut out)?;
    Ok(0)
}
