//! The `cairn` binary against a real S3 server (SeaweedFS, which
//! `scripts/test.sh` installs): every command works on an `s3:` location,
//! and with bad credentials, a missing bucket or none at all every command
//! fails at once, on one line that says what to fix and shows no secret.

use cairn_engine::backend::{Backend, FileKind, S3Backend};
use cairn_engine::Error;
use cairn_tests::remote::*;
use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use cairn_tests::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs `cairn` on the S3 location `location` with `env` added to what
/// reaches the server.
fn run(location: &str, list: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let mut all = S3_ENV.to_vec();
    all.extend_from_slice(env);
    cairn(Path::new(location), list, &all)
}

/// The credentials the server accepts.
const S3_ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
];

#[test]
fn every_command_works_on_an_s3_repository() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    every_command_works(&server.location("work/repo"), &S3_ENV, &base);
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
    restore_and_compare(&remote, &S3_ENV, &src, &base.join("out"));
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

/// Backups to S3 killed with SIGKILL at random moments: after each, `check
/// --read-data` finds no damage, and the next backup completes and restores
/// byte-identical. The seed of the moments is printed; `CAIRN_KILL_SEED`
/// repeats a run.
#[test]
fn backups_to_s3_killed_at_random_moments_leave_a_repository_that_checks_clean() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    build_tree(&src);
    let location = server.location("killed/repo");
    let mut init = vec!["init", "--pack-size-mib", "4"];
    init.extend(CHEAP);
    ok_text(&run(&location, &args(&init), &[]));
    let seed: u64 = match std::env::var("CAIRN_KILL_SEED") {
        Ok(s) => s.parse().unwrap(),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            .into(),
    };
    eprintln!("CAIRN_KILL_SEED={seed}");
    let mut noise = Noise::new(seed);
    // How long a whole backup takes: the kills land within that.
    let started = std::time::Instant::now();
    ok_text(&run(&location, &with_paths(&["backup"], &[&src]), &[]));
    let whole = started.elapsed().as_millis() as u64;
    for round in 0..8u64 {
        // New data each round, so that every backup has packs to upload.
        write_noise_file(&src.join("large.bin"), 24 << 20, seed + round);
        let list = with_paths(&["backup"], &[&src]);
        let mut command = cairn_command(Path::new(&location), &list, &S3_ENV);
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = whole * u64::from(noise.bytes(1)[0]) / 255;
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        eprintln!("round {round}: killed after {delay} of {whole} ms ({status})");
        let checked = ok_text(&run(&location, &args(&["check", "--read-data"]), &[]));
        assert!(
            checked.contains("no damage found"),
            "round {round}, killed after {delay} ms ({status}): {checked}"
        );
    }
    ok_text(&run(&location, &with_paths(&["backup"], &[&src]), &[]));
    restore_and_compare(&location, &S3_ENV, &src, &base.join("out"));
    ok_text(&run(&location, &args(&["check", "--read-data"]), &[]));
}
