//! The audit log: each command that changes the repository (and each
//! restore) adds a record with host, user, command, snapshots and outcome;
//! `cairn audit` lists them; a record removed from storage, in the middle
//! of the chain or the newest, is found by `audit --verify` and `check`.

use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

/// `cairn audit --json`, as a list.
fn records(repo: &Path) -> Vec<serde_json::Value> {
    let out = ok_text(&cairn(repo, &args(&["audit", "--json"]), &[]));
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The snapshot IDs of `cairn snapshots --json`, oldest first.
fn snapshot_ids(repo: &Path) -> Vec<String> {
    let out = ok_text(&cairn(repo, &args(&["snapshots", "--json"]), &[]));
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// A repository at `base/repo`, made with the binary, and a tree at `base/src`.
fn fixture(base: &Path) -> (PathBuf, PathBuf) {
    let (repo, src) = (base.join("repo"), base.join("src"));
    build_varied_tree(&src);
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    (repo, src)
}

#[test]
fn commands_are_audited_and_a_removed_record_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (repo, src) = fixture(base);
    let run = |list: &[&str]| ok_text(&cairn(&repo, &args(list), &[]));
    let src_arg = src.to_str().unwrap();
    run(&["backup", src_arg]);
    fs::write(src.join("new file"), b"changed").unwrap();
    run(&["backup", src_arg]);
    let first = snapshot_ids(&repo)[0].clone();
    run(&["forget", &first]);
    run(&["prune"]);
    run(&["tag", "latest", "--add", "kept"]);
    let out = base.join("out");
    run(&["restore", "latest", "--target", out.to_str().unwrap()]);

    let log = records(&repo);
    let commands: Vec<&str> = log.iter().map(|r| r["command"].as_str().unwrap()).collect();
    assert_eq!(
        commands,
        ["init", "backup", "backup", "forget", "prune", "tag", "restore"],
        "{log:#?}"
    );
    let host = cairn_engine::sysinfo::hostname();
    let user = cairn_engine::sysinfo::username();
    for r in &log {
        assert_eq!(r["host"], host.as_str(), "{r:#}");
        assert_eq!(r["user"], user.as_str(), "{r:#}");
        assert!(r["outcome"].as_str().unwrap().starts_with("ok"), "{r:#}");
    }
    // Who removed the first snapshot, and when: the forget record says.
    assert_eq!(log[3]["snapshots"][0], first.as_str(), "{log:#?}");
    assert_eq!(log[1]["snapshots"][0], first.as_str(), "{log:#?}");
    // Each record names the one before it.
    for pair in log.windows(2) {
        assert_eq!(pair[1]["previous"][0], pair[0]["id"], "{log:#?}");
    }
    let text = run(&["audit"]);
    assert!(
        text.contains(&format!(
            "{user}@{host}  forget: ok  snapshots {}",
            &first[..8]
        )),
        "{text}"
    );
    assert!(run(&["audit", "--verify"]).contains("audit log intact: 7 records"));

    // A record removed from the middle of the chain is found by name.
    let forget_id = log[3]["id"].as_str().unwrap();
    fs::remove_file(repo.join("audit").join(forget_id)).unwrap();
    let out = cairn(&repo, &args(&["audit", "--verify"]), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!("record {} is missing", &forget_id[..8])),
        "{stderr}"
    );
    let check = cairn(&repo, &args(&["check"]), &[]);
    assert_eq!(check.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&check.stderr).contains("warning: audit log: record "));
}

#[test]
fn a_removed_newest_record_shows_as_a_snapshot_no_record_accounts_for() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = fixture(tmp.path());
    ok_text(&cairn(
        &repo,
        &args(&["backup", src.to_str().unwrap()]),
        &[],
    ));
    let log = records(&repo);
    let newest = log.last().unwrap()["id"].as_str().unwrap();
    fs::remove_file(repo.join("audit").join(newest)).unwrap();
    let out = cairn(&repo, &args(&["audit", "--verify"]), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let snapshot = &snapshot_ids(&repo)[0];
    assert!(
        stderr.contains(&format!(
            "no record accounts for snapshot {}",
            &snapshot[..8]
        )),
        "{stderr}"
    );
}
