//! Bad input gets a one-line error, a non-zero exit, no panic, and changes nothing on disk.

use cairn_engine::backup::{backup, BackupOptions};
use cairn_tests::*;
use std::ffi::OsStr;
use std::path::Path;

/// A repository with one snapshot of a small tree.
fn repo_with_snapshot(tmp: &Path) -> std::path::PathBuf {
    let repo_path = tmp.join("repo");
    let src = tmp.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let mut repo = init_repo(&repo_path);
    backup(&mut repo, &[src], &BackupOptions::default()).unwrap();
    repo_path
}

#[test]
fn wrong_password_exits_12_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_snapshot(tmp.path());
    let before = fingerprint(&repo);
    for cmd in [
        &["snapshots"][..],
        &["backup", "/etc/hostname"],
        &["ls", "latest"],
    ] {
        let out = cairn(&repo, &args(cmd), &[("CAIRN_PASSWORD", "not the password")]);
        assert_clean_failure(&out, 12, "wrong password");
    }
    assert_eq!(before, fingerprint(&repo));
}

#[test]
fn a_missing_repository_exits_10_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    for cmd in [
        &["snapshots"][..],
        &["backup", "/etc/hostname"],
        &["restore", "latest", "--target", "/tmp/x"],
    ] {
        let out = cairn(&missing, &args(cmd), &[]);
        assert_clean_failure(&out, 10, "no repository");
    }
    assert!(!missing.exists());
}

#[test]
fn init_over_an_existing_repository_fails_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_snapshot(tmp.path());
    let before = fingerprint(&repo);
    let out = cairn(
        &repo,
        &args(&["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]),
        &[],
    );
    assert_clean_failure(&out, 1, "already exists");
    assert_eq!(before, fingerprint(&repo));
}

#[test]
fn a_nonexistent_backup_path_fails_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_snapshot(tmp.path());
    let before = fingerprint(&repo);
    let missing = tmp.path().join("no-such-dir");
    let out = cairn(
        &repo,
        &[
            OsStr::new("backup"),
            tmp.path().join("src").as_os_str(),
            missing.as_os_str(),
        ],
        &[],
    );
    assert_clean_failure(&out, 1, "no-such-dir");
    assert_eq!(before, fingerprint(&repo));
}

#[test]
fn unknown_and_ambiguous_snapshot_ids_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_path = tmp.path().join("repo");
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut repo = init_repo(&repo_path);
    // 17 snapshots: two of them must share a first hex digit.
    let mut ids = Vec::new();
    for i in 0..17 {
        std::fs::write(src.join("f"), format!("version {i}")).unwrap();
        ids.push(backup_dir(&mut repo, &src).id.to_hex());
    }
    let shared = ids
        .iter()
        .find(|a| ids.iter().filter(|b| b[..1] == a[..1]).count() > 1)
        .unwrap()[..1]
        .to_string();
    let before = fingerprint(&repo_path);
    let target = tmp.path().join("target");
    let out = cairn(
        &repo_path,
        &[
            OsStr::new("restore"),
            OsStr::new(&shared),
            OsStr::new("--target"),
            target.as_os_str(),
        ],
        &[],
    );
    assert_clean_failure(&out, 1, "ambiguous");
    assert!(String::from_utf8_lossy(&out.stderr).contains("give more of the ID"));
    let unknown = if ids.iter().any(|i| i.starts_with("ffffff")) {
        "eeeeee"
    } else {
        "ffffff"
    };
    let out = cairn(&repo_path, &args(&["ls", unknown]), &[]);
    assert_clean_failure(&out, 1, "no snapshot matches");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`cairn snapshots` lists them"));
    let out = cairn(&repo_path, &args(&["ls", "not-hex!"]), &[]);
    assert_clean_failure(&out, 1, "no snapshot matches");
    let out = cairn(&repo_path, &args(&["dump", &ids[0], "/no/such/file"]), &[]);
    assert_clean_failure(&out, 1, "is not in the snapshot: `cairn ls SNAPSHOT` lists");
    assert!(!target.exists(), "a failed restore created its target");
    assert_eq!(before, fingerprint(&repo_path));
    // A unique prefix works.
    let out = cairn(&repo_path, &args(&["ls", &ids[0][..12]]), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_password_source_fails_clearly_without_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_snapshot(tmp.path());
    let mut cmd = std::process::Command::new(cairn_bin());
    let out = cmd
        .env_clear()
        .env("CAIRN_REPOSITORY", &repo)
        .arg("snapshots")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_clean_failure(&out, 1, "no password given");
}

