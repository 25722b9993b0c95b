//! Restore writes files from several threads and reads adjacent blobs of a
//! pack at once: the result is still exact, sparse where the source was, and a
//! damaged blob fails only the files that need it, even when it is read
//! together with its neighbours.

use cairn_engine::restore::{restore, restore_with, RestoreOptions};
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::{BlobId, BlobKind};
use cairn_tests::*;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Many small files in a few directories, a large multi-blob file linked
/// twice, a sparse file and a file that repeats one chunk.
fn build(src: &Path) {
    for d in 0..4 {
        let dir = src.join(format!("dir{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..300 {
            // Over 4 MiB a directory: always more than one bundle.
            let len = (i * 37 + d * 11) % 9000 + 12_000;
            std::fs::write(
                dir.join(format!("f{i:03}")),
                Noise::new(i as u64 + 1000 * d as u64).bytes(len),
            )
            .unwrap();
        }
    }
    write_noise_file(&src.join("large.bin"), 40 << 20, 3);
    std::fs::hard_link(src.join("large.bin"), src.join("large.bin.link")).unwrap();
    let mut f = std::fs::File::create(src.join("sparse.img")).unwrap();
    for (at, seed) in [(3u64 << 20, 1), ((37 << 20) + 1234, 2)] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&Noise::new(seed).bytes(200_000)).unwrap();
    }
    f.set_len(80 << 20).unwrap();
    let block = Noise::new(4).bytes(5 << 20);
    std::fs::write(src.join("repeated.bin"), block.repeat(4)).unwrap();
}

fn setup() -> (tempfile::TempDir, PathBuf, Repository, Snapshot) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src);
    let mut repo = init_repo(&tmp.path().join("repo"));
    let report = backup_dir(&mut repo, &src);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    (tmp, src, repo, report.snapshot)
}

/// Flips a byte inside the first blob of the file at `path` in the snapshot
/// (for a small file, its bundle); returns that blob's ID.
fn damage(repo: &Repository, snapshot: &Snapshot, repo_path: &Path, path: &Path) -> BlobId {
    let node = cairn_engine::browse::find_node(repo, &snapshot.tree, path)
        .unwrap()
        .unwrap();
    let Some(data) = node.kind.file_data() else {
        panic!("{} is not a file", path.display())
    };
    let blob = data.blobs[0];
    let loc = repo.index().get(BlobKind::Data, &blob).unwrap();
    let hex = loc.pack.to_hex();
    let pack = repo_path.join("data").join(&hex[..2]).join(&hex);
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[loc.offset as usize + 40] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    blob
}

#[test]
fn a_tree_of_small_large_and_sparse_files_restores_exactly() {
    let (tmp, src, repo, snapshot) = setup();
    let out = tmp.path().join("out");
    let opts = RestoreOptions {
        verify: true,
        ..Default::default()
    };
    let r = restore_with(&repo, &snapshot, Some(&src), &out, &opts).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.files, 4 * 300 + 4);
    assert_eq!(
        r.verified,
        4 * 300 + 3,
        "all but the second link are verified"
    );
    let restored = out.join("src");
    assert_same_tree(&src, &restored);
    let ino = |p: &str| std::fs::metadata(restored.join(p)).unwrap().ino();
    assert_eq!(ino("large.bin"), ino("large.bin.link"));
    let sparse = std::fs::metadata(restored.join("sparse.img")).unwrap();
    assert!(
        sparse.blocks() * 512 < 2 << 20,
        "{} bytes allocated for 400 KB of data",
        sparse.blocks() * 512
    );
}

#[test]
fn a_damaged_blob_read_with_its_neighbours_fails_only_its_files() {
    let (tmp, src, repo, snapshot) = setup();
    let repo_path = tmp.path().join("repo");
    let damaged: Vec<BlobId> = ["dir2/f150", "large.bin"]
        .iter()
        .map(|v| damage(&repo, &snapshot, &repo_path, &src.join(v)))
        .collect();
    // The files that need a damaged blob: the large file with its link, and
    // the small files bundled with f150 (more than f150, fewer than its directory).
    let mut expected = Vec::new();
    cairn_engine::browse::walk(&repo, &snapshot.tree, b"/", &mut |path, node| {
        if let Some(data) = node.kind.file_data() {
            if data.blobs.iter().any(|b| damaged.contains(b)) {
                let path = Path::new(std::ffi::OsStr::from_bytes(path));
                expected.push(path.strip_prefix(&src).unwrap().to_path_buf());
            }
        }
    })
    .unwrap();
    expected.sort();
    let bundled_with_f150 = expected.iter().filter(|p| p.starts_with("dir2")).count();
    assert!(
        bundled_with_f150 > 1 && bundled_with_f150 < 300,
        "{bundled_with_f150} files share f150's bundle"
    );
    assert!(expected.contains(&PathBuf::from("dir2/f150")));
    assert!(expected.contains(&PathBuf::from("large.bin.link")));
    let out = tmp.path().join("out");
    let r = restore(&repo, &snapshot, Some(&src), &out).unwrap();
    let restored = out.join("src");
    let mut failed: Vec<_> = r
        .errors
        .iter()
        .map(|(p, _)| p.strip_prefix(&restored).unwrap().to_path_buf())
        .collect();
    failed.sort();
    assert_eq!(failed, expected, "{:?}", r.errors);
    for (path, e) in &r.errors {
        assert!(
            path.ends_with("large.bin.link") || e.is_integrity(),
            "{}: {e}",
            path.display()
        );
    }
    for p in &expected {
        assert!(
            std::fs::symlink_metadata(restored.join(p)).is_err(),
            "{} was left behind",
            p.display()
        );
    }
    // Everything else is exact.
    let files = walk_files(&restored);
    assert_eq!(files.len(), walk_files(&src).len() - expected.len());
    for f in files {
        let rel = f.strip_prefix(&restored).unwrap();
        assert_eq!(
            hash_file(&f),
            hash_file(&src.join(rel)),
            "{}",
            rel.display()
        );
    }
}
