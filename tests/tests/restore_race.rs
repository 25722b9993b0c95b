//! Restore as root into a directory another user controls: components
//! swapped for symlinks before and during the restore, and files hard-linked
//! to files outside the target, never make it write outside its target.

use cairn_engine::restore::{restore_with, RestoreOptions, RestoreReport};
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_tests::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Directories of the snapshot, each with files and a subdirectory.
const DIRS: [&str; 4] = ["d0", "d1", "d2", "d3"];
const FILES: usize = 150;

/// What a write, a metadata change or a new entry would alter in `root` and
/// below it: kinds, modes, owners, modification times, content, and with
/// `ctimes` status-change times (which any change of metadata moves).
fn state(root: &Path, ctimes: bool) -> State {
    let mut out = BTreeMap::new();
    let listing = tree_listing(root)
        .into_iter()
        .map(|(rel, e)| (root.join(OsStr::from_bytes(&rel)), e));
    let own = Entry {
        kind: 'd',
        mode: 0,
        mtime: (0, 0),
        content: vec![],
    };
    for (path, entry) in listing.chain([(root.to_path_buf(), own)]) {
        let m = fs::symlink_metadata(&path).unwrap();
        let times = match ctimes {
            true => (m.ctime(), m.ctime_nsec()),
            false => (0, 0),
        };
        let entry = Entry {
            mtime: (m.mtime(), m.mtime_nsec()),
            ..entry
        };
        out.insert(path, (entry, m.uid(), m.gid(), times));
    }
    out
}

type State = BTreeMap<PathBuf, (Entry, u32, u32, (i64, i64))>;

/// The paths whose state differs between `before` and `after`, or that only
/// one of them has.
fn changed(before: &State, after: &State) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = before.keys().chain(after.keys()).cloned().collect();
    paths.sort();
    paths.dedup();
    paths.retain(|p| before.get(p) != after.get(p));
    paths
}

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    outside: PathBuf,
    target: PathBuf,
    repo: Repository,
    snapshot: Snapshot,
}

/// A snapshot of `src` with [`DIRS`] of [`FILES`] files and a subdirectory
/// each, and a directory outside the target holding entries of the same
/// names (so that a write through a symlink would find them).
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    let outside = base.join("outside");
    for root in [&src, &outside] {
        for d in DIRS {
            fs::create_dir_all(root.join(d).join("sub")).unwrap();
            for i in 0..FILES {
                let text = format!("{} {d} {i}\n", root.display()).repeat(1 + i % 40);
                fs::write(root.join(d).join(format!("f{i:03}")), text).unwrap();
            }
            fs::write(root.join(d).join("sub/inner"), root.display().to_string()).unwrap();
        }
    }
    let mut repo = init_repo(&base.join("repo"));
    let snapshot = backup_dir(&mut repo, &src).snapshot;
    Fixture {
        _tmp: tmp,
        src,
        outside,
        target: base.join("target"),
        repo,
        snapshot,
    }
}

impl Fixture {
    fn restore(&self, opts: &RestoreOptions) -> RestoreReport {
        restore_with(
            &self.repo,
            &self.snapshot,
            Some(&self.src),
            &self.target,
            opts,
        )
        .unwrap()
    }

    /// Where the snapshot's `src` is restored.
    fn restored(&self) -> PathBuf {
        self.target.join("src")
    }

    /// A target holding the snapshot's directories, empty, as the
    /// directory another user prepared.
    fn empty_target(&self) {
        let _ = fs::remove_dir_all(&self.target);
        for d in DIRS {
            fs::create_dir_all(self.restored().join(d).join("sub")).unwrap();
        }
    }
}

/// Swaps directory `dir` with a symlink to `to` and back, in place, once
/// each. The symlink waits beside it as `dir.link`; each swap is one atomic
/// exchange, so `dir` is always there, a directory or a symlink, and flips
/// as fast as the system allows. Errors are ignored: the restore may have
/// replaced the symlink meanwhile (it is then made again).
fn swap(dir: &Path, to: &Path) {
    let link = dir.with_extension("link");
    if !fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = fs::remove_dir_all(&link);
        let _ = std::os::unix::fs::symlink(to, &link);
    }
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (a, b) = (c(dir), c(&link));
    for _ in 0..2 {
        // SAFETY: both paths are NUL-terminated and live across the call.
        unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
    }
}