#[test]
fn password_file_and_command_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_snapshot(tmp.path());
    let pwfile = tmp.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let mut cmd = std::process::Command::new(cairn_bin());
    let out = cmd
        .env_clear()
        .env("CAIRN_REPOSITORY", &repo)
        .env("CAIRN_PASSWORD_FILE", &pwfile)
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd = std::process::Command::new(cairn_bin());
    let out = cmd
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CAIRN_REPOSITORY", &repo)
        .env("CAIRN_PASSWORD_COMMAND", format!("echo '{PASSWORD}'"))
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cairn(
        &repo,
        &args(&["snapshots"]),
        &[("CAIRN_PASSWORD_COMMAND", "exit 3")],
    );
    assert_clean_failure(&out, 1, "password command");
}

#[test]
fn an_unreadable_file_is_skipped_and_the_backup_exits_3() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let src = tmp.path().join("partly");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("ok"), b"fine").unwrap();
    let secret = src.join("secret");
    std::fs::write(&secret, b"no").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    // A directory that cannot be listed: recorded empty, and reported.
    let locked = src.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("inside"), b"unseen").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let repo = tmp.path().join("repo");
    // Root reads everything, so as root the binary runs as `nobody`.
    let as_root = unsafe { libc::geteuid() } == 0;
    // A copy of the binary the unprivileged user can reach wherever the checkout lives.
    let bin = tmp.path().join("cairn");
    std::fs::copy(cairn_bin(), &bin).unwrap();
    let run = |list: &[&OsStr]| {
        let mut cmd = std::process::Command::new(&bin);
        cmd.env_clear()
            .env("CAIRN_REPOSITORY", &repo)
            .env("CAIRN_PASSWORD", PASSWORD)
            .current_dir(tmp.path())
            .args(list);
        if as_root {
            cmd.uid(65534).gid(65534);
        }
        cmd.output().unwrap()
    };
    let out = run(&args(&[
        "init",
        "--kdf-memory-kib",
        "64",
        "--kdf-iterations",
        "1",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[OsStr::new("backup"), src.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let denied: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ermission denied"))
        .collect();
    assert_eq!(denied.len(), 2, "{stderr}");
    assert!(
        denied.iter().any(|l| l.contains("partly/secret")),
        "{stderr}"
    );
    assert!(
        denied.iter().any(|l| l.contains("partly/locked")),
        "{stderr}"
    );
    let out = run(&args(&["ls", "latest"]));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("/partly/ok")
            && !listing.contains("/partly/secret")
            && listing.contains("/partly/locked")
            && !listing.contains("/partly/locked/inside"),
        "{listing}"
    );
    let target = tmp.path().join("restored");
    let out = run(&[
        OsStr::new("restore"),
        OsStr::new("latest"),
        OsStr::new("--target"),
        target.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(restored.join("ok")).unwrap(), b"fine");
    assert!(!restored.join("secret").exists());
    for dir in [locked, restored.join("locked")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn init_takes_a_chunk_size_and_refuses_an_invalid_one_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let fast = ["--kdf-memory-kib", "64", "--kdf-iterations", "1"];
    let bad = tmp.path().join("bad");
    let out = cairn(
        &bad,
        &args(&[&["init", "--chunk-size-kib", "1000"][..], &fast].concat()),
        &[],
    );
    assert_clean_failure(&out, 1, "chunk sizes");
    assert!(!bad.join("config").exists());

    let good = tmp.path().join("good");
    let out = cairn(
        &good,
        &args(&[&["init", "--chunk-size-kib", "256"][..], &fast].concat()),
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let out = cairn(&good, &args(&["cat", "config"]), &[]);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunker = &config["chunker"];
    assert_eq!(
        (
            &chunker["min_size"],
            &chunker["avg_size"],
            &chunker["max_size"]
        ),
        (
            &(64 * 1024).into(),
            &(256 * 1024).into(),
            &(1024 * 1024).into()
        )
    );
}

#[test]
fn empty_and_match_everything_excludes_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo_with_snapshot(tmp.path());
    let src = tmp.path().join("src");
    let list = tmp.path().join("excludes");
    std::fs::write(&list, "*.tmp\n/**\n").unwrap();
    let before = fingerprint(&repo);
    let src_arg = src.to_str().unwrap();
    for (cmd, needle) in [
        (vec!["backup", src_arg, "--exclude", ""], "empty pattern"),
        (vec!["backup", src_arg, "--exclude", "/"], "empty pattern"),
        (vec!["backup", src_arg, "--exclude", "***"], "every path"),
        (vec!["backup", src_arg, "--iexclude", "*"], "every path"),
        (
            vec!["backup", src_arg, "--exclude-file", list.to_str().unwrap()],
            "every path",
        ),
    ] {
        let out = cairn(&repo, &args(&cmd), &[]);
        assert_clean_failure(&out, 1, needle);
    }
    assert_eq!(before, fingerprint(&repo), "nothing written");
    let target = tmp.path().join("target");
    for pattern in ["", "**"] {
        let cmd = [
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--exclude",
            pattern,
        ];
        assert_clean_failure(&cairn(&repo, &args(&cmd), &[]), 1, "pattern");
    }
    assert!(!target.exists(), "a refused restore creates nothing");
}
