//! What the end-to-end tests of every remote backend share: a tree of a few
//! thousand files, the round of every command on a repository, and the
//! check that every command fails quickly and cleanly.

use crate::*;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Cheap password hashing for `init` and `key add`.
pub const CHEAP: [&str; 4] = ["--kdf-memory-kib", "64", "--kdf-iterations", "1"];

/// `list` of plain strings, with `paths` after them.
pub fn with_paths<'a>(list: &[&'a str], paths: &[&'a Path]) -> Vec<&'a OsStr> {
    let mut all = args(list);
    all.extend(paths.iter().map(|p| p.as_os_str()));
    all
}

/// A tree of a few thousand files: the varied tree and 2,000 more in 20
/// directories, some large enough to be chunked, and one file of 24 MiB.
pub fn build_tree(root: &Path) {
    build_varied_tree(root);
    for d in 0..20 {
        let dir = root.join(format!("many/{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let content = compressible_text(f * 37 + d, (d * 100 + f) as u64);
            fs::write(dir.join(format!("{f:03}.txt")), content).unwrap();
        }
    }
    write_noise_file(&root.join("large.bin"), 24 << 20, 7);
}

/// Restores the latest snapshot at `location` into `out` and compares it
/// with `src`, the absolute path that was backed up.
pub fn restore_and_compare(location: &str, env: &[(&str, &str)], src: &Path, out: &Path) {
    let _ = fs::remove_dir_all(out);
    let list = with_paths(&["restore", "latest", "--target"], &[out]);
    ok_text(&cairn(Path::new(location), &list, env));
    assert_same_tree(src, &out.join(src.strip_prefix("/").unwrap()));
}

/// Runs every command on a new repository at `location`, reached with
/// `env`: init, backups of a tree of thousands of files that restore
/// byte-identical, `check --read-data`, `forget --prune`, `key add` and the
/// read-only commands. `base` is a scratch directory; the commands keep
/// their cache in it, and a remote repository must be cached there.
pub fn every_command_works(location: &str, env: &[(&str, &str)], base: &Path) {
    let cache = base.join("cache").to_str().unwrap().to_string();
    let mut with_cache = env.to_vec();
    with_cache.push(("XDG_CACHE_HOME", &cache));
    let env = &with_cache[..];
    let run = |list: &[&OsStr]| cairn(Path::new(location), list, env);
    let src = base.join("src");
    build_tree(&src);

    let mut init = vec!["init", "--pack-size-mib", "4"];
    init.extend(CHEAP);
    let out = ok_text(&run(&args(&init)));
    assert!(out.contains(location), "{out}");
    let again = run(&args(&init));
    assert_clean_failure(&again, 1, "a repository already exists at ");

    ok_text(&run(&with_paths(&["backup"], &[&src])));
    restore_and_compare(location, env, &src, &base.join("out"));
    ok_text(&run(&args(&["check", "--read-data"])));

    // A second snapshot, then only it is kept: prune deletes files.
    fs::remove_file(src.join("large.bin")).unwrap();
    fs::write(src.join("new file"), b"added later").unwrap();
    ok_text(&run(&with_paths(&["backup"], &[&src])));
    ok_text(&run(&args(&["forget", "--keep-last", "1", "--prune"])));
    let listed = ok_text(&run(&args(&["snapshots", "--json"])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let checked = ok_text(&run(&args(&["check", "--read-data"])));
    assert!(checked.contains("no damage found"), "{checked}");
    restore_and_compare(location, env, &src, &base.join("out"));

    // A second password opens it too.
    let file = base.join("new-password");
    fs::write(&file, "another password\n").unwrap();
    let mut add = with_paths(&["key", "add", "--new-password-file"], &[&file]);
    add.extend(args(&CHEAP));
    ok_text(&run(&add));
    let mut other = env.to_vec();
    other.push(("CAIRN_PASSWORD", "another password"));
    let keys = ok_text(&cairn(
        Path::new(location),
        &args(&["key", "list", "--json"]),
        &other,
    ));
    let keys: serde_json::Value = serde_json::from_str(&keys).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    for list in [
        &["ls", "latest"][..],
        &["stats"],
        &["find", "*.txt"],
        &["unlock"],
        &["repair", "index", "--dry-run"],
    ] {
        ok_text(&run(&args(list)));
    }
    if !location.starts_with('/') && !location.starts_with("local:") {
        let cached = Path::new(&cache).join("cairn");
        let repos: Vec<_> = fs::read_dir(&cached)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.len() == 64)
            .collect();
        assert_eq!(repos.len(), 1, "{repos:?}");
        let index = fs::read_dir(cached.join(&repos[0]).join("index")).unwrap();
        assert!(index.count() > 0, "no index file cached");
    }
}

/// Runs every command on `location` with `env`; each must fail within
/// seconds, with exit code 1, on one line mentioning `needle`, and show none
/// of `secrets`.
pub fn every_command_fails(location: &str, env: &[(&str, &str)], needle: &str, secrets: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let password = tmp.path().join("password");
    fs::write(&password, "new password\n").unwrap();
    let commands: Vec<Vec<&OsStr>> = vec![
        args(&["init", "--kdf-memory-kib", "64"]),
        with_paths(&["backup"], &[tmp.path()]),
        args(&["snapshots"]),
        args(&["snapshots", "--json"]),
        args(&["ls", "latest"]),
        with_paths(&["restore", "latest", "--target"], &[&target]),
        args(&["cat", "config"]),
        args(&["check", "--read-data"]),
        args(&["forget", "--keep-last", "1", "--prune"]),
        args(&["prune"]),
        args(&["stats"]),
        args(&["unlock"]),
        args(&["key", "list"]),
        with_paths(&["key", "add", "--new-password-file"], &[&password]),
    ];
    for list in commands {
        let started = Instant::now();
        let out = cairn(Path::new(location), &list, env);
        let elapsed = started.elapsed();
        let shown = format!("{list:?}");
        assert!(
            elapsed < Duration::from_secs(10),
            "{shown} took {elapsed:?}"
        );
        if list.contains(&OsStr::new("--json")) {
            // The failure is a JSON message, `cairn: ` and the line inside.
            assert_eq!(out.status.code(), Some(1), "{shown}");
            let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
            assert_eq!(error["message_type"], "exit_error", "{shown}");
            assert!(
                error["message"].as_str().unwrap().contains(needle),
                "{error}"
            );
        } else {
            assert_clean_failure(&out, 1, needle);
        }
        let printed = [&out.stdout[..], &out.stderr[..]].concat();
        let printed = String::from_utf8_lossy(&printed);
        for secret in secrets {
            assert!(
                !printed.contains(secret),
                "{shown} printed a secret: {printed}"
            );
        }
    }
}
