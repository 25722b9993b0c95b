//! Flipping any byte of any repository file makes reading it fail with an
//! integrity error; wrong data is never returned.

use cairn_engine::backend::{FileKind, LocalBackend};
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::{Error, Repository};
use cairn_format::{BlobKind, PackId, SnapshotId};
use cairn_tests::*;
use std::path::{Path, PathBuf};

/// Positions to flip: every byte of small files, otherwise the first and last
/// 300 bytes and 300 spread over the middle.
fn positions(len: usize) -> Vec<usize> {
    if len <= 2048 {
        return (0..len).collect();
    }
    let mut p: Vec<usize> = (0..300).chain(len - 300..len).collect();
    p.extend((0..300).map(|i| 300 + i * (len - 600) / 300));
    p
}

fn with_flipped<T>(file: &Path, at: usize, f: impl FnOnce() -> T) -> T {
    let original = std::fs::read(file).unwrap();
    let mut bad = original.clone();
    bad[at] ^= 0x04;
    std::fs::write(file, &bad).unwrap();
    let out = f();
    std::fs::write(file, &original).unwrap();
    out
}

fn assert_integrity(what: &str, at: usize, r: Result<(), Error>) {
    match r {
        Err(e) if e.is_integrity() => {}
        Err(e) => panic!("flip at {at} of {what}: expected an integrity error, got: {e}"),
        Ok(()) => panic!("flip at {at} of {what} went unnoticed"),
    }
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // `a` is bundled (SPEC §12.4); `b`, above the bundling limit, is a blob of its own.
    std::fs::write(src.join("a"), compressible_text(200_000, 1)).unwrap();
    std::fs::write(src.join("b"), Noise::new(1).bytes(300_000)).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    backup(&mut repo, &[src], &BackupOptions::default()).unwrap();
    (tmp, repo_path)
}

fn open(path: &Path) -> Result<Repository, Error> {
    Repository::open(LocalBackend::new(path), PASSWORD.as_bytes())
}

