//! Deduplication and compression: what a backup adds to the repository.

use cairn_engine::backup::{backup, BackupOptions};
use cairn_tests::*;
use std::path::PathBuf;

fn snap(
    repo: &mut cairn_engine::Repository,
    path: &std::path::Path,
) -> cairn_engine::backup::BackupReport {
    backup(repo, &[path.to_path_buf()], &BackupOptions::default()).unwrap()
}

#[test]
fn an_unchanged_second_backup_adds_under_one_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_varied_tree(&src);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    snap(&mut repo, &src);
    let before = dir_size(&repo_path);
    let second = snap(&mut repo, &src);
    let added = dir_size(&repo_path) - before;
    let tree = dir_size(&src);
    assert_eq!(second.snapshot.summary.data_blobs_added, 0);
    assert!(
        added * 100 < tree,
        "second backup added {added} bytes for a {tree}-byte tree"
    );
}

#[test]
fn four_copies_of_a_file_are_stored_about_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let copy = Noise::new(5).bytes(50 << 20);
    for i in 0..4 {
        std::fs::write(src.join(format!("copy{i}")), &copy).unwrap();
    }
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let report = snap(&mut repo, &src);
    let stored = dir_size(&repo_path.join("data"));
    assert_eq!(report.snapshot.summary.bytes_read, 200 << 20);
    assert!(
        stored < (50 << 20) * 102 / 100,
        "200 MiB of four identical files stored as {stored} bytes"
    );
    assert!(
        stored > 50 << 20,
        "random data cannot shrink below its size: {stored}"
    );
}

#[test]
fn an_insertion_near_the_start_changes_only_nearby_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let file = src.join("big");
    let mut data = Noise::new(11).bytes(64 << 20);
    std::fs::write(&file, &data).unwrap();
    let mut repo = init_repo(&tmp.path().join("repo"));
    let first = snap(&mut repo, &src);
    let chunks = first.snapshot.summary.data_blobs_added;
    assert!(chunks >= 16, "64 MiB made only {chunks} chunks");

    data.splice(1000..1000, *b"a few bytes");
    std::fs::write(&file, &data).unwrap();
    let second = snap(&mut repo, &src);
    let s = &second.snapshot.summary;
    assert!(
        s.data_blobs_added <= 2,
        "{} of {chunks} chunks changed",
        s.data_blobs_added
    );
    assert!(
        s.bytes_added < 10 << 20,
        "{} bytes re-stored",
        s.bytes_added
    );
}

#[test]
fn a_compressible_tree_takes_less_room_than_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..20 {
        std::fs::write(
            src.join(format!("log{i}.txt")),
            compressible_text(500_000, i),
        )
        .unwrap();
    }
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    snap(&mut repo, &src);
    let on_disk = dir_size(&src);
    let stored = dir_size(&repo_path);
    assert!(
        stored * 2 < on_disk,
        "{on_disk} bytes of text stored as {stored}"
    );
}

#[test]
fn backing_up_the_same_data_twice_in_one_run_stores_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let a: PathBuf = tmp.path().join("a");
    let b: PathBuf = tmp.path().join("b");
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("same"), Noise::new(3).bytes(5 << 20)).unwrap();
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    let report = backup(&mut repo, &[a, b], &BackupOptions::default()).unwrap();
    assert!(report.snapshot.summary.bytes_added < (5 << 20) + 4096);
}
