//! `cairn copy`: snapshots copied between repositories with different
//! passwords and keys restore byte-identical from the copy, the copy checks
//! clean, and copying again adds nothing. `init --copy-chunker-params-from`
//! makes backups into either repository deduplicate against copied data.

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::copy::copy;
use cairn_engine::restore::restore;
use cairn_engine::Repository;
use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

const SOURCE_PASSWORD: &str = "the source's own password";

/// Restores `id` of the repository at `repo` into `out` with the binary,
/// with `password`; returns where the snapshot's root is.
fn restore_cli(repo: &Path, id: &str, out: &Path, password: &str) -> PathBuf {
    let _ = fs::remove_dir_all(out);
    let list = ["restore", id, "--target", out.to_str().unwrap()];
    ok_text(&cairn(repo, &args(&list), &[("CAIRN_PASSWORD", password)]));
    out.to_path_buf()
}

#[test]
fn copied_snapshots_restore_identically_and_a_second_copy_adds_nothing() {
    let (_tmp, base, dst) = cli_fixture();
    let (src_repo, src) = (base.join("source"), base.join("src"));
    let source_env = [("CAIRN_PASSWORD", SOURCE_PASSWORD)];
    ok_text(&cairn(
        &src_repo,
        &args(&["init", "--kdf-memory-kib", "64", "--chunk-size-kib", "64"]),
        &source_env,
    ));
    build_varied_tree(&src);
    write_noise_file(&src.join("big.bin"), 3 << 20, 7);
    ok_text(&cairn(
        &src_repo,
        &args(&["backup", src.to_str().unwrap(), "--tag", "first"]),
        &source_env,
    ));
    fs::write(src.join("later.txt"), compressible_text(40_000, 3)).unwrap();
    ok_text(&cairn(
        &src_repo,
        &args(&["backup", src.to_str().unwrap()]),
        &source_env,
    ));

    let pw_file = base.join("source-password");
    fs::write(&pw_file, SOURCE_PASSWORD).unwrap();
    let copy_args = [
        "copy",
        "--from-repo",
        src_repo.to_str().unwrap(),
        "--from-password-file",
        pw_file.to_str().unwrap(),
    ];
    let out = ok_text(&cairn(&dst, &args(&copy_args), &[]));
    assert!(out.contains("2 snapshots copied, 0 already there"), "{out}");

    // Each copy restores as its original does.
    let snapshots = |repo: &Path, pw: &str| -> Vec<serde_json::Value> {
        let out = ok_text(&cairn(
            repo,
            &args(&["snapshots", "--json"]),
            &[("CAIRN_PASSWORD", pw)],
        ));
        serde_json::from_str(&out).unwrap()
    };
    let (originals, copies) = (
        snapshots(&src_repo, SOURCE_PASSWORD),
        snapshots(&dst, PASSWORD),
    );
    assert_eq!(copies.len(), 2);
    for (original, copied) in originals.iter().zip(&copies) {
        for field in ["time", "hostname", "paths", "tags"] {
            assert_eq!(original[field], copied[field], "{field}");
        }
        let id = |s: &serde_json::Value| s["short_id"].as_str().unwrap().to_string();
        let from_source = restore_cli(&src_repo, &id(original), &base.join("a"), SOURCE_PASSWORD);
        let from_copy = restore_cli(&dst, &id(copied), &base.join("b"), PASSWORD);
        assert!(walk_files(&from_source).len() > 100);
        assert_same_tree(&from_source, &from_copy);
    }
    let checked = ok_text(&cairn(&dst, &args(&["check", "--read-data"]), &[]));
    assert!(checked.contains("no damage found"), "{checked}");

    // Again: nothing to read, nothing stored.
    let data_before = fingerprint(&dst.join("data"));
    let out = ok_text(&cairn(&dst, &args(&copy_args), &[]));
    assert!(
        out.contains("0 snapshots copied, 2 already there; 0 blobs read, 0 blobs added"),
        "{out}"
    );
    assert_eq!(data_before, fingerprint(&dst.join("data")));

    // A selection: only the tagged snapshot, into a third repository.
    let third = base.join("third");
    ok_text(&cairn(
        &third,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    let mut tagged = copy_args.to_vec();
    tagged.extend(["--tag", "first"]);
    let out = ok_text(&cairn(&third, &args(&tagged), &[]));
    assert!(out.contains("1 snapshot copied"), "{out}");
}

#[test]
fn a_copy_with_a_wrong_source_password_fails_and_writes_nothing() {
    let (_tmp, base, dst) = cli_fixture();
    let src_repo = base.join("source");
    ok_text(&cairn(
        &src_repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    let before = fingerprint(&dst);
    let out = cairn(
        &dst,
        &args(&["copy", "--from-repo", src_repo.to_str().unwrap()]),
        &[("CAIRN_FROM_PASSWORD", "wrong")],
    );
    assert_clean_failure(&out, 12, "wrong password");
    let out = cairn(&dst, &args(&["copy"]), &[]);
    assert_clean_failure(&out, 1, "CAIRN_FROM_REPOSITORY");
    assert_eq!(before, fingerprint(&dst));
}

#[test]
fn shared_chunking_makes_backups_deduplicate_against_copied_data() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..3 {
        write_noise_file(&src.join(format!("{i}.bin")), 4 << 20, i);
    }
    let mut source = init_repo(&base.join("source"));
    backup_dir(&mut source, &src);
    let snapshots = source.snapshots().unwrap();
    let force = BackupOptions {
        force: true,
        ..Default::default()
    };
    let mut added = Vec::new();
    for shared in [true, false] {
        let opts = match shared {
            true => fast_init().chunking_like(&source),
            false => fast_init(),
        };
        let path = base.join(format!("copy-{shared}"));
        let mut target =
            Repository::init(LocalBackend::new(&path), PASSWORD.as_bytes(), &opts).unwrap();
        let report = copy(&source, &mut target, &snapshots, None).unwrap();
        assert_eq!(report.copied.len(), 1);
        let out = base.join(format!("out-{shared}"));
        let copied = target.load_snapshot(&report.copied[0].1).unwrap();
        restore(&target, &copied, None, &out).unwrap();
        assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
        // The same files, read again, into the copy.
        let r = backup(&mut target, std::slice::from_ref(&src), &force).unwrap();
        added.push(r.snapshot.summary.data_blobs_added);
    }
    assert_eq!(
        added[0], 0,
        "with the source's chunking every chunk is there"
    );
    assert!(
        added[1] > 6,
        "with other chunking the cuts differ: {added:?}"
    );
}

#[test]
fn init_copies_the_chunking_of_another_repository() {
    let (_tmp, base, _) = cli_fixture();
    let source_env = [("CAIRN_PASSWORD", SOURCE_PASSWORD)];
    let other = base.join("other");
    ok_text(&cairn(
        &other,
        &args(&["init", "--kdf-memory-kib", "64", "--chunk-size-kib", "256"]),
        &source_env,
    ));
    let list = [
        "init",
        "--kdf-memory-kib",
        "64",
        "--copy-chunker-params-from",
        other.to_str().unwrap(),
    ];
    let target = base.join("target");
    ok_text(&cairn(
        &target,
        &args(&list),
        &[("CAIRN_FROM_PASSWORD", SOURCE_PASSWORD)],
    ));
    let config = |repo: &Path, pw: &str| -> serde_json::Value {
        let out = ok_text(&cairn(
            repo,
            &args(&["cat", "config"]),
            &[("CAIRN_PASSWORD", pw)],
        ));
        serde_json::from_str(&out).unwrap()
    };
    let (theirs, ours) = (config(&other, SOURCE_PASSWORD), config(&target, PASSWORD));
    assert_eq!(theirs["chunker"], ours["chunker"]);
    assert_eq!(ours["chunker"]["avg_size"], 256 * 1024);
    assert_ne!(theirs["repo_id"], ours["repo_id"]);
    // Without the source's password nothing is created.
    let refused = base.join("refused");
    let out = cairn(&refused, &args(&list), &[("CAIRN_FROM_PASSWORD", "wrong")]);
    assert_clean_failure(&out, 12, "wrong password");
    assert!(!refused.exists());
}
