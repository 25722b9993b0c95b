//! Restore onto existing trees, selection patterns, overwrite modes, delete and verify.

use cairn_engine::restore::{restore_with, Overwrite, RestoreOptions};
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

struct Setup {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    out: PathBuf,
    repo: Repository,
    snapshot: Snapshot,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_varied_tree(&src);
    write_noise_file(&src.join("large.bin"), 24 << 20, 5);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let snapshot = backup_dir(&mut repo, &src).snapshot;
    let out = tmp.path().join("out");
    Setup {
        src,
        out,
        repo,
        snapshot,
        _tmp: tmp,
    }
}

impl Setup {
    fn restore(&self, opts: &RestoreOptions) -> cairn_engine::restore::RestoreReport {
        let r = restore_with(&self.repo, &self.snapshot, Some(&self.src), &self.out, opts).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        r
    }

    fn restored(&self) -> PathBuf {
        self.out.join("src")
    }
}

/// Status-change times of every entry: any write to data or metadata moves them.
fn ctimes(root: &Path) -> BTreeMap<PathBuf, (i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            out.insert(p.clone(), (m.ctime(), m.ctime_nsec()));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn restoring_onto_an_identical_tree_writes_nothing() {
    let s = setup();
    let first = s.restore(&RestoreOptions::default());
    assert!(first.bytes_written > 24 << 20);
    let before = ctimes(&s.restored());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = s.restore(&RestoreOptions::default());
    assert_eq!(again.bytes_written, 0);
    assert_eq!(again.files, 0);
    assert_eq!(again.files_unchanged, first.files);
    assert_eq!(
        ctimes(&s.restored()),
        before,
        "an identical tree was modified"
    );
    assert_same_tree(&s.src, &s.restored());
}

#[test]
fn restoring_onto_a_damaged_tree_writes_only_what_differs_and_delete_removes_extras() {
    let s = setup();
    s.restore(&RestoreOptions::default());
    let dst = s.restored();
    // Damage: a few bytes in the middle of the large file, a truncated file,
    // a deleted file, a changed mode, a symlink replaced by a file, extra entries.
    let large = dst.join("large.bin");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&large)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"corrupted!", 12 << 20).unwrap();
    drop(f);
    std::fs::write(dst.join("  spaces  "), b"short").unwrap();
    std::fs::remove_file(dst.join("wide/f0500")).unwrap();
    std::fs::set_permissions(
        dst.join("script.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::remove_file(dst.join("link")).unwrap();
    std::fs::write(dst.join("link"), b"not a link").unwrap();
    std::fs::write(dst.join("extra-file"), b"not in the snapshot").unwrap();
    std::fs::create_dir_all(dst.join("deep/extra-dir/sub")).unwrap();

    let r = s.restore(&RestoreOptions {
        delete: true,
        ..Default::default()
    });
    assert_eq!(r.deleted, 2);
    assert!(
        r.bytes_written < 6 << 20,
        "rewrote {} bytes to repair a few small changes",
        r.bytes_written
    );
    assert!(r.files >= 3 && r.files <= 4, "{} files rewritten", r.files);
    assert_same_tree(&s.src, &dst);
}

#[test]
fn overwrite_modes_decide_what_happens_to_existing_files() {
    let s = setup();
    s.restore(&RestoreOptions::default());
    let file = s.restored().join("  spaces  ");
    let original = std::fs::read(&file).unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&meta);
    // Same size and modification time, different content.
    let mut tampered = original.clone();
    tampered[0] ^= 0xff;
    std::fs::write(&file, &tampered).unwrap();
    filetime::set_file_mtime(&file, mtime).unwrap();

    s.restore(&RestoreOptions {
        overwrite: Overwrite::Never,
        ..Default::default()
    });
    assert_eq!(std::fs::read(&file).unwrap(), tampered, "never overwrote");
    s.restore(&RestoreOptions {
        overwrite: Overwrite::IfChanged,
        ..Default::default()
    });
    assert_eq!(
        std::fs::read(&file).unwrap(),
        tampered,
        "if-changed read a file whose size and mtime match"
    );
    let r = s.restore(&RestoreOptions {
        overwrite: Overwrite::Always,
        ..Default::default()
    });
    assert_eq!(std::fs::read(&file).unwrap(), original);
    assert_eq!(r.files, 1);

    // if-changed does rewrite a file whose size differs.
    std::fs::write(&file, b"different length").unwrap();
    s.restore(&RestoreOptions {
        overwrite: Overwrite::IfChanged,
        ..Default::default()
    });
    assert_eq!(std::fs::read(&file).unwrap(), original);
}

