//! `cairn check`: a clean repository passes; a damaged or missing pack is
//! found (by the structural check when a pack is missing, by `--read-data`
//! when a byte of blob data is flipped) and named, with exit code 4.

use cairn_tests::*;
use std::path::{Path, PathBuf};

fn packs(repo: &Path) -> Vec<PathBuf> {
    walk_files(&repo.join("data"))
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..4 {
        write_noise_file(&src.join(format!("f{i}")), 3 << 20, i);
    }
    let repo = dir.path().join("repo");
    let init = cairn(
        &repo,
        &args(&[
            "init",
            "--pack-size-mib",
            "1",
            "--kdf-memory-kib",
            "64",
            "--kdf-iterations",
            "1",
        ]),
        &[],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let b = cairn(
        &repo,
        &[std::ffi::OsStr::new("backup"), src.as_os_str()],
        &[],
    );
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    (dir, repo)
}

/// Flips one bit of blob data in the largest pack; returns the pack.
fn flip_a_byte_of_the_largest_pack(repo: &Path) -> PathBuf {
    let pack = packs(repo)
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[1000] ^= 0x10;
    std::fs::write(&pack, &bytes).unwrap();
    pack
}

fn check(repo: &Path, read_data: bool) -> (i32, String) {
    let list: &[&str] = if read_data {
        &["check", "--read-data"]
    } else {
        &["check"]
    };
    let out = cairn(repo, &args(list), &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

#[test]
fn a_clean_repository_passes_both_checks() {
    let (_dir, repo) = setup();
    for read_data in [false, true] {
        let (code, text) = check(&repo, read_data);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("no damage found"), "{text}");
    }
}

#[test]
fn a_flipped_data_byte_is_found_by_reading_the_data() {
    let (_dir, repo) = setup();
    let pack = flip_a_byte_of_the_largest_pack(&repo);
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    let (code, text) = check(&repo, true);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains(&name),
        "the damaged pack is not named: {text}"
    );
}

#[test]
fn a_missing_pack_is_found_by_the_structural_check() {
    let (_dir, repo) = setup();
    let pack = packs(&repo).remove(0);
    std::fs::remove_file(&pack).unwrap();
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    let (code, text) = check(&repo, false);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains(&name),
        "the missing pack is not named: {text}"
    );
}

/// Runs `check` with extra arguments; returns the exit code, the number of
/// packs read whole, and everything printed.
fn check_with(repo: &Path, extra: &[&str]) -> (i32, u64, String) {
    let mut list = vec!["check"];
    list.extend(extra);
    let out = cairn(repo, &args(&list), &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = text
        .split(" read whole")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (out.status.code().unwrap(), whole, text)
}

#[test]
fn read_data_subsets_cover_every_pack_once_and_find_the_damage() {
    let (_dir, repo) = setup();
    let total = packs(&repo).len() as u64;
    flip_a_byte_of_the_largest_pack(&repo);
    let mut read = 0;
    let mut found = 0;
    for n in 1..=3 {
        let (code, whole, text) = check_with(&repo, &["--read-data-subset", &format!("{n}/3")]);
        read += whole;
        if code == 4 {
            found += 1;
            assert!(text.contains("damaged: snapshot"), "{text}");
        } else {
            assert_eq!(code, 0, "{text}");
        }
    }
    assert_eq!((read, found), (total, 1));
    let (code, whole, text) = check_with(&repo, &["--read-data-subset", "100%"]);
    assert_eq!((code, whole), (4, total), "{text}");
    let (code, whole, text) = check_with(&repo, &["--read-data-subset", "0%"]);
    assert_eq!((code, whole), (0, 0), "{text}");
    let (code, whole, _) = check_with(&repo, &["--read-data-subset", "1G"]);
    assert_eq!((code, whole), (4, total));
    for bad in ["4/3", "0/3", "150%", "x"] {
        let (code, _, text) = check_with(&repo, &["--read-data-subset", bad]);
        assert_eq!(code, 2, "{bad}: {text}");
        assert!(text.contains(bad), "{text}");
    }
}
