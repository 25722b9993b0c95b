//! Comparing, searching and measuring snapshots: `diff`, `find` and `stats`,
//! through the library and through the binary.

use cairn_engine::backup::{backup, BackupOptions, BackupReport};
use cairn_engine::browse;
use cairn_engine::diff::{diff, summarize, Change, ChangeKind};
use cairn_engine::find::find;
use cairn_engine::stats::stats;
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::SnapshotId;
use cairn_tests::*;
use filetime::FileTime;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn snap(repo: &mut Repository, src: &Path) -> BackupReport {
    let r = backup(repo, &[src.to_path_buf()], &BackupOptions::default()).unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    r
}

fn entry(r: &BackupReport) -> (SnapshotId, Snapshot) {
    (r.id, r.snapshot.clone())
}

/// The path of `p` as recorded in a snapshot.
fn abs(p: &Path) -> Vec<u8> {
    p.canonicalize().unwrap().as_os_str().as_bytes().to_vec()
}

fn join(prefix: &[u8], rel: &str) -> Vec<u8> {
    let mut p = prefix.to_vec();
    if !rel.is_empty() {
        p.push(b'/');
        p.extend_from_slice(rel.as_bytes());
    }
    p
}

/// Drops changes to the directories above `src`: their metadata comes from
/// shared places such as `/tmp`, which other processes change at any time.
/// Anything else there would be a bug.
fn below(changes: Vec<Change>, src: &[u8]) -> Vec<Change> {
    changes
        .into_iter()
        .filter(|c| {
            let ancestor = src.starts_with(&c.path) && src.get(c.path.len()) == Some(&b'/');
            if ancestor {
                assert_eq!(c.kind, ChangeKind::MetadataOnly, "{c:?}");
            }
            !ancestor
        })
        .collect()
}

fn set_dir_time(dir: &Path, secs: i64) {
    filetime::set_file_mtime(dir, FileTime::from_unix_time(secs, 0)).unwrap();
}

const T0: i64 = 1_600_000_000;

