//! Shows a backup's progress with a display of your own.
//!
//! ```sh
//! cargo run -p cairn-engine --example progress_sink -- SOURCE WORK
//! ```
//!
//! The engine only counts; this program reads the counts from another thread
//! and prints them, as a progress bar or a monitoring agent would.
#![allow(
    clippy::disallowed_methods,
    reason = "an example reads its command line"
)]

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::progress::Progress;
use cairn_engine::{InitOptions, Repository};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(source), Some(work)) = (args.next(), args.next()) else {
        return Err("usage: progress_sink SOURCE WORK".into());
    };
    let storage = LocalBackend::new(work.join("repo"));
    let mut repo = Repository::init(storage, b"example", &InitOptions::default())?;

    let progress = Arc::new(Progress::default());
    let finished = Arc::new(AtomicBool::new(false));
    let display = {
        let (progress, finished) = (progress.clone(), finished.clone());
        std::thread::spawn(move || {
            while !finished.load(Ordering::Relaxed) {
                let c = progress.counts();
                println!("{} of {} files, {} bytes", c.items, c.total_items, c.bytes);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let opts = BackupOptions {
        progress: Some(progress.clone()),
        ..Default::default()
    };
    let result = backup(&mut repo, &[source.canonicalize()?], &opts);
    finished.store(true, Ordering::Relaxed);
    display.join().expect("the display thread does not panic");
    let report = result?;

    let c = progress.counts();
    println!(
        "done: {} files, {} bytes; snapshot {}",
        c.items, c.bytes, report.id
    );
    Ok(())
}
