//! Damage traced to files, and repaired around: `check --read-data` names
//! the snapshots and paths a damaged pack affects; `repair index --read-data`
//! and `repair snapshots` leave the rest restorable; prune then clears the
//! damaged pack; `repair index` also rebuilds a lost or damaged index.

use cairn_tests::*;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

/// The `damaged:` lines of a check: (snapshot, path).
fn damaged(out: &std::process::Output) -> BTreeSet<(String, String)> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("damaged: snapshot "))
        .map(|l| {
            let (snapshot, rest) = l.split_once(' ').unwrap();
            let path = rest.split(": ").next().unwrap();
            (snapshot.to_string(), path.to_string())
        })
        .collect()
}

fn backup(repo: &Path, src: &Path) {
    ok_text(&cairn(repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
}

fn restore(repo: &Path, snapshot: &str, out: &Path) {
    let _ = fs::remove_dir_all(out);
    let list = [
        OsStr::new("restore"),
        OsStr::new(snapshot),
        OsStr::new("--target"),
        out.as_os_str(),
    ];
    ok_text(&cairn(repo, &list, &[]));
}

#[test]
fn a_damaged_pack_is_traced_to_its_files_and_the_rest_stays_restorable() {
    let (_tmp, base, _) = cli_fixture();
    let repo = base.join("small-packs");
    ok_text(&cairn(
        &repo,
        &args(&[
            "init",
            "--kdf-memory-kib",
            "64",
            "--pack-size-mib",
            "1",
            "--chunk-size-kib",
            "256",
        ]),
        &[],
    ));
    let src = base.join("src");
    for i in 0..4 {
        write_noise_file(&src.join(format!("f{i}")), 1 << 20, i);
    }
    fs::write(src.join("notes.txt"), compressible_text(5000, 1)).unwrap();
    backup(&repo, &src);
    write_noise_file(&src.join("later"), 300_000, 9);
    backup(&repo, &src);

    // Flip a byte inside the first blob of one data pack.
    let pack = damage_largest_pack(&repo);

    let out = cairn(&repo, &args(&["check", "--read-data"]), &[]);
    assert_eq!(out.status.code(), Some(4));
    let hit = damaged(&out);
    let snapshots: BTreeSet<_> = hit.iter().map(|(s, _)| s.clone()).collect();
    let paths: BTreeSet<_> = hit.iter().map(|(_, p)| p.clone()).collect();
    // The damaged data is in both snapshots, under one of the big files.
    assert_eq!(snapshots.len(), 2, "{hit:?}");
    assert_eq!(paths.len(), 1, "{hit:?}");
    let lost = paths.into_iter().next().unwrap();
    assert!(lost.starts_with(&format!("{}/f", src.display())), "{lost}");
    // A structural check reads no data and does not see it.
    assert!(cairn(&repo, &args(&["check"]), &[]).status.success());

    let printed = ok_text(&cairn(
        &repo,
        &args(&["repair", "index", "--read-data"]),
        &[],
    ));
    assert!(printed.contains("and 1 damaged blob\n"), "{printed}");
    let out = cairn(&repo, &args(&["check"]), &[]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(damaged(&out).len(), 2);

    let dry = ok_text(&cairn(
        &repo,
        &args(&["repair", "snapshots", "--dry-run"]),
        &[],
    ));
    assert!(dry.contains("2 snapshots would be repaired"), "{dry}");
    let printed = ok_text(&cairn(&repo, &args(&["repair", "snapshots"]), &[]));
    assert_eq!(
        printed.matches(&format!("left out {lost}:")).count(),
        2,
        "{printed}"
    );
    // Prune removes the damaged pack (its good blobs copied first), even
    // when the damaged blob is a small part of it.
    ok_text(&cairn(&repo, &args(&["prune"]), &[]));
    assert!(!pack.exists());
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));

    let out = base.join("out");
    restore(&repo, "latest", &out);
    let restored = out.join(src.strip_prefix("/").unwrap());
    for f in walk_files(&src) {
        let copy = restored.join(f.strip_prefix(&src).unwrap());
        if f.display().to_string() == lost {
            assert!(!copy.exists(), "{} restored", copy.display());
        } else {
            assert_eq!(hash_file(&f), hash_file(&copy), "{}", f.display());
        }
    }
    let listed = ok_text(&cairn(
        &repo,
        &args(&["snapshots", "--tag", "repaired"]),
        &[],
    ));
    assert!(listed.contains("2 snapshots"), "{listed}");
    // Backing the file up again stores its data again.
    backup(&repo, &src);
    restore(&repo, "latest", &out);
    assert_same_tree(&src, &restored);
}

#[test]
fn repair_index_rebuilds_a_lost_or_damaged_index() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    build_varied_tree(&src);
    backup(&repo, &src);
    write_noise_file(&src.join("more"), 2 << 20, 3);
    backup(&repo, &src);
    let index_files = walk_files(&repo.join("index"));
    assert_eq!(index_files.len(), 2);
    // One index file damaged, the other gone: nothing opens the index.
    fs::write(&index_files[0], b"garbage").unwrap();
    fs::remove_file(&index_files[1]).unwrap();
    assert!(!cairn(&repo, &args(&["snapshots"]), &[]).status.success());

    let dry = ok_text(&cairn(&repo, &args(&["repair", "index", "--dry-run"]), &[]));
    assert!(dry.contains("would list"), "{dry}");
    assert!(index_files[0].exists());
    ok_text(&cairn(&repo, &args(&["repair", "index"]), &[]));
    assert!(!index_files[0].exists());
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
    let out = base.join("out");
    restore(&repo, "latest", &out);
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}
