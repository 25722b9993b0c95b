//! Small files are stored in bundles (SPEC.md §12.4): they compress together,
//! restore and dump exactly, are not stored again when a copy of them is backed
//! up, and a change re-stores only the bundles around it.

use cairn_engine::backup::{backup, BackupOptions, ParentChoice};
use cairn_engine::browse;
use cairn_engine::restore::restore;
use cairn_engine::stats::stats;
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, BlobKind};
use cairn_tests::*;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// `dirs` directories of `files` small text files each (1–12 KB), plus a
/// large file and a small file with two links.
fn build(src: &Path, dirs: usize, files: usize) {
    for d in 0..dirs {
        let dir = src.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..files {
            let seed = (d * files + i) as u64;
            let text = compressible_text(1_000 + (i * 7919) % 11_000, seed);
            fs::write(dir.join(format!("f{i:04}.txt")), text).unwrap();
        }
    }
    write_noise_file(&src.join("large.bin"), 3 << 20, 9);
    fs::write(src.join("linked.txt"), b"two names, one file").unwrap();
    fs::hard_link(src.join("linked.txt"), src.join("linked2.txt")).unwrap();
}

/// The data blobs the files of `snapshot` use, and how many files are bundled.
fn data_blobs(repo: &Repository, snapshot: &Snapshot) -> (HashSet<BlobId>, usize) {
    let mut blobs = HashSet::new();
    let mut bundled = 0;
    browse::walk(repo, &snapshot.tree, b"/", &mut |_, node| {
        if let Some(data) = node.kind.file_data() {
            blobs.extend(data.blobs.iter().copied());
            bundled += usize::from(matches!(node.kind, NodeKind::Bundled { .. }));
        }
    })
    .unwrap();
    (blobs, bundled)
}

fn backup_with(repo: &mut Repository, dir: &Path, parent: ParentChoice) -> Snapshot {
    let opts = BackupOptions {
        parent,
        ..Default::default()
    };
    let report = backup(repo, &[dir.to_path_buf()], &opts).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    report.snapshot
}

#[test]
fn small_files_share_bundles_and_restore_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, 3, 400);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let snapshot = backup_dir(&mut repo, &src).snapshot;

    let (blobs, bundled) = data_blobs(&repo, &snapshot);
    assert_eq!(bundled, 1200, "every small file with one link is bundled");
    // 1,200 files of about 6.5 KB in three directories: a handful of bundles
    // each, plus the large file's chunks and the linked file's blob.
    assert!(
        blobs.len() <= 20,
        "{} data blobs for 1,203 files",
        blobs.len()
    );
    let report = backup_dir(&mut repo, &src);
    let s = stats(&repo, &[(report.id, report.snapshot)]).unwrap();
    assert_eq!((s.files, s.restore_size), (1203, dir_size(&src)));

    let out = tmp.path().join("out");
    let r = restore(&repo, &snapshot, Some(&src), &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&src, &out.join("src"));

    // dump writes a bundled file's own bytes, nothing of its neighbours.
    let path = src.join("d1/f0123.txt");
    let target = cairn_engine::dump::resolve(&repo, &snapshot, &path).unwrap();
    let mut dumped = Vec::new();
    cairn_engine::dump::write(&repo, &target, &mut dumped).unwrap();
    assert_eq!(dumped, fs::read(&path).unwrap());
}

#[test]
fn compressible_small_files_take_less_room_bundled_than_alone() {
    // Files that share text (a common header, as source files share a
    // licence): together they compress far better than each alone.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let header = compressible_text(3_000, 1);
    for i in 0..1_000u64 {
        let mut text = header.clone();
        text.extend(compressible_text(1_000, 100 + i));
        fs::write(src.join(format!("{i}.txt")), text).unwrap();
    }
    let mut repo = init_repo(&tmp.path().join("repo"));
    let snapshot = backup_dir(&mut repo, &src).snapshot;
    let bundled = snapshot.summary.bytes_added_stored;
    let mut alone = 0u64;
    for f in walk_files(&src) {
        let data = fs::read(&f).unwrap();
        alone += zstd::bulk::compress(&data, 3)
            .unwrap()
            .len()
            .min(data.len()) as u64;
    }
    assert!(
        bundled * 2 < alone,
        "bundled {bundled} bytes, compressed one by one {alone} bytes"
    );
}

#[test]
fn a_copied_tree_adds_no_data_and_a_change_adds_one_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    build(&work, 2, 300);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let first = backup_dir(&mut repo, &work);
    assert!(first.snapshot.summary.data_blobs_added > 0);

    // The same content in new inodes (as after `cp -a` or a fresh checkout):
    // every file is read again, and none is stored again.
    let copy = tmp.path().join("copy");
    copy_tree(&work, &copy);
    fs::remove_dir_all(&work).unwrap();
    fs::rename(&copy, &work).unwrap();
    let second = backup_dir(&mut repo, &work);
    assert_eq!(second.snapshot.summary.files_unchanged, 0);
    assert_eq!(second.snapshot.summary.data_blobs_added, 0);
    assert_eq!(
        data_blobs(&repo, &second.snapshot).0,
        data_blobs(&repo, &first.snapshot).0
    );

    // One changed file: one new bundle, holding only that file.
    let changed = work.join("d1/f0100.txt");
    fs::write(&changed, b"a new version of this file").unwrap();
    let third = backup_dir(&mut repo, &work);
    assert_eq!(third.snapshot.summary.data_blobs_added, 1);
    let node = browse::find_node(&repo, &third.snapshot.tree, &changed)
        .unwrap()
        .unwrap();
    let NodeKind::Bundled { blob, .. } = node.kind else {
        panic!("{:?} is not bundled", node.kind)
    };
    let loc = repo.index().get(BlobKind::Data, &blob).unwrap();
    assert_eq!(u64::from(loc.raw_length), node.size);
    let out = tmp.path().join("out");
    let r = restore(&repo, &third.snapshot, Some(&work), &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_same_tree(&work, &out.join("work"));
}

#[test]
fn without_a_parent_an_insertion_re_stores_only_nearby_bundles() {
    // No parent to compare with: every file goes through the bundler again,
    // and the content-defined ends make the bundles after the insertion
    // line up with the old ones.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, 1, 2_000);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let first = backup_with(&mut repo, &src, ParentChoice::None);
    let (before, _) = data_blobs(&repo, &first);
    assert!(before.len() >= 10, "{} bundles", before.len());

    fs::write(src.join("d0/f0500a.txt"), compressible_text(5_000, 77)).unwrap();
    let second = backup_with(&mut repo, &src, ParentChoice::None);
    let (after, _) = data_blobs(&repo, &second);
    let new = after.difference(&before).count();
    assert!(new <= 2, "{new} of {} bundles are new", after.len());
}

/// Copies a tree of directories and regular files, keeping modification times.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let mut entries: Vec<PathBuf> = fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
            let mtime = fs::metadata(&p).unwrap().modified().unwrap();
            fs::File::options()
                .write(true)
                .open(&dest)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

#[test]
fn bundled_content_is_checked_against_its_range_and_id() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    let bundle = b"first file|second file";
    let id = repo.blob_id(b"second file");
    assert_eq!(
        repo.bundled_content(bundle, 11, 11, &id).unwrap(),
        b"second file"
    );
    assert!(
        repo.bundled_content(bundle, 10, 11, &id).is_err(),
        "wrong bytes"
    );
    assert!(
        repo.bundled_content(bundle, 12, 11, &id).is_err(),
        "past the end"
    );
    assert!(repo.bundled_content(bundle, u64::MAX, 2, &id).is_err());
}
