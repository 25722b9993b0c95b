//! The library's examples (engine/examples) build and do what they say:
//! each is run on a small tree and its result compared with the source.

use cairn_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the example `name` with `args`.
fn example(name: &str, args: &[&Path]) -> Output {
    let bin = cairn_bin().with_file_name("examples").join(name);
    assert!(
        bin.exists(),
        "{} not built: run scripts/test.sh (it builds the examples first)",
        bin.display()
    );
    Command::new(bin).args(args).output().unwrap()
}

/// A tree of a few files, one large enough for several chunks, in a folder
/// of a new temporary directory: (the directory, the tree).
fn source() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().canonicalize().unwrap().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    write_noise_file(&src.join("big.bin"), 3 << 20, 1);
    write_noise_file(&src.join("sub/small.bin"), 1000, 2);
    std::fs::write(src.join("note.txt"), b"hello from an example\n").unwrap();
    (tmp, src)
}

#[test]
fn backup_and_restore_gives_the_tree_back() {
    let (tmp, src) = source();
    let work = tmp.path().join("work");
    let printed = ok_text(&example("backup_and_restore", &[&src, &work]));
    assert!(printed.contains("3 new files"), "{printed}");
    assert_same_tree(&src, &work.join("restored/src"));
}

#[test]
fn read_a_file_lists_snapshots_and_prints_the_file() {
    let (tmp, src) = source();
    let work = tmp.path().join("work");
    ok_text(&example("backup_and_restore", &[&src, &work]));
    let password = tmp.path().join("password");
    std::fs::write(&password, b"example\n").unwrap();
    let repo = work.join("repo");
    let out = example("read_a_file", &[&repo, &password, &src.join("big.bin")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, std::fs::read(src.join("big.bin")).unwrap());
    let listed = String::from_utf8_lossy(&out.stderr);
    let id = open_repo_with(&repo, b"example").snapshots().unwrap()[0].0;
    assert!(listed.starts_with(&id.to_string()), "{listed}");
    // A path the snapshot does not have fails, naming it.
    let out = example("read_a_file", &[&repo, &password, &src.join("nothing")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing"));
}

#[test]
fn progress_sink_sees_every_file_counted() {
    let (tmp, src) = source();
    let printed = ok_text(&example("progress_sink", &[&src, &tmp.path().join("work")]));
    let last = printed.lines().last().unwrap();
    let want = format!("done: 3 files, {} bytes", (3 << 20) + 1000 + 22);
    assert!(last.starts_with(&want), "{printed}");
}

#[test]
fn memory_backend_stores_and_restores_the_tree() {
    let (tmp, src) = source();
    let out = tmp.path().join("out");
    let printed = ok_text(&example("memory_backend", &[&src, &out]));
    assert!(printed.contains("bytes in memory"), "{printed}");
    assert_same_tree(&src, &out.join("src"));
    assert_eq!(walk_files(&out).len(), 3);
}

fn open_repo_with(path: &Path, password: &[u8]) -> cairn_engine::Repository {
    cairn_engine::Repository::open(cairn_engine::backend::LocalBackend::new(path), password)
        .unwrap()
}