#[test]
fn diff_lists_exactly_the_changes_between_two_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for dir in ["docs", "olddir/sub"] {
        fs::create_dir_all(src.join(dir)).unwrap();
    }
    let files: [(&str, &[u8]); 8] = [
        ("keep.txt", b"stays as it is"),
        ("gone.txt", b"to be removed"),
        ("edit.txt", b"old content"),
        ("perm.txt", b"perm"),
        ("becomes_link.txt", b"file"),
        ("docs/readme.md", b"read me"),
        ("olddir/a.txt", b"a"),
        ("olddir/sub/b.txt", b"bb"),
    ];
    for (name, content) in files {
        fs::write(src.join(name), content).unwrap();
    }
    fs::set_permissions(src.join("perm.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    for dir in ["olddir/sub", "olddir", "docs", ""] {
        set_dir_time(&src.join(dir), T0);
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    let first = snap(&mut repo, &src);

    fs::write(src.join("new.txt"), b"brand new").unwrap();
    fs::write(src.join("docs/new.txt"), b"new doc!").unwrap();
    fs::create_dir(src.join("newdir")).unwrap();
    fs::write(src.join("newdir/c.txt"), b"ccc").unwrap();
    fs::remove_file(src.join("gone.txt")).unwrap();
    fs::remove_dir_all(src.join("olddir")).unwrap();
    fs::write(src.join("edit.txt"), b"new and longer content").unwrap();
    fs::set_permissions(src.join("perm.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(src.join("becomes_link.txt")).unwrap();
    std::os::unix::fs::symlink("keep.txt", src.join("becomes_link.txt")).unwrap();
    // The root keeps its time; `docs` gets another one, a metadata-only change.
    set_dir_time(&src, T0);
    set_dir_time(&src.join("docs"), T0 + 60);
    let second = snap(&mut repo, &src);

    let root = abs(&src);
    let change = |rel: &str, kind, size_before, size_after| Change {
        path: join(&root, rel),
        kind,
        size_before,
        size_after,
    };
    use ChangeKind::*;
    let expected = vec![
        change("becomes_link.txt", TypeChanged, Some(4), None),
        change("docs", MetadataOnly, None, None),
        change("docs/new.txt", Added, None, Some(8)),
        change("edit.txt", Modified, Some(11), Some(22)),
        change("gone.txt", Removed, Some(13), None),
        change("new.txt", Added, None, Some(9)),
        change("newdir", Added, None, None),
        change("newdir/c.txt", Added, None, Some(3)),
        change("olddir", Removed, None, None),
        change("olddir/a.txt", Removed, Some(1), None),
        change("olddir/sub", Removed, None, None),
        change("olddir/sub/b.txt", Removed, Some(2), None),
        change("perm.txt", MetadataOnly, Some(4), Some(4)),
    ];
    let changes = below(
        diff(&repo, &first.snapshot.tree, &second.snapshot.tree).unwrap(),
        &root,
    );
    assert_eq!(changes, expected);

    let s = summarize(&changes);
    assert_eq!(
        (
            s.added,
            s.removed,
            s.modified,
            s.metadata_only,
            s.type_changed
        ),
        (4, 5, 1, 2, 1)
    );
    assert_eq!(s.bytes_added, 8 + 22 + 9 + 3);
    assert_eq!(s.bytes_removed, 4 + 11 + 13 + 1 + 2);

    // The other way round, additions and removals swap.
    let back = below(
        diff(&repo, &second.snapshot.tree, &first.snapshot.tree).unwrap(),
        &root,
    );
    let swapped: HashSet<(Vec<u8>, ChangeKind)> = expected
        .iter()
        .map(|c| {
            let kind = match c.kind {
                Added => Removed,
                Removed => Added,
                k => k,
            };
            (c.path.clone(), kind)
        })
        .collect();
    let back: HashSet<_> = back.into_iter().map(|c| (c.path, c.kind)).collect();
    assert_eq!(back, swapped);

    // Through the binary: one line per change, then the summary; JSON parses.
    let repo_path = tmp.path().join("repo");
    let (a, b) = (first.id.to_hex(), second.id.to_hex());
    let out = cairn(&repo_path, &args(&["diff", &a[..10], &b]), &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let root_text = String::from_utf8(root.clone()).unwrap();
    for (marker, rel) in [
        ("T", "becomes_link.txt"),
        ("U", "docs"),
        ("+", "newdir/c.txt"),
        ("-", "olddir/sub/b.txt"),
        ("M", "edit.txt"),
        ("U", "perm.txt"),
    ] {
        let line = format!("{marker} {root_text}/{rel}");
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} not in\n{stdout}"
        );
    }
    // The directories above the tree (the temporary directory's parents)
    // may change between the backups as other tests run: the summary counts
    // what the lines show, and below the tree they show exactly the changes.
    let count = |marker: &str, below_root: bool| {
        let within = format!("{marker} {root_text}/");
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{marker} ")))
            .filter(|l| !below_root || l.starts_with(&within))
            .count()
    };
    let shown: Vec<usize> = ["+", "-", "M", "U", "T"]
        .iter()
        .map(|m| count(m, true))
        .collect();
    assert_eq!(shown, [4, 5, 1, 2, 1], "{stdout}");
    let summary = stdout.lines().last().unwrap();
    let counted = format!(
        "{} added, {} removed, {} modified, {} metadata only, {} type changed",
        count("+", false),
        count("-", false),
        count("M", false),
        count("U", false),
        count("T", false)
    );
    assert!(summary.starts_with(&counted), "{summary}\n{stdout}");

    let out = cairn(&repo_path, &args(&["diff", &a, &b, "--json"]), &[]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: BTreeSet<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(p, _)| p.starts_with(&format!("{root_text}/")) || *p == root_text)
        .collect();
    let wanted: BTreeSet<(String, String)> = expected
        .iter()
        .map(|c| {
            (
                String::from_utf8(c.path.clone()).unwrap(),
                c.kind.name().into(),
            )
        })
        .collect();
    assert_eq!(listed, wanted);
    let edit = json
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == format!("{root_text}/edit.txt").as_str())
        .unwrap();
    assert_eq!(
        (edit["size_before"].as_u64(), edit["size_after"].as_u64()),
        (Some(11), Some(22))
    );
}

#[test]
fn identical_content_gives_an_empty_diff_even_when_the_roots_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_varied_tree(&src);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let first = snap(&mut repo, &src);
    assert!(diff(&repo, &first.snapshot.tree, &first.snapshot.tree)
        .unwrap()
        .is_empty());

    // Only a directory above the backed-up path changes: the trees below are
    // shared, and the one change reported is that directory's time.
    set_dir_time(tmp.path(), T0);
    let second = snap(&mut repo, &src);
    assert_ne!(first.snapshot.tree, second.snapshot.tree);
    let changes = diff(&repo, &first.snapshot.tree, &second.snapshot.tree).unwrap();
    let top = abs(tmp.path());
    assert!(
        changes
            .iter()
            .any(|c| c.path == top && c.kind == ChangeKind::MetadataOnly),
        "{changes:?}"
    );
    assert!(below(changes, &abs(&src)).is_empty());

    let id = first.id.to_hex();
    let out = cairn(&repo_path, &args(&["diff", &id, &id]), &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "0 added, 0 removed, 0 modified, 0 metadata only, 0 type changed; 0 B added, 0 B removed\n"
    );
    let out = cairn(&repo_path, &args(&["diff", &id, &id, "--json"]), &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, serde_json::json!([]));
}

