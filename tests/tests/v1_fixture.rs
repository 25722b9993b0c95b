//! A repository written by cairn before key epochs, put-only keys and hidden
//! pack headers (tests/fixtures/v1, made once by make-v1-repo.sh and never
//! regenerated) still opens with its password and its machine key, passes
//! `check --read-data`, restores byte for byte, takes a new backup that
//! deduplicates against it, and serves its archived WAL file.

use cairn_tests::*;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1")
}

/// Runs cairn on `repo` with the fixture's password file.
fn run(repo: &Path, list: &[&str]) -> std::process::Output {
    let password = fixture().join("password");
    let mut all = vec!["--password-file", password.to_str().unwrap(), "--no-cache"];
    all.extend(list);
    cairn(repo, &args(&all), &[("CAIRN_PASSWORD", "")])
}

/// The snapshots as `snapshots --json` lists them.
fn snapshots(repo: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok_text(&run(repo, &["snapshots", "--json"]))).unwrap()
}

/// Files, symlinks and directories below `root` with kind, mode and content,
/// without times (a tar extraction and a restore set directory times
/// differently).
fn contents(root: &Path) -> Vec<(Vec<u8>, char, u32, Vec<u8>)> {
    tree_listing(root)
        .into_iter()
        .map(|(name, e)| (name, e.kind, e.mode, e.content))
        .collect()
}

#[test]
fn a_version_1_repository_opens_checks_restores_and_takes_new_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_repo(&fixture().join("repo"), &repo);
    let source = tmp.path().join("source");
    std::fs::create_dir(&source).unwrap();
    tar::Archive::new(std::fs::File::open(fixture().join("source.tar")).unwrap())
        .unpack(&source)
        .unwrap();

    let listed = snapshots(&repo);
    let tags: Vec<_> = listed
        .iter()
        .map(|s| s["tags"][0].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["first", "third"]);
    ok_text(&run(&repo, &["check", "--read-data"]));

    // The newest snapshot is the tree in source.tar.
    let newest = &listed[1];
    let out = tmp.path().join("out");
    ok_text(&run(
        &repo,
        &[
            "restore",
            newest["id"].as_str().unwrap(),
            "--target",
            out.to_str().unwrap(),
        ],
    ));
    let path = newest["paths"][0].as_str().unwrap();
    let restored = out.join(path.trim_start_matches('/'));
    assert_eq!(contents(&source), contents(&restored));

    // The newest snapshot is held until 2030: forget keeps it.
    let printed = run(&repo, &["forget", "--keep-tag", "first", "--prune"]);
    assert_eq!(snapshots(&repo).len(), 2, "{}", ok_text(&printed));

    // A new backup of the same tree deduplicates against the old data: the
    // 100 KB of random bytes are not stored again.
    let before = dir_size(&repo);
    ok_text(&run(&repo, &["backup", source.to_str().unwrap()]));
    let grown = dir_size(&repo) - before;
    assert!(grown < 30_000, "the repository grew by {grown} bytes");
    // What it wrote is sealed as version 1 sealed it: suite 1, a one-part
    // index file, no padding (the frame's codec byte is inside, so padding
    // shows as lengths that are not all Padmé values).
    let new_files: Vec<_> = walk_files(&repo)
        .into_iter()
        .filter(|f| {
            !fixture()
                .join("repo")
                .join(f.strip_prefix(&repo).unwrap())
                .exists()
        })
        .filter(|f| !f.starts_with(repo.join("locks")))
        .collect();
    assert!(new_files.len() >= 4, "{new_files:?}");
    for f in &new_files {
        let bytes = std::fs::read(f).unwrap();
        let first = if f.starts_with(repo.join("data")) {
            let n = bytes.len();
            let header = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
            bytes[n - 8 - header]
        } else {
            bytes[0]
        };
        assert_eq!(first, 1, "{} is not a suite-1 envelope", f.display());
    }
    let lengths: Vec<u64> = new_files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .collect();
    assert!(
        lengths.iter().any(|&l| cairn_format::frame::padme(l) != l),
        "every new file has a padded length: {lengths:?}"
    );
    let again = tmp.path().join("again");
    ok_text(&run(
        &repo,
        &["restore", "latest", "--target", again.to_str().unwrap()],
    ));
    assert_eq!(
        contents(&source),
        contents(&again.join(source.strip_prefix("/").unwrap()))
    );
    ok_text(&run(&repo, &["check", "--read-data"]));

    // Key roles need key epochs, which this repository predates: said in one line.
    let never = tmp.path().join("never");
    let out = run(
        &repo,
        &[
            "key",
            "add",
            "--put-only",
            "--machine",
            never.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("made before key roles"), "{said}");
    assert!(
        !never.exists(),
        "the machine key's password file is left behind"
    );

    // The machine key opens it too, and the archived WAL file comes back.
    let machine = fixture().join("machine-password");
    let wal = tmp.path().join("history");
    let out = cairn(
        &repo,
        &args(&[
            "--password-file",
            machine.to_str().unwrap(),
            "--no-cache",
            "pg",
            "restore-wal",
            "00000002.history",
            wal.to_str().unwrap(),
        ]),
        &[("CAIRN_PASSWORD", "")],
    );
    ok_text(&out);
    assert_eq!(std::fs::read(&wal).unwrap(), b"timeline history\n");
}
