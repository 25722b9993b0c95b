//! The `cairn` binary against a real S3 server (SeaweedFS, which
//! `scripts/test.sh` installs): every command works on an `s3:` location,
//! and with bad credentials, a missing bucket or none at all every command
//! fails at once, on one line that says what to fix and shows no secret.

use cairn_engine::backend::{Backend, FileKind, S3Backend};
use cairn_engine::Error;
use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use cairn_tests::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// Cheap password hashing for `init` and `key add`.
const CHEAP: [&str; 4] = ["--kdf-memory-kib", "64", "--kdf-iterations", "1"];

/// Runs `cairn` on the S3 location `location` with `env` added to what
/// reaches the server.
fn run(location: &str, list: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    all.extend_from_slice(env);
    cairn(Path::new(location), list, &all)
}

/// `list` of plain strings, with `paths` after them.
fn with_paths<'a>(list: &[&'a str], paths: &[&'a Path]) -> Vec<&'a OsStr> {
    let mut all = args(list);
    all.extend(paths.iter().map(|p| p.as_os_str()));
    all
}

/// A tree of a few thousand files: the varied tree and 2,000 more in 20
/// directories, some large enough to be chunked.
fn build_tree(root: &Path) {
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

/// Restores the latest snapshot of `src` and compares it with `src`.
fn restore_and_compare(location: &str, src: &Path, out: &Path) {
    let _ = fs::remove_dir_all(out);
    ok_text(&run(
        location,
        &with_paths(&["restore", "latest", "--target"], &[out]),
        &[],
    ));
    assert_same_tree(src, &out.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn every_command_works_on_an_s3_repository() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    build_tree(&src);
    let location = server.location("work/repo");

    let mut init = vec!["init", "--pack-size-mib", "4"];
    init.extend(CHEAP);
    let out = ok_text(&run(&location, &args(&init), &[]));
    assert!(out.contains(&location), "{out}");
    let again = run(&location, &args(&init), &[]);
    assert_clean_failure(&again, 1, "a repository already exists at s3:");

    ok_text(&run(&location, &with_paths(&["backup"], &[&src]), &[]));
    restore_and_compare(&location, &src, &base.join("out"));
    ok_text(&run(&location, &args(&["check", "--read-data"]), &[]));

    // A second snapshot, then only it is kept: prune deletes objects.
    fs::remove_file(src.join("large.bin")).unwrap();
    fs::write(src.join("new file"), b"added later").unwrap();
    ok_text(&run(&location, &with_paths(&["backup"], &[&src]), &[]));
    ok_text(&run(
        &location,
        &args(&["forget", "--keep-last", "1", "--prune"]),
        &[],
    ));
    let listed = ok_text(&run(&location, &args(&["snapshots", "--json"]), &[]));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    ok_text(&run(&location, &args(&["check", "--read-data"]), &[]));
    restore_and_compare(&location, &src, &base.join("out"));

    // A second password opens it too.
    let file = base.join("new-password");
    fs::write(&file, "another password\n").unwrap();
    let mut add = with_paths(&["key", "add", "--new-password-file"], &[&file]);
    add.extend(args(&CHEAP));
    ok_text(&run(&location, &add, &[]));
    let keys = ok_text(&run(
        &location,
        &args(&["key", "list", "--json"]),
        &[("CAIRN_PASSWORD", "another password")],
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
        ok_text(&run(&location, &args(list), &[]));
    }
}

/// Runs every command on `location` with `env`; each must fail within
/// seconds, with exit code 1, on one line mentioning `needle`, and show none
/// of `secrets`.
fn every_command_fails(location: &str, env: &[(&str, &str)], needle: &str, secrets: &[&str]) {
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
        assert_clean_failure(&out, 1, needle);
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

#[test]
fn bad_credentials_fail_every_command_at_once_without_showing_secrets() {
    let server = S3Server::start();
    let location = server.location("creds/repo");
    let mut init = vec!["init"];
    init.extend(CHEAP);
    ok_text(&run(&location, &args(&init), &[]));

    let wrong = "wrong-secret-7c1e9a";
    // The library: every call is refused for good, saying what to fix.
    let backend = S3Backend::new(server.config("creds/repo", wrong)).unwrap();
    let name = "ab".repeat(32);
    let calls: Vec<(&str, cairn_engine::Result<()>)> = vec![
        ("exists", backend.exists().map(drop)),
        ("create", backend.create(FileKind::Lock, &name, b"x")),
        ("read", backend.read(FileKind::Config, "config").map(drop)),
        ("list", backend.list(FileKind::Snapshot).map(drop)),
        ("remove", backend.remove(FileKind::Lock, &name)),
    ];
    for (call, result) in calls {
        match result {
            Err(Error::StorageRefused(m)) => {
                assert!(m.contains("AWS_SECRET_ACCESS_KEY"), "{call}: {m}");
                assert!(!m.contains(wrong) && !m.contains(SECRET_KEY), "{call}: {m}");
            }
            other => panic!("{call}: {other:?}"),
        }
    }
    every_command_fails(
        &location,
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", wrong),
        ],
        "check AWS_SECRET_ACCESS_KEY",
        &[wrong, SECRET_KEY],
    );
    every_command_fails(
        &location,
        &[
            ("AWS_ACCESS_KEY_ID", "no-such-key"),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ],
        "check AWS_ACCESS_KEY_ID",
        &[SECRET_KEY],
    );
    every_command_fails(
        &location,
        &[("AWS_ACCESS_KEY_ID", ACCESS_KEY)],
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SECRET_ACCESS_KEY is not set)",
        &[SECRET_KEY],
    );
    // The repository is unharmed.
    ok_text(&run(&location, &args(&["check"]), &[]));
}

#[test]
fn a_missing_bucket_or_a_malformed_location_says_so() {
    let server = S3Server::start();
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let missing = format!("s3:{}/no-such-bucket/repo", server.endpoint());
    let needle = format!("no bucket no-such-bucket at {}", server.endpoint());
    every_command_fails(&missing, &env, &needle, &[SECRET_KEY]);
    let malformed = format!("s3:{}", server.endpoint());
    every_command_fails(&malformed, &env, "names no bucket", &[SECRET_KEY]);
    let with_secret = format!("s3:http://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1/bucket");
    every_command_fails(
        &with_secret,
        &env,
        "credentials do not belong",
        &[SECRET_KEY],
    );
    // Nothing listens: a storage error naming the location, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("s3:http://127.0.0.1:{port}/bucket");
    every_command_fails(&nowhere, &env, &nowhere, &[SECRET_KEY]);
}

#[test]
fn a_local_location_may_be_written_with_its_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = PathBuf::from(format!("local:{}", tmp.path().join("repo").display()));
    ok_text(&cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64"]),
        &[],
    ));
    assert!(tmp.path().join("repo/config").exists());
    ok_text(&cairn(&tmp.path().join("repo"), &args(&["snapshots"]), &[]));
}

/// `copy` from a local repository into an S3 one with another password, and
/// back: each copy restores byte-identical and checks clean, and a second
/// copy uploads nothing.
#[test]
fn copy_between_local_and_s3_repositories() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (src, local) = (base.join("src"), base.join("local"));
    build_tree(&src);
    let local_pw = base.join("local-password");
    fs::write(&local_pw, "the local repository's password").unwrap();
    let local_env = [("CAIRN_PASSWORD_FILE", local_pw.to_str().unwrap())];
    let mut init = vec!["init"];
    init.extend(CHEAP);
    ok_text(&cairn(&local, &args(&init), &local_env));
    ok_text(&cairn(
        &local,
        &with_paths(&["backup"], &[&src]),
        &local_env,
    ));

    let remote = server.location("copies/repo");
    ok_text(&run(&remote, &args(&init), &[]));
    let from_local = [
        "copy",
        "--from-repo",
        local.to_str().unwrap(),
        "--from-password-file",
        local_pw.to_str().unwrap(),
    ];
    let out = ok_text(&run(&remote, &args(&from_local), &[]));
    assert!(out.contains("1 snapshot copied"), "{out}");
    restore_and_compare(&remote, &src, &base.join("out"));
    let checked = ok_text(&run(&remote, &args(&["check", "--read-data"]), &[]));
    assert!(checked.contains("no damage found"), "{checked}");
    let packs = server.backend("copies/repo").list(FileKind::Pack).unwrap();
    let out = ok_text(&run(&remote, &args(&from_local), &[]));
    assert!(out.contains("0 blobs added"), "{out}");
    assert_eq!(
        server.backend("copies/repo").list(FileKind::Pack).unwrap(),
        packs,
        "no pack uploaded"
    );

    // Back from S3 into a new local repository.
    let back = base.join("back");
    ok_text(&cairn(&back, &args(&init), &[]));
    let pw = base.join("remote-password");
    fs::write(&pw, PASSWORD).unwrap();
    let list = [
        "copy",
        "--from-repo",
        remote.as_str(),
        "--from-password-file",
        pw.to_str().unwrap(),
    ];
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    ok_text(&cairn(&back, &args(&list), &env));
    let out = base.join("out-back");
    ok_text(&cairn(
        &back,
        &with_paths(&["restore", "latest", "--target"], &[&out]),
        &[],
    ));
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}
