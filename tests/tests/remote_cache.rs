//! The local cache of a remote repository's metadata, against a real S3
//! server behind a proxy that logs every request: with a warm cache an
//! unchanged re-backup of 10,000 files downloads no pack in a few dozen
//! requests; a damaged cached file is noticed and read from storage again;
//! the cache is pruned of what the repository no longer has; without the
//! cache, packs of trees are read whole, once each.

use cairn_engine::backend::{Backend, FileKind};
use cairn_tests::proxy::{FaultProxy, ProxyPlan};
use cairn_tests::remote::*;
use cairn_tests::s3::{S3Server, ACCESS_KEY, BUCKET, SECRET_KEY};
use cairn_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

/// 10,000 small files in 100 directories.
fn ten_thousand_files(root: &Path) {
    for d in 0..100 {
        let dir = root.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(dir.join(format!("f{f:02}")), format!("file {d} {f}\n")).unwrap();
        }
    }
}

/// Requests in `log` that download part of a pack (not those that list packs).
fn pack_downloads(log: &[String]) -> Vec<&String> {
    log.iter()
        .filter(|r| r.starts_with("GET /") && r.contains("/data/") && !r.contains('?'))
        .collect()
}

/// The one repository folder under the cache base `base`.
fn repo_cache(base: &Path) -> PathBuf {
    let dirs: Vec<_> = fs::read_dir(base.join("cairn"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 64)
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn an_unchanged_rebackup_with_a_warm_cache_downloads_no_pack() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.endpoint(), ProxyPlan::default());
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    ten_thousand_files(&src);
    let cache = base.join("cache");
    let location = format!("s3:{}/{BUCKET}/cached", proxy.endpoint());
    let cache_var = cache.to_str().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("XDG_CACHE_HOME", cache_var),
    ];
    let run = |list: &[&str], paths: &[&Path]| {
        let out = cairn(Path::new(&location), &with_paths(list, paths), &env);
        ok_text(&out)
    };
    let mut init = vec!["init"];
    init.extend(CHEAP);
    run(&init, &[]);
    run(&["backup"], &[&src]);
    let dir = repo_cache(&cache);

    // Warm: the first backup's trees and index went into the cache as written.
    let before = proxy.log().len();
    let said = run(&["backup"], &[&src]);
    assert!(said.contains("0 new, 0 changed, 10000 unchanged"), "{said}");
    let log = proxy.log()[before..].to_vec();
    assert!(pack_downloads(&log).is_empty(), "{log:#?}");
    assert!(log.len() < 50, "{} requests:\n{log:#?}", log.len());
    eprintln!(
        "unchanged re-backup of 10,000 files, warm cache: {} requests, no pack downloaded",
        log.len()
    );

    // Opening asks for each thing once, and nothing twice: the config (no
    // HEAD first), the key files' names and the key file, the marks' and
    // index files' names; then the listing of snapshots.
    let before = proxy.log().len();
    run(&["snapshots"], &[]);
    let log = proxy.log()[before..].to_vec();
    let asked = |what: &str| log.iter().filter(|r| r.contains(what)).count();
    assert_eq!(log.len(), 6, "{log:#?}");
    assert_eq!(asked("HEAD "), 0, "{log:#?}");
    assert_eq!(asked("/cached/config"), 1, "{log:#?}");
    assert_eq!(asked("/cached/keys/"), 1, "{log:#?}");
    for listed in ["keys", "marks", "index", "snapshots"] {
        assert_eq!(asked(&format!("prefix=cached/{listed}/")), 1, "{log:#?}");
    }

    // Without the cache, the same backup reads the parent's trees from
    // storage: each pack of trees once, whole, not one request per tree.
    let before = proxy.log().len();
    let said = run(&["--no-cache", "backup"], &[&src]);
    assert!(said.contains("0 new, 0 changed, 10000 unchanged"), "{said}");
    let cold = proxy.log()[before..].to_vec();
    let tree_packs = names(&dir.join("trees")).len();
    let downloads = pack_downloads(&cold).len();
    assert!(
        (1..=tree_packs).contains(&downloads),
        "{tree_packs} packs of trees:\n{cold:#?}"
    );

    // Damaged copies fail their checks, are read from storage again, and
    // the backup still reuses every tree.
    for folder in ["trees", "index", "snapshots"] {
        for name in names(&dir.join(folder)) {
            let path = dir.join(folder).join(name);
            let mut bytes = fs::read(&path).unwrap();
            // In a blob, not in the header at the end of a pack.
            let at = bytes.len() / 4;
            bytes[at] ^= 0x40;
            fs::write(&path, bytes).unwrap();
        }
    }
    let before = proxy.log().len();
    let said = run(&["backup"], &[&src]);
    let damaged = proxy.log()[before..].to_vec();
    assert!(!pack_downloads(&damaged).is_empty(), "{damaged:#?}");
    assert!(said.contains("in 0 data blobs and "), "{said}");
    let before = proxy.log().len();
    run(&["backup"], &[&src]);
    let repaired = proxy.log()[before..].to_vec();
    assert!(pack_downloads(&repaired).is_empty(), "{repaired:#?}");

    // What the repository no longer has leaves the cache.
    run(&["forget", "--keep-last", "1", "--prune"], &[]);
    run(&["snapshots"], &[]);
    let storage = server.backend("cached");
    let mut listed = storage.list(FileKind::Snapshot).unwrap();
    listed.sort();
    assert_eq!(listed.len(), 1);
    assert_eq!(names(&dir.join("snapshots")), listed);
    let mut listed = storage.list(FileKind::Index).unwrap();
    listed.sort();
    assert_eq!(names(&dir.join("index")), listed);
    for pack in names(&dir.join("trees")) {
        assert!(storage.size(FileKind::Pack, &pack).is_ok(), "{pack}");
    }

    // A cached repository restores what was backed up.
    let out = base.join("out");
    run(&["restore", "latest", "--target"], &[&out]);
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn a_local_repository_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    build_varied_tree(&src);
    let cache = base.join("cache");
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let repo = base.join("repo");
    let mut init = vec!["init"];
    init.extend(CHEAP);
    ok_text(&cairn(&repo, &args(&init), &env));
    ok_text(&cairn(&repo, &with_paths(&["backup"], &[&src]), &env));
    ok_text(&cairn(&repo, &args(&["ls", "latest"]), &env));
    let cached: Vec<_> = fs::read_dir(cache.join("cairn"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        cached.iter().all(|n| n.len() != 64),
        "a local repository got a cache: {cached:?}"
    );
}
