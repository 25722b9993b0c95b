//! Incremental backups: unchanged files are taken from the parent without reading.

use cairn_engine::backup::{backup, BackupOptions, BackupReport, ParentChoice};
use cairn_engine::restore::restore;
use cairn_engine::Repository;
use cairn_tests::*;
use std::path::Path;

fn run(repo: &mut Repository, src: &Path, opts: &BackupOptions) -> BackupReport {
    let r = backup(repo, &[src.to_path_buf()], opts).unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    r
}

#[test]
fn unchanged_files_are_not_read_and_one_changed_file_among_10000_is_the_only_one_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..100 {
        let dir = src.join(format!("dir{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(
                dir.join(format!("file{f:02}")),
                format!("content of {d}/{f}\n"),
            )
            .unwrap();
        }
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    let first = run(&mut repo, &src, &BackupOptions::default());
    assert_eq!(first.snapshot.summary.files_new, 10_000);
    assert!(first.snapshot.parent.is_none());

    let second = run(&mut repo, &src, &BackupOptions::default());
    let s = &second.snapshot.summary;
    assert_eq!(second.snapshot.parent, Some(first.id));
    assert_eq!(
        (s.files_new, s.files_changed, s.files_unchanged),
        (0, 0, 10_000)
    );
    assert_eq!(s.bytes_read, 0, "an unchanged re-backup read file contents");
    // The backed-up tree is the same (the root also records /tmp, which other
    // processes may touch between the two backups).
    let subtree = |r: &BackupReport| {
        cairn_engine::browse::find_node(&repo, &r.snapshot.tree, &src)
            .unwrap()
            .unwrap()
            .kind
    };
    assert_eq!(subtree(&second), subtree(&first));

    let changed = src.join("dir42/file17");
    std::fs::write(&changed, b"a new, longer content for this one file\n").unwrap();
    let third = run(&mut repo, &src, &BackupOptions::default());
    let s = &third.snapshot.summary;
    assert_eq!(
        (s.files_new, s.files_changed, s.files_unchanged),
        (0, 1, 9_999)
    );
    assert_eq!(s.bytes_read, std::fs::metadata(&changed).unwrap().len());

    let out = tmp.path().join("out");
    restore(&repo, &third.snapshot, Some(&src), &out).unwrap();
    assert_same_tree(&src, &out.join("src"));
}

#[test]
fn force_reads_everything_and_a_new_host_has_no_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..10 {
        std::fs::write(src.join(format!("f{i}")), vec![i as u8; 1000]).unwrap();
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    run(&mut repo, &src, &BackupOptions::default());
    let forced = run(
        &mut repo,
        &src,
        &BackupOptions {
            force: true,
            ..Default::default()
        },
    );
    assert_eq!(forced.snapshot.summary.bytes_read, 10_000);
    assert_eq!(forced.snapshot.summary.files_changed, 10);
    assert_eq!(forced.snapshot.summary.data_blobs_added, 0);

    let other = BackupOptions {
        hostname: Some("elsewhere".into()),
        ..Default::default()
    };
    let r = run(&mut repo, &src, &other);
    assert!(r.snapshot.parent.is_none());
    assert_eq!(r.snapshot.summary.files_new, 10);
}

#[test]
fn a_differential_backup_compares_against_the_chosen_parent() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(src.join(name), name).unwrap();
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    let full = run(&mut repo, &src, &BackupOptions::default());
    std::fs::write(src.join("a"), b"changed a").unwrap();
    run(&mut repo, &src, &BackupOptions::default());
    std::fs::write(src.join("b"), b"changed b").unwrap();
    let diff = run(
        &mut repo,
        &src,
        &BackupOptions {
            parent: ParentChoice::Snapshot(full.id),
            ..Default::default()
        },
    );
    let s = &diff.snapshot.summary;
    assert_eq!(diff.snapshot.parent, Some(full.id));
    assert_eq!((s.files_changed, s.files_unchanged), (2, 1));
}

#[test]
fn a_file_that_keeps_changing_while_read_is_reported_not_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let growing = src.join("growing.log");
    write_noise_file(&growing, 64 << 20, 1);
    std::fs::write(src.join("steady"), b"steady").unwrap();
    let mut repo = init_repo(&tmp.path().join("repo"));

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let growing = growing.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&growing)
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(b"another log line\n").unwrap();
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let report = backup_dir(&mut repo, &src);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();

    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert_eq!(report.skipped[0].path, growing);
    assert!(report.skipped[0]
        .error
        .to_string()
        .contains("changed while"));
    let recorded = &report.snapshot.skipped;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, growing.as_os_str().as_encoded_bytes());
    let out = tmp.path().join("out");
    restore(&repo, &report.snapshot, Some(&src), &out).unwrap();
    assert!(out.join("src/steady").exists());
    assert!(!out.join("src/growing.log").exists());
}