#[test]
fn every_flip_in_config_key_index_and_snapshot_files_is_detected() {
    let (_tmp, repo_path) = setup();
    let repo = open(&repo_path).unwrap();
    let backend = LocalBackend::new(&repo_path);
    let mut checked = 0;

    for at in positions(std::fs::read(repo_path.join("config")).unwrap().len()) {
        assert_integrity(
            "config",
            at,
            with_flipped(&repo_path.join("config"), at, || open(&repo_path).map(drop)),
        );
        checked += 1;
    }
    for kind in [FileKind::Key, FileKind::Index] {
        for name in cairn_engine::backend::Backend::list(&backend, kind).unwrap() {
            let file = walk_files(&repo_path)
                .into_iter()
                .find(|p| p.ends_with(&name))
                .unwrap();
            for at in positions(std::fs::metadata(&file).unwrap().len() as usize) {
                assert_integrity(
                    kind.name(),
                    at,
                    with_flipped(&file, at, || open(&repo_path).map(drop)),
                );
                checked += 1;
            }
        }
    }
    for (id, _) in repo.snapshots().unwrap() {
        let file = repo_path.join("snapshots").join(id.to_hex());
        for at in positions(std::fs::metadata(&file).unwrap().len() as usize) {
            let r = with_flipped(&file, at, || {
                repo.load_snapshot(&SnapshotId(id.0)).map(drop)
            });
            assert_integrity("snapshot", at, r);
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} flips tried");
}

#[test]
fn every_flip_in_a_pack_is_detected_by_reading_it() {
    let (_tmp, repo_path) = setup();
    let repo = open(&repo_path).unwrap();
    let backend = LocalBackend::new(&repo_path);
    let packs = cairn_engine::backend::Backend::list(&backend, FileKind::Pack).unwrap();
    assert!(!packs.is_empty());
    for name in packs {
        let id = PackId::from_hex(&name).unwrap();
        let file = repo_path.join("data").join(&name[..2]).join(&name);
        let header = repo.verify_pack(&id).unwrap();
        for at in positions(std::fs::metadata(&file).unwrap().len() as usize) {
            assert_integrity(
                "pack",
                at,
                with_flipped(&file, at, || repo.verify_pack(&id).map(drop)),
            );
            // A flip inside a blob also fails a plain read of that blob.
            if let Some(e) = header
                .blobs
                .iter()
                .find(|e| (e.offset as usize..(e.offset + e.length as u64) as usize).contains(&at))
            {
                let r = with_flipped(&file, at, || repo.read_blob(e.kind, &e.id).map(drop));
                assert_integrity("blob", at, r);
            }
        }
    }
}

#[test]
fn a_blob_swapped_for_another_is_rejected() {
    let (_tmp, repo_path) = setup();
    let repo = open(&repo_path).unwrap();
    // Two data blobs, in one pack or two (a writer fills two at random).
    let packs =
        cairn_engine::backend::Backend::list(&LocalBackend::new(&repo_path), FileKind::Pack)
            .unwrap();
    let file = |name: &str| repo_path.join("data").join(&name[..2]).join(name);
    let data: Vec<_> = packs
        .iter()
        .flat_map(|name| {
            let header = repo.verify_pack(&PackId::from_hex(name).unwrap()).unwrap();
            header
                .blobs
                .into_iter()
                .filter(|e| e.kind == BlobKind::Data)
                .map(|e| (file(name), e))
        })
        .collect();
    assert!(data.len() >= 2, "{} data blobs", data.len());
    // Copy blob 1's envelope over the start of blob 0: authenticated under another ID, it must fail.
    let ((a_file, a), (b_file, b)) = (&data[0], &data[1]);
    let n = a.length.min(b.length) as usize;
    let src = std::fs::read(b_file).unwrap()[b.offset as usize..b.offset as usize + n].to_vec();
    let mut bytes = std::fs::read(a_file).unwrap();
    bytes[a.offset as usize..a.offset as usize + n].copy_from_slice(&src);
    std::fs::write(a_file, &bytes).unwrap();
    assert!(repo
        .read_blob(BlobKind::Data, &a.id)
        .unwrap_err()
        .is_integrity());
}

#[test]
fn restore_skips_only_the_file_whose_data_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // Over twice the largest chunk (4 MiB), so at least three chunks with any
    // chunker key: a smaller file is one chunk for some keys.
    std::fs::write(src.join("victim"), Noise::new(7).bytes(9_000_000)).unwrap();
    std::fs::write(src.join("bystander"), b"intact").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    let report = backup_dir(&mut repo, &src);
    let tree = repo.load_tree(&report.snapshot.tree).unwrap();
    // Walk down to the victim's first blob and damage it in its pack.
    let mut node = tree.nodes[0].clone();
    for name in src.strip_prefix("/").unwrap().iter().skip(1) {
        let cairn_format::tree::NodeKind::Dir { subtree } = node.kind else {
            panic!()
        };
        node = repo
            .load_tree(&subtree)
            .unwrap()
            .find(name.as_encoded_bytes())
            .unwrap()
            .clone();
    }
    let cairn_format::tree::NodeKind::Dir { subtree } = node.kind else {
        panic!()
    };
    let victim = repo
        .load_tree(&subtree)
        .unwrap()
        .find(b"victim")
        .unwrap()
        .clone();
    let cairn_format::tree::NodeKind::File { content } = victim.kind else {
        panic!()
    };
    // Its last chunk: restore writes the others first.
    assert!(content.len() > 1);
    damage_blob(&repo_path, &repo, content.last().unwrap());

    let out = tmp.path().join("out");
    let restored =
        cairn_engine::restore::restore(&repo, &report.snapshot, Some(&src), &out).unwrap();
    assert_eq!(restored.errors.len(), 1, "{:?}", restored.errors);
    assert!(restored.errors[0].0.ends_with("victim"));
    assert!(restored.errors[0].1.is_integrity());
    assert_eq!(std::fs::read(out.join("src/bystander")).unwrap(), b"intact");
    assert!(
        !out.join("src/victim").exists(),
        "a half-restored file was left behind"
    );
    // Restoring over an existing file rewrites it in place: when its data
    // is damaged after some was written, it is removed, never left part old
    // and part new. Had nothing been written yet, it would be left as it was.
    let old = Noise::new(8).bytes(9_000_000);
    std::fs::write(out.join("src/victim"), &old).unwrap();
    let restored =
        cairn_engine::restore::restore(&repo, &report.snapshot, Some(&src), &out).unwrap();
    assert_eq!(restored.errors.len(), 1, "{:?}", restored.errors);
    assert!(restored.errors[0].0.ends_with("victim"));
    assert!(
        !out.join("src/victim").exists(),
        "a file part old, part new was left behind"
    );
    assert_eq!(std::fs::read(out.join("src/bystander")).unwrap(), b"intact");
}

#[test]
fn a_stray_key_file_does_not_lock_out_the_real_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (_keep, repo_path) = setup();
    // A key file with the same password from another repository, as an
    // interrupted `init` could leave behind, named so that it is tried first.
    let real = walk_files(&repo_path.join("keys")).remove(0);
    for attempt in 0.. {
        let other = tmp.path().join(format!("other{attempt}"));
        init_repo(&other);
        let stray = walk_files(&other.join("keys")).remove(0);
        if stray.file_name() < real.file_name() {
            std::fs::copy(
                &stray,
                repo_path.join("keys").join(stray.file_name().unwrap()),
            )
            .unwrap();
            break;
        }
    }
    let repo = open(&repo_path).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 1);
}