#[test]
fn find_matches_names_and_paths_across_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("Report.TXT"), b"upper").unwrap();
    fs::write(src.join("notes.txt"), b"notes").unwrap();
    fs::write(src.join("sub/report.txt"), b"lower").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let one = snap(&mut repo, &src);
    fs::create_dir(src.join("sub/deep")).unwrap();
    fs::write(src.join("sub/deep/report.txt"), b"deeper").unwrap();
    let two = snap(&mut repo, &src);
    fs::remove_file(src.join("notes.txt")).unwrap();
    let three = snap(&mut repo, &src);
    let all = [entry(&one), entry(&two), entry(&three)];
    let root = abs(&src);

    let found = |snapshots: &[(SnapshotId, Snapshot)], pattern: &str, icase: bool| {
        find(&repo, snapshots, pattern, icase)
            .unwrap()
            .into_iter()
            .map(|m| {
                assert_eq!(m.path.rsplit(|&b| b == b'/').next(), Some(&m.node.name[..]));
                let rel = String::from_utf8(m.path[root.len() + 1..].to_vec()).unwrap();
                (m.snapshot, rel)
            })
            .collect::<Vec<_>>()
    };
    let hits = |list: &[(&BackupReport, &str)]| {
        list.iter()
            .map(|(r, p)| (r.id, p.to_string()))
            .collect::<Vec<_>>()
    };

    assert_eq!(
        found(&all, "report.txt", false),
        hits(&[
            (&one, "sub/report.txt"),
            (&two, "sub/deep/report.txt"),
            (&two, "sub/report.txt"),
            (&three, "sub/deep/report.txt"),
            (&three, "sub/report.txt"),
        ])
    );
    assert_eq!(
        found(&all[..1], "report.txt", true),
        hits(&[(&one, "Report.TXT"), (&one, "sub/report.txt")])
    );
    assert_eq!(
        found(&all, "n*s.txt", false),
        hits(&[(&one, "notes.txt"), (&two, "notes.txt")])
    );
    assert_eq!(
        found(&all[2..], "*.txt", false),
        hits(&[(&three, "sub/deep/report.txt"), (&three, "sub/report.txt")])
    );
    // A directory matches too.
    assert_eq!(
        found(&all[1..2], "de?p", false),
        hits(&[(&two, "sub/deep")])
    );

    // With a `/`, the whole path: `*` stays within one name, `**` does not.
    let anchored = format!("{}/sub/*.txt", String::from_utf8(root.clone()).unwrap());
    let direct = hits(&[(&one, "sub/report.txt"), (&two, "sub/report.txt")]);
    assert_eq!(found(&all[..2], &anchored, false), direct);
    assert_eq!(found(&all[..2], "sub/*.txt", false), direct);
    assert_eq!(
        found(&all[1..2], "sub/**/*.TXT", true),
        hits(&[(&two, "sub/deep/report.txt"), (&two, "sub/report.txt")])
    );
    assert!(found(&all, "/sub/*.txt", false).is_empty());
    assert!(find(&repo, &all, "[unclosed", false).is_err());

    // Through the binary.
    let out = cairn(
        &repo_path,
        &args(&["find", "REPORT.txt", "-i", "--json"]),
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 8, "{json:#}");
    assert!(list.iter().all(|m| m["type"] == "file"));
    let in_two = list
        .iter()
        .filter(|m| m["snapshot"] == two.id.to_hex().as_str())
        .count();
    assert_eq!(in_two, 3);

    let two_id = two.id.to_hex();
    let out = cairn(
        &repo_path,
        &args(&["find", "report.txt", "--snapshot", &two_id[..8]]),
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("snapshot {}", two.id.short())),
        "{stdout}"
    );
    let root_text = String::from_utf8(root.clone()).unwrap();
    assert!(
        lines[1].starts_with("-rw")
            && lines[1].ends_with(&format!("{root_text}/sub/deep/report.txt"))
    );
    assert!(lines[1].contains(" 6 "), "size missing: {stdout}");
    assert!(lines[2].ends_with(&format!("{root_text}/sub/report.txt")));
    assert_eq!(lines.last(), Some(&"2 matches in 1 of 1 snapshot"));
}

