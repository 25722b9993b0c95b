//! Backs up a directory into a new repository and restores it.
//!
//! ```sh
//! cargo run -p cairn-engine --example backup_and_restore -- SOURCE WORK
//! ```
//!
//! Creates the repository `WORK/repo` (password `example`) and restores the
//! snapshot into `WORK/restored`.
#![allow(
    clippy::disallowed_methods,
    reason = "an example reads its command line"
)]

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::restore::restore;
use cairn_engine::{InitOptions, Repository};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(source), Some(work)) = (args.next(), args.next()) else {
        return Err("usage: backup_and_restore SOURCE WORK".into());
    };
    let source = source.canonicalize()?;

    // A new repository: the defaults are those of `cairn init`.
    let storage = LocalBackend::new(work.join("repo"));
    let mut repo = Repository::init(storage, b"example", &InitOptions::default())?;

    let report = backup(
        &mut repo,
        std::slice::from_ref(&source),
        &BackupOptions::default(),
    )?;
    let summary = &report.snapshot.summary;
    println!(
        "snapshot {}: {} new files, {} bytes read, {} bytes stored",
        report.id, summary.files_new, summary.bytes_read, summary.bytes_added_stored
    );

    // The snapshot holds `source` by its absolute path; restore just that.
    let target = work.join("restored");
    let restored = restore(&repo, &report.snapshot, Some(&source), &target)?;
    println!(
        "restored {} files into {}",
        restored.files,
        target.display()
    );
    Ok(())
}