#[test]
fn components_swapped_for_symlinks_during_a_restore_never_lead_outside() {
    let f = fixture();
    let before = state(&f.outside, true);
    for round in 0..6 {
        f.empty_target();
        let stop = AtomicBool::new(false);
        let swaps = AtomicU64::new(0);
        let (during, report) = std::thread::scope(|s| {
            s.spawn(|| {
                // The first swap is made before the restore starts.
                for n in 0.. {
                    let d = DIRS[n % DIRS.len()];
                    // Top-level directories and their subdirectories alike.
                    let (dir, to) = match n % 3 {
                        2 => (
                            f.restored().join(d).join("sub"),
                            f.outside.join(d).join("sub"),
                        ),
                        _ => (f.restored().join(d), f.outside.join(d)),
                    };
                    swap(&dir, &to);
                    swaps.fetch_add(1, Ordering::SeqCst);
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
            });
            while swaps.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            let start = swaps.load(Ordering::SeqCst);
            let report = f.restore(&RestoreOptions {
                delete: round % 2 == 1,
                ..Default::default()
            });
            let during = swaps.load(Ordering::SeqCst) - start;
            stop.store(true, Ordering::SeqCst);
            (during, report)
        });
        assert!(during > 0, "round {round}: no swap while restoring");
        let outside = changed(&before, &state(&f.outside, true));
        assert!(
            outside.is_empty(),
            "round {round}: the restore changed {outside:?} outside its target \
             ({during} swaps while restoring, {} errors)",
            report.errors.len()
        );
        // Run again undisturbed, the same restore repairs the target.
        let again = f.restore(&RestoreOptions {
            delete: true,
            ..Default::default()
        });
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        assert_same_tree(&f.src, &f.restored());
    }
}

#[test]
fn a_directory_swapped_between_being_examined_and_opened_is_not_followed() {
    // One small directory restored many times while it keeps being swapped:
    // the swap lands, again and again, between the restore finding a real
    // directory and opening it.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (src, outside) = (base.join("src"), base.join("outside"));
    for root in [&src, &outside] {
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/f"), root.display().to_string()).unwrap();
        fs::write(root.join("d/sub/g"), root.display().to_string()).unwrap();
    }
    let mut repo = init_repo(&base.join("repo"));
    let snapshot = backup_dir(&mut repo, &src).snapshot;
    let target = base.join("target");
    let before = state(&outside, true);
    let dir = target.join("src/d");
    let stop = AtomicBool::new(false);
    let failed = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                swap(&dir, &outside.join("d"));
            }
        });
        let mut failed = 0;
        for _ in 0..RUNS {
            let opts = RestoreOptions::default();
            let report = restore_with(&repo, &snapshot, Some(&src), &target, &opts).unwrap();
            failed += usize::from(!report.errors.is_empty());
        }
        stop.store(true, Ordering::SeqCst);
        failed
    });
    let changes = changed(&before, &state(&outside, true));
    assert!(changes.is_empty(), "changed outside: {changes:?}");
    assert!(failed > 0, "no restore of {RUNS} met a swap");
}

/// Restores in [`a_directory_swapped_between_being_examined_and_opened_is_not_followed`].
const RUNS: usize = 400;

#[test]
fn a_component_that_is_a_symlink_at_the_start_is_replaced_not_followed() {
    let f = fixture();
    let before = state(&f.outside, true);
    // Symlinks at three levels: the restored root itself, a directory in
    // it, and a directory below that.
    for link in [
        f.restored(),
        f.restored().join("d1"),
        f.restored().join("d2/sub"),
    ] {
        f.empty_target();
        fs::remove_dir_all(&link).unwrap();
        let to = f.outside.join(link.strip_prefix(f.restored()).unwrap());
        std::os::unix::fs::symlink(&to, &link).unwrap();
        let report = f.restore(&RestoreOptions::default());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert!(fs::symlink_metadata(&link).unwrap().is_dir(), "{link:?}");
        assert_same_tree(&f.src, &f.restored());
        let outside = changed(&before, &state(&f.outside, true));
        assert!(outside.is_empty(), "{outside:?} written through {link:?}");
    }
}

#[test]
fn a_file_hard_linked_to_one_outside_the_target_is_replaced_not_rewritten() {
    let f = fixture();
    f.restore(&RestoreOptions::default());
    let inside = f.restored().join("d0/f007");
    let snapshot_content = fs::read(&inside).unwrap();
    let snapshot_mode = fs::metadata(&inside).unwrap().mode() & 0o7777;
    let outside = f.outside.join("d0/f007");
    // Two cases: the content differs, and only the mode differs (a chmod
    // would change the file outside as well).
    for same_content in [false, true] {
        fs::remove_file(&inside).unwrap();
        if same_content {
            fs::write(&outside, &snapshot_content).unwrap();
            fs::set_permissions(&outside, fs::Permissions::from_mode(0o604)).unwrap();
        }
        fs::hard_link(&outside, &inside).unwrap();
        // Status-change times are left out: the link count of the file
        // outside drops when the one inside is replaced.
        let before = state(&f.outside, false);
        let report = f.restore(&RestoreOptions::default());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let changes = changed(&before, &state(&f.outside, false));
        assert!(
            changes.is_empty(),
            "same content {same_content}: {changes:?}"
        );
        assert_eq!(fs::read(&inside).unwrap(), snapshot_content);
        let m = fs::metadata(&inside).unwrap();
        assert_eq!((m.nlink(), m.mode() & 0o7777), (1, snapshot_mode));
        assert_eq!(fs::metadata(&outside).unwrap().nlink(), 1);
        assert_same_tree(&f.src, &f.restored());
    }
}