#[test]
fn include_and_exclude_select_exactly_the_expected_paths() {
    let s = setup();
    let listing = |root: &Path| -> BTreeSet<String> {
        tree_listing(root)
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    };
    let opts = RestoreOptions {
        include: vec!["f000[0-2]".into(), "bottom.txt".into()],
        ..Default::default()
    };
    s.restore(&opts);
    let mut expected: BTreeSet<String> = ["wide", "wide/f0000", "wide/f0001", "wide/f0002", "deep"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut deep = String::from("deep");
    for level in 0..60 {
        deep.push_str(&format!("/d{level}"));
        expected.insert(deep.clone());
    }
    expected.insert(format!("{deep}/bottom.txt"));
    assert_eq!(listing(&s.restored()), expected);

    std::fs::remove_dir_all(&s.out).unwrap();
    let opts = RestoreOptions {
        exclude: vec!["wide".into(), "deep".into(), "*.bin".into()],
        ..Default::default()
    };
    s.restore(&opts);
    let got = listing(&s.restored());
    assert!(
        !got.iter()
            .any(|p| p.starts_with("wide") || p.starts_with("deep") || p.ends_with(".bin")),
        "{got:?}"
    );
    assert!(
        got.contains("script.sh") && got.contains("empty dir"),
        "{got:?}"
    );
}

#[test]
fn verify_reads_back_every_restored_file() {
    let s = setup();
    let r = s.restore(&RestoreOptions {
        verify: true,
        ..Default::default()
    });
    assert_eq!(r.verified, r.files);
    assert!(r.verified > 1000);
}

#[test]
fn the_binary_takes_the_restore_options() {
    let s = setup();
    let repo_path = s._tmp.path().join("repo");
    let target = s._tmp.path().join("cli-out");
    let run = |extra: &[&str]| {
        let mut a = vec!["restore", "latest", "--target", target.to_str().unwrap()];
        a.extend_from_slice(extra);
        let out = cairn(&repo_path, &args(&a), &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["--include", "*.sh", "--verify"]);
    let restored = target.join(s.src.strip_prefix("/").unwrap());
    assert!(restored.join("script.sh").exists() && !restored.join("wide").exists());
    std::fs::write(restored.join("stray"), b"x").unwrap();
    let text = run(&["--delete", "--overwrite", "if-changed"]);
    assert!(text.contains("1 entry deleted"), "{text}");
    assert_same_tree(&s.src, &restored);
}

/// A repository with a snapshot of a small `src` that `make` fills; returns
/// the temporary directory, `src`, the repository and the snapshot.
fn small(make: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf, Repository, Snapshot) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().canonicalize().unwrap().join("src");
    std::fs::create_dir(&src).unwrap();
    make(&src);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let snapshot = backup_dir(&mut repo, &src).snapshot;
    (tmp, src, repo, snapshot)
}

#[test]
fn the_report_tells_created_replaced_unchanged_and_kept_files_apart() {
    let (tmp, src, repo, snapshot) = small(|src| {
        for name in ["a", "b", "c", "d"] {
            std::fs::write(src.join(name), format!("content of {name}")).unwrap();
        }
    });
    let out = tmp.path().join("out");
    let restore = |overwrite| {
        let opts = RestoreOptions {
            overwrite,
            ..Default::default()
        };
        let r = restore_with(&repo, &snapshot, Some(&src), &out, &opts).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        (r.files, r.files_replaced, r.files_unchanged, r.files_kept)
    };
    assert_eq!(restore(Overwrite::Always), (4, 0, 0, 0));
    let dst = out.join("src");
    let mtime = |name: &str| {
        filetime::FileTime::from_last_modification_time(&std::fs::metadata(src.join(name)).unwrap())
    };
    // `a` differs in content only (same size and time), `b` in size; `c` is gone.
    std::fs::write(dst.join("a"), b"CONTENT OF a").unwrap();
    filetime::set_file_mtime(dst.join("a"), mtime("a")).unwrap();
    std::fs::write(dst.join("b"), b"longer content of b").unwrap();
    std::fs::remove_file(dst.join("c")).unwrap();
    // Never keeps `a` (size and time match, so it is not known to differ:
    // unchanged) and `b` (kept though it differs), and creates `c`.
    assert_eq!(restore(Overwrite::Never), (1, 0, 2, 1));
    assert_eq!(
        std::fs::read(dst.join("b")).unwrap(),
        b"longer content of b"
    );
    // Always rewrites `a` and `b`.
    assert_eq!(restore(Overwrite::Always), (2, 2, 2, 0));
    assert_same_tree(&src, &dst);

    // The binary's summary line, with its plurals.
    std::fs::write(dst.join("b"), b"b, once more").unwrap();
    let snapshot_path = format!("latest:{}", src.display());
    let run = |extra: &[&str]| {
        let mut a = vec!["restore", &snapshot_path, "--target", out.to_str().unwrap()];
        a.extend_from_slice(extra);
        ok_text(&cairn(&tmp.path().join("repo"), &args(&a), &[]))
    };
    let text = run(&["--overwrite", "never"]);
    assert!(
        text.contains(": 0 files created, 0 files replaced, 3 unchanged, 1 kept (differing), "),
        "{text}"
    );
    let text = run(&[]);
    assert!(
        text.contains(": 0 files created, 1 file replaced, 3 unchanged, "),
        "{text}"
    );
}

#[test]
fn no_setid_clears_set_id_bits_and_no_devices_skips_device_nodes() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let as_root = unsafe { libc::geteuid() } == 0;
    let (tmp, src, repo, snapshot) = small(|src| {
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        std::fs::write(src.join("tool"), b"#!/bin/sh\n").unwrap();
        set(&src.join("tool"), 0o6755);
        std::fs::create_dir(src.join("shared")).unwrap();
        set(&src.join("shared"), 0o2775);
        if as_root {
            let path =
                std::ffi::CString::new(src.join("null").into_os_string().into_vec()).unwrap();
            let rdev = libc::makedev(1, 3);
            assert_eq!(
                unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, rdev) },
                0
            );
        }
    });
    let mode = |p: PathBuf| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    let restore = |opts: &RestoreOptions, into: &str| {
        let out = tmp.path().join(into);
        let r = restore_with(&repo, &snapshot, Some(&src), &out, opts).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        (out.join("src"), r)
    };
    let (plain, r) = restore(&RestoreOptions::default(), "plain");
    assert_eq!(
        (mode(plain.join("tool")), mode(plain.join("shared"))),
        (0o6755, 0o2775)
    );
    assert_eq!(r.devices_skipped, 0);
    let opts = RestoreOptions {
        no_setid: true,
        no_devices: true,
        ..Default::default()
    };
    let (safe, r) = restore(&opts, "safe");
    assert_eq!(
        (mode(safe.join("tool")), mode(safe.join("shared"))),
        (0o755, 0o775)
    );
    if as_root {
        let null = std::fs::symlink_metadata(plain.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert_eq!(r.devices_skipped, 1);
        assert!(!safe.join("null").exists());
    }
}
