//! `cairn status` at scale: a local repository holding 10,001 snapshots of
//! one policy source (`--snapshots N` to change) and 1,000 journal entries
//! (`--entries N`: failures and checks), with the repository's default
//! password hashing.
//!
//! The snapshots are one real backup and copies of it at later times, saved
//! through the engine. Then the release `cairn` binary runs `status --json`
//! `--runs` times (5 by default); the program prints each wall time, the
//! median, and the largest peak resident memory of those runs, and checks
//! that every run named the newest snapshot and the last check. The issue
//! asks for under a second. A plain program, not a Criterion bench.
//!
//! ```sh
//! cargo build --release -p cairn-cli
//! cargo bench -p cairn-benches --bench status_scale
//! cargo bench -p cairn-benches --bench status_scale -- --snapshots 100000 --entries 10000
//! ```

use cairn_benches::{number_arg, scratch_dir};
use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::{journal, InitOptions, Repository};
use cairn_format::journal::{CheckResult, Event, Failure};
use cairn_format::Timestamp;
use rayon::prelude::*;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

const PASSWORD: &str = "status-scale";

fn main() -> ExitCode {
    let snapshots = number_arg("--snapshots", 10_001).max(1);
    let entries = number_arg("--entries", 1_000);
    let runs = number_arg("--runs", 5).max(1);
    let cairn = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/cairn");
    if !cairn.is_file() {
        eprintln!(
            "status_scale: {} is missing: run `cargo build --release -p cairn-cli` first",
            cairn.display()
        );
        return ExitCode::from(2);
    }
    let dir = scratch_dir(1 << 30).expect("scratch directory");
    let (newest, last_check) = build(dir.path(), snapshots, entries);
    let policy = dir.path().join("cairn.toml");
    let text = format!(
        "[repositories.main]\nurl = \"{}\"\n\n[sources.files]\npaths = [\"/src\"]\n\
         rpo = \"1h\"\nto = [\"main\"]\n",
        dir.path().join("repo").display()
    );
    std::fs::write(&policy, text).expect("policy file");

    let mut times = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let out = Command::new(&cairn)
            .args(["--config", policy.to_str().unwrap(), "status", "--json"])
            .env("CAIRN_PASSWORD", PASSWORD)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .expect("run cairn");
        let took = started.elapsed().as_secs_f64();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.code() == Some(0),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains(&newest),
            "the newest snapshot is not named: {said}"
        );
        if last_check != 0 {
            assert!(said.contains(&format!("\"time\": {last_check}")), "{said}");
        }
        println!("run {run}: {took:.3} s");
        times.push(took);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "status of {snapshots} snapshots and {entries} journal entries: median {:.3} s, \
         peak RSS {} MiB",
        times[times.len() / 2],
        children_peak_rss() >> 20
    );
    ExitCode::SUCCESS
}

/// Makes the repository at `dir/repo` with `snapshots` snapshots tagged
/// `source:files`, the newest taken now, and `entries` journal entries;
/// returns the newest snapshot's ID and the time of the last check.
fn build(dir: &Path, snapshots: u64, entries: u64) -> (String, i64) {
    let started = Instant::now();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file"), b"some content").unwrap();
    let backend = LocalBackend::new(dir.join("repo"));
    let mut repo =
        Repository::init(backend, PASSWORD.as_bytes(), &InitOptions::default()).expect("init");
    let opts = BackupOptions {
        tags: vec!["source:files".into()],
        ..Default::default()
    };
    let made = backup(&mut repo, &[src], &opts).expect("backup");
    let now = made.snapshot.time.secs;
    // The others are older copies of it, a minute apart.
    (1..snapshots).into_par_iter().for_each(|i| {
        let mut copy = made.snapshot.clone();
        copy.time = Timestamp {
            secs: now - i as i64 * 60,
            nanos: 0,
        };
        repo.save_snapshot(&copy).expect("snapshot");
    });
    (0..entries).into_par_iter().for_each(|i| {
        let time = Timestamp {
            secs: now - 3600 - (entries - i) as i64 * 60,
            nanos: 0,
        };
        let event = match i % 2 {
            0 => Event::Failure(Failure {
                source: "files".into(),
                repository: "main".into(),
                step: "backup".into(),
                message: format!("failure {i}"),
            }),
            _ => Event::Check(CheckResult {
                subset: "1/7".into(),
                group: 1,
                groups: 7,
                packs: 1,
                packs_read: 1,
                bytes_read: 1,
                duration_nanos: 1,
                problems: 0,
                first_problems: Vec::new(),
            }),
        };
        journal::record(&repo, time, event).expect("journal entry");
    });
    // Odd entries are checks; the newest is the last odd one.
    let last_check = (0..entries)
        .rev()
        .find(|i| i % 2 == 1)
        .map_or(0, |i| now - 3600 - (entries - i) as i64 * 60);
    println!(
        "built {snapshots} snapshots and {entries} journal entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (made.id.to_hex(), last_check)
}

/// The largest peak resident memory of the children waited for, in bytes.
fn children_peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: getrusage returned 0, so it filled `usage`.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as u64 * 1024
}