#[test]
fn stats_count_every_snapshot_but_store_shared_data_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    let mut expected_size = 0;
    for i in 0..12u64 {
        let dir = ["", "a", "a/b"][i as usize % 3];
        let text = compressible_text(20_000 + 1_000 * i as usize, 100 + i);
        expected_size += text.len() as u64;
        fs::write(src.join(dir).join(format!("f{i}.txt")), text).unwrap();
    }
    std::os::unix::fs::symlink("f0.txt", src.join("link")).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let first = snap(&mut repo, &src);
    let second = snap(&mut repo, &src);

    let once = stats(&repo, &[entry(&first)]).unwrap();
    assert_eq!((once.snapshots, once.files), (1, 12));
    assert_eq!(once.restore_size, expected_size);
    // Counted independently: the data blobs the files of the snapshot name.
    let mut blobs = HashSet::new();
    browse::walk(&repo, &first.snapshot.tree, b"/", &mut |_, node| {
        if let Some(data) = node.kind.file_data() {
            blobs.extend(data.blobs.iter().copied());
        }
    })
    .unwrap();
    assert_eq!(once.data_blobs, blobs.len() as u64);
    assert_eq!(once.raw_size, expected_size, "the files share no chunk");
    assert!(once.stored_size > once.data_stored_size);

    let both = stats(&repo, &[entry(&first), entry(&second)]).unwrap();
    assert_eq!((both.snapshots, both.files), (2, 24));
    assert_eq!(both.restore_size, 2 * once.restore_size);
    assert_eq!(both.data_blobs, once.data_blobs);
    assert_eq!(both.raw_size, once.raw_size);
    assert_eq!(both.data_stored_size, once.data_stored_size);
    // Only the trees above the backed-up path may differ between the two.
    assert!(
        both.stored_size < once.stored_size + 4096,
        "{both:?} vs {once:?}"
    );
    assert!(
        (1.9..=2.1).contains(&both.dedup_ratio),
        "dedup ratio {}",
        both.dedup_ratio
    );
    assert!(
        both.compression_ratio > 1.5,
        "compression ratio {}",
        both.compression_ratio
    );
    assert!((both.compression_ratio - once.compression_ratio).abs() < 1e-9);

    // Through the binary: all snapshots by default, or the ones named.
    let out = cairn(&repo_path, &args(&["stats", "--json"]), &[]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["snapshots"], 2);
    assert_eq!(json["files"], 24);
    assert_eq!(json["restore_size"], both.restore_size);
    assert_eq!(json["stored_size"], both.stored_size);
    let ratio = json["dedup_ratio"].as_f64().unwrap();
    assert!((1.9..=2.1).contains(&ratio));

    let id = first.id.to_hex();
    let out = cairn(&repo_path, &args(&["stats", &id[..8], "--json"]), &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["snapshots"], 1);
    assert_eq!(json["restore_size"], once.restore_size);

    let out = cairn(&repo_path, &args(&["stats"]), &[]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} in\n{stdout}"))
            .trim_start_matches(label)
            .trim()
            .to_string()
    };
    assert_eq!(row("snapshots"), "2");
    assert_eq!(row("dedup ratio"), format!("{:.2}", both.dedup_ratio));
    assert_eq!(
        row("compression ratio"),
        format!("{:.2}", both.compression_ratio)
    );
}
