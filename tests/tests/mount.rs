//! `cairn mount`: a snapshot lists and reads back as its restore does, and
//! Ctrl-C unmounts and ends the process; without FUSE it says so. Run as
//! root, with /dev/fuse and unshare.

use cairn_tests::*;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Whether `dir` is a mount point now.
fn mounted(dir: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let dir = dir.to_str().unwrap();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(dir))
}

/// Waits up to 30 s for `done`.
#[track_caller]
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cairn mount [EXTRA] DIR` on `repo`, started; returns once DIR is mounted.
fn mount(repo: &Path, dir: &Path, extra: &[&str]) -> Child {
    let mut list = vec!["mount"];
    list.extend_from_slice(extra);
    list.push(dir.to_str().unwrap());
    let child = cairn_command(repo, &args(&list), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the mount", || mounted(dir));
    child
}

/// Sends SIGINT to `child` and asserts that it unmounts and exits 0.
fn interrupt(mut child: Child, dir: &Path) -> String {
    // SAFETY: signals a child process of this test.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "cairn mount did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!mounted(dir), "still mounted after the process ended");
    out
}

#[test]
fn a_mounted_snapshot_lists_and_reads_as_its_restore_and_ctrl_c_unmounts() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    build_varied_tree(&src);
    let src_arg = src.to_str().unwrap();
    ok_text(&cairn(
        &repo,
        &args(&["backup", src_arg, "--host", "h1"]),
        &[],
    ));
    fs::write(src.join("added later"), b"second snapshot").unwrap();
    ok_text(&cairn(
        &repo,
        &args(&["backup", src_arg, "--host", "h2", "--tag", "nightly"]),
        &[],
    ));
    let restored = base.join("restored");
    ok_text(&cairn(
        &repo,
        &args(&["restore", "latest", "--target", restored.to_str().unwrap()]),
        &[],
    ));
    let mnt = base.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let child = mount(&repo, &mnt, &[]);

    let inside = src.strip_prefix("/").unwrap();
    // Names, kinds, modes, times, content and link targets, as restored.
    assert_same_tree(&restored.join(inside), &mnt.join("latest").join(inside));
    let snapshots: Vec<_> = fs::read_dir(mnt.join("snapshots")).unwrap().collect();
    assert_eq!(snapshots.len(), 2);
    let first = mnt.join("hosts/h1/latest").join(inside);
    assert!(!first.join("added later").exists());
    assert_eq!(
        fs::read(first.join("line\nbreak")).unwrap(),
        b"newline in the name"
    );
    let tagged = mnt.join("tags/nightly/latest").join(inside);
    assert_eq!(
        fs::read(tagged.join("added later")).unwrap(),
        b"second snapshot"
    );

    // Pieces of a file of several blobs, out of order.
    let expected = fs::read(src.join("noise.bin")).unwrap();
    let file = fs::File::open(mnt.join("latest").join(inside).join("noise.bin")).unwrap();
    for (offset, len) in [
        (2_000_000, 70_000),
        (1, 4096),
        (3 << 20, 10),
        (1_048_570, 20),
    ] {
        let mut buf = vec![0; len];
        let n = file.read_at(&mut buf, offset).unwrap();
        let end = expected.len().min(offset as usize + len);
        assert_eq!(&buf[..n], &expected[offset as usize..end], "at {offset}");
    }
    let mut whole = Vec::new();
    let mut f = &file;
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut whole).unwrap();
    assert_eq!(whole, expected);
    // Read-only.
    assert!(fs::write(mnt.join("latest").join(inside).join("new"), b"x").is_err());
    drop(file);

    // Ctrl-C unmounts even while a folder of it is open.
    let busy = fs::read_dir(mnt.join("latest").join(inside)).unwrap();
    let printed = interrupt(child, &mnt);
    drop(busy);
    assert!(
        printed.contains("2 snapshots of the repository at"),
        "{printed}"
    );
    assert!(printed.contains("unmounted"), "{printed}");
    assert_eq!(fs::read_dir(&mnt).unwrap().count(), 0);

    // A filter shows only what it selects.
    let child = mount(&repo, &mnt, &["--host", "h2"]);
    assert_eq!(fs::read_dir(mnt.join("snapshots")).unwrap().count(), 1);
    assert!(!mnt.join("hosts/h1").exists());
    interrupt(child, &mnt);
}

#[test]
fn a_mount_point_that_is_missing_or_not_empty_is_a_clear_error() {
    let (_tmp, base, repo) = cli_fixture();
    let missing = base.join("missing");
    let out = cairn(&repo, &args(&["mount", missing.to_str().unwrap()]), &[]);
    assert_clean_failure(&out, 1, "cannot mount at");
    let full = base.join("src");
    fs::write(full.join("x"), b"x").unwrap();
    let out = cairn(&repo, &args(&["mount", full.to_str().unwrap()]), &[]);
    assert_clean_failure(&out, 1, "is not empty");
}

#[test]
fn without_fuse_mount_says_so_in_one_line() {
    let (_tmp, base, repo) = cli_fixture();
    let mnt = base.join("mnt");
    fs::create_dir(&mnt).unwrap();
    // A /dev without the FUSE device, in a mount namespace of its own.
    let script = format!(
        "mount -t tmpfs none /dev && exec '{}' mount '{}'",
        cairn_bin().display(),
        mnt.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("CAIRN_REPOSITORY", &repo)
        .env("CAIRN_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_clean_failure(&out, 1, "FUSE is needed");
    assert!(!mounted(&mnt));
}
