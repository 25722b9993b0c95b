//! A reader that stops early (`cairn ls latest | head`) ends cairn quietly,
//! killed by SIGPIPE as other Unix tools are: no panic, no error message.

use cairn_tests::*;
use std::ffi::OsStr;
use std::io::BufRead;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

/// `cairn` with the test repository and password, as [`cairn`] runs it.
fn command(repo: &Path, list: &[&str]) -> Command {
    let mut cmd = Command::new(cairn_bin());
    cmd.env_clear()
        .env("CAIRN_REPOSITORY", repo)
        .env("CAIRN_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .args(list);
    cmd
}

/// Runs `cairn` with standard output a pipe whose reader has already
/// closed it: the first write fails, always.
fn into_closed_pipe(repo: &Path, list: &[&str]) -> Output {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are new and owned here alone.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    command(repo, list)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Asserts cairn ended as a closed pipe ends a Unix tool: by SIGPIPE,
/// without a word on standard error.
#[track_caller]
fn assert_quiet_sigpipe(status: ExitStatus, stderr: &[u8], what: &str) {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_ne!(status.code(), Some(101), "{what}: {stderr}");
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "{what}: {status:?} {stderr}"
    );
    assert!(stderr.is_empty(), "{what}: {stderr}");
}

/// A repository with two snapshots of `base/src`, whose file `f` changed.
fn two_snapshots() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    for i in 0..2 {
        std::fs::write(src.join("f"), format!("version {i}")).unwrap();
        ok_text(&cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
    }
    (tmp, base, repo)
}

#[test]
fn every_listing_into_a_closed_pipe_ends_by_sigpipe_without_a_panic() {
    let (_tmp, base, repo) = two_snapshots();
    let file = base.join("src/f").display().to_string();
    let listed = ok_text(&cairn(&repo, &args(&["snapshots", "--json"]), &[]));
    let list: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let first = list[0]["id"].as_str().unwrap().to_string();
    let commands: [&[&str]; 7] = [
        &["snapshots"],
        &["ls", "latest"],
        &["find", "*"],
        &["cat", "snapshot", "latest"],
        &["dump", "latest", &file],
        &["diff", &first, "latest"],
        &["stats"],
    ];
    for list in commands {
        let out = into_closed_pipe(&repo, list);
        assert_quiet_sigpipe(out.status, &out.stderr, &list.join(" "));
    }
}

#[test]
fn a_reader_that_takes_one_line_and_leaves_ends_ls_quietly() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    // Far more listing than a pipe buffers (64 KiB), so ls must still be
    // writing when the reader leaves.
    for i in 0..3000 {
        std::fs::write(src.join(format!("a-rather-long-file-name-{i:05}")), b"x").unwrap();
    }
    ok_text(&cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
    let mut child = command(&repo, &["ls", "latest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.ends_with('\n'), "{first:?}");
    let out = child.wait_with_output().unwrap();
    assert_quiet_sigpipe(out.status, &out.stderr, "ls latest | head -1");
}
