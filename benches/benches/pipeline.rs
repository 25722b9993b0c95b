//! Whole operations through the library, as the CLI runs them: a first backup
//! of a generated tree into an empty repository, and a full restore of it.
//! Repository creation, tree generation and clean-up are not timed.

use cairn_benches::{build_tree, scratch_dir, TreeSpec, MIB};
use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::restore::restore;
use cairn_engine::{InitOptions, Repository};
use cairn_format::key::KdfParams;
use cairn_format::snapshot::Snapshot;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::cell::OnceCell;
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const PASSWORD: &[u8] = b"bench";
/// Room for the tree, one repository and one restored copy, with margin.
const SCRATCH_NEED: u64 = 512 * MIB as u64;

fn new_repo(dir: &Path) -> Repository {
    let opts = InitOptions {
        kdf: KdfParams::argon2id(64, 1, 1),
        ..Default::default()
    };
    Repository::init(LocalBackend::new(dir.join("repo")), PASSWORD, &opts).expect("init repository")
}

fn pipeline(c: &mut Criterion) {
    let work = scratch_dir(SCRATCH_NEED).expect("scratch directory");
    let source = work.path().join("source");
    let stats = build_tree(&source, &TreeSpec::MIXED_64MIB, 42).expect("build source tree");
    eprintln!(
        "pipeline: source tree in {}: {} files, {} directories, {} bytes",
        source.display(),
        stats.files,
        stats.dirs,
        stats.bytes
    );
    let paths = [source.clone()];
    // Each backup goes into an empty repository, so there is never a parent.
    let opts = BackupOptions {
        hostname: Some("bench".into()),
        ..Default::default()
    };

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(stats.bytes));

    g.bench_function("backup_64MiB_tree", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = scratch_dir(SCRATCH_NEED).expect("scratch directory");
                let mut repo = new_repo(dir.path());
                let start = Instant::now();
                let report = backup(&mut repo, &paths, &opts).expect("backup");
                total += start.elapsed();
                assert!(report.skipped.is_empty(), "{:?}", report.skipped);
                assert_eq!(report.snapshot.summary.bytes_read, stats.bytes);
                black_box(report.id);
                // `dir` (the repository) is removed here, after the clock stopped.
            }
            total
        })
    });

    // One repository holding one snapshot of the tree, restored again and
    // again; made on first use, so a filter that skips this bench skips it too.
    let restore_from: OnceCell<(TempDir, Repository, Snapshot)> = OnceCell::new();
    g.bench_function("restore_64MiB_tree", |b| {
        let (_, repo, snapshot) = restore_from.get_or_init(|| {
            let dir = scratch_dir(SCRATCH_NEED).expect("scratch directory");
            let mut repo = new_repo(dir.path());
            let report = backup(&mut repo, &paths, &opts).expect("backup for restore");
            (dir, repo, report.snapshot)
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = scratch_dir(SCRATCH_NEED).expect("scratch directory");
                let start = Instant::now();
                let report = restore(repo, snapshot, None, target.path()).expect("restore");
                total += start.elapsed();
                assert!(report.errors.is_empty(), "{:?}", report.errors);
                assert_eq!(report.bytes, stats.bytes);
                assert_eq!(report.files, stats.files);
                // `target` (the restored copy) is removed here, untimed.
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    targets = pipeline
}
criterion_main!(benches);
