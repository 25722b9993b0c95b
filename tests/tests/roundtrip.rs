//! Backup then restore gives back the same tree, byte for byte.

use cairn_engine::restore::restore;
use cairn_tests::*;
use std::ffi::OsStr;

#[test]
fn varied_tree_round_trips_through_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_varied_tree(&src);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let report = backup_dir(&mut repo, &src);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.snapshot.summary.files_new, 1000 + 9);

    // Reopen: everything must come from storage, not from memory.
    let repo = open_repo(&tmp.path().join("repo"));
    let out = tmp.path().join("out");
    let restored = restore(&repo, &report.snapshot, None, &out).unwrap();
    assert!(restored.errors.is_empty(), "{:?}", restored.errors);
    let inner = out.join(src.strip_prefix("/").unwrap());
    assert_same_tree(&src, &inner);
}

#[test]
fn one_path_inside_a_snapshot_restores_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_varied_tree(&src);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let report = backup_dir(&mut repo, &src);
    let out = tmp.path().join("out");
    restore(&repo, &report.snapshot, Some(&src.join("wide")), &out).unwrap();
    assert_same_tree(&src.join("wide"), &out.join("wide"));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn a_file_larger_than_one_gib_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let big = src.join("big.bin");
    write_noise_file(&big, (1 << 30) + 12_345, 99);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let report = backup_dir(&mut repo, &src);
    assert_eq!(report.snapshot.summary.bytes_read, (1 << 30) + 12_345);
    let out = tmp.path().join("out");
    let restored = restore(&repo, &report.snapshot, Some(&big), &out).unwrap();
    assert!(restored.errors.is_empty());
    assert_eq!(hash_file(&out.join("big.bin")), hash_file(&big));
    assert_eq!(
        std::fs::metadata(out.join("big.bin")).unwrap().len(),
        (1 << 30) + 12_345
    );
}

#[test]
fn the_binary_round_trips_several_paths_with_tags_and_host() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    build_varied_tree(&a);
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("note"), b"second path").unwrap();

    let out = cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cairn(
        &repo,
        &[
            OsStr::new("backup"),
            a.as_os_str(),
            b.as_os_str(),
            OsStr::new("--tag"),
            OsStr::new("nightly"),
            OsStr::new("--host"),
            OsStr::new("db1"),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cairn(&repo, &args(&["snapshots"]), &[]);
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains("db1") && listing.contains("nightly"),
        "{listing}"
    );
    let out = cairn(&repo, &args(&["ls", "latest"]), &[]);
    let ls = String::from_utf8_lossy(&out.stdout);
    assert!(ls.contains("/wide/f0999") && ls.contains("/b/note"), "{ls}");

    let target = tmp.path().join("restored");
    let out = cairn(
        &repo,
        &[
            OsStr::new("restore"),
            OsStr::new("latest"),
            OsStr::new("--target"),
            target.as_os_str(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&a, &target.join(a.strip_prefix("/").unwrap()));
    assert_same_tree(&b, &target.join(b.strip_prefix("/").unwrap()));

    let sub = format!("latest:{}", b.display());
    let target2 = tmp.path().join("only-b");
    let out = cairn(
        &repo,
        &[
            OsStr::new("restore"),
            OsStr::new(&sub),
            OsStr::new("--target"),
            target2.as_os_str(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&b, &target2.join("b"));
}

#[test]
fn cat_prints_config_snapshot_and_tree_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("repo");
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("x"), b"x").unwrap();
    let mut repo = init_repo(&repo_path);
    let report = backup_dir(&mut repo, &src);
    let out = cairn(&repo_path, &args(&["cat", "config"]), &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&repo.config().repo_id.to_hex()));
    let id = report.id.to_hex();
    let out = cairn(&repo_path, &args(&["cat", "snapshot", &id[..10]]), &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&report.snapshot.tree.to_hex()));
    let out = cairn(
        &repo_path,
        &args(&["cat", "tree", &report.snapshot.tree.to_hex()]),
        &[],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"nodes\""));
}
