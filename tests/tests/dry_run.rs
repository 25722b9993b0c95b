//! `backup --dry-run` says what a backup would read, and writes nothing to
//! the repository.

use cairn_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every path below `repo` (files and folders) with the hash of each file.
fn state(repo: &Path) -> (BTreeSet<PathBuf>, BTreeMap<PathBuf, [u8; 32]>) {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            }
            out.insert(path);
        }
    }
    let mut paths = BTreeSet::new();
    walk(repo, &mut paths);
    (paths, fingerprint(repo))
}

/// The `files:` line of a backup's output.
fn files_line(printed: &str) -> &str {
    printed.lines().find(|l| l.starts_with("files:")).unwrap()
}

#[test]
fn a_dry_run_counts_what_a_backup_would_read_and_changes_nothing() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    fs::create_dir(src.join("sub")).unwrap();
    write_noise_file(&src.join("a.bin"), 100_000, 1);
    write_noise_file(&src.join("sub/b.bin"), 2_000, 2);
    fs::write(src.join("c.txt"), b"kept as it is").unwrap();
    let backup = |extra: &[&str]| {
        let mut list = vec!["backup"];
        list.extend_from_slice(extra);
        list.push(src.to_str().unwrap());
        ok_text(&cairn(&repo, &args(&list), &[]))
    };

    let before = state(&repo);
    let printed = backup(&["--dry-run"]);
    assert_eq!(state(&repo), before, "a dry run wrote to the repository");
    assert!(printed.contains("nothing was written"), "{printed}");
    let files = files_line(&printed);
    assert!(
        files.starts_with("files: 3 new, 0 changed, 0 unchanged;"),
        "{files}"
    );
    assert!(
        printed.contains("would read 99.62 KiB of 3 files"),
        "{printed}"
    );
    let real = backup(&[]);
    assert_eq!(files_line(&real), files_line(&printed));

    // One file changed, one added: the dry run finds both, and the backup
    // that follows counts the same.
    write_noise_file(&src.join("sub/b.bin"), 3_000, 3);
    write_noise_file(&src.join("d.bin"), 5_000, 4);
    let before = state(&repo);
    let printed = backup(&["-n"]);
    assert_eq!(state(&repo), before, "a dry run wrote to the repository");
    let files = files_line(&printed);
    assert!(
        files.starts_with("files: 1 new, 1 changed, 2 unchanged;"),
        "{files}"
    );
    assert!(
        printed.contains("would read 7.81 KiB of 2 files"),
        "{printed}"
    );
    let real = backup(&[]);
    assert_eq!(files_line(&real), files_line(&printed));
    assert!(real.contains("read 7.81 KiB"), "{real}");

    // A dry run of standard input is refused before anything is opened.
    let out = cairn(&repo, &args(&["backup", "--dry-run", "--stdin"]), &[]);
    assert_eq!(out.status.code(), Some(2));
}
