//! A hostile repository (one written by a buggy or malicious client that had
//! the keys) cannot make restore write outside its target: entry names such
//! as `..`, `a/b`, or with a NUL are refused, symlinks in the way are never
//! followed, and a file whose recorded size disagrees with its data is
//! refused instead of being written out to that size. Nothing panics.

use cairn_engine::packer::PackWriter;
use cairn_engine::restore::restore;
use cairn_engine::Repository;
use cairn_format::codec;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, BlobKind};
use cairn_tests::*;
use std::fs;

/// Stores `nodes` as a tree exactly as given (unsorted, unchecked), and a
/// snapshot whose root is that tree; returns the snapshot.
fn crafted(repo: &mut Repository, nodes: Vec<Node>, data: &[&[u8]]) -> Snapshot {
    let mut writer = PackWriter::new(repo);
    for d in data {
        writer.save(BlobKind::Data, d.to_vec()).unwrap();
    }
    let tree = writer
        .save(BlobKind::Tree, codec::encode(&Tree { version: 2, nodes }))
        .unwrap();
    let (packs, _) = writer.finish().unwrap();
    repo.save_index(packs).unwrap();
    let template = repo.snapshots().unwrap().pop().unwrap().1;
    let snapshot = Snapshot { tree, ..template };
    repo.save_snapshot(&snapshot).unwrap();
    snapshot
}

#[test]
fn entry_names_that_leave_the_target_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    let content = b"escaped";
    let id = repo.blob_id(content);
    for bad in [
        &b".."[..],
        b".",
        b"../escape",
        b"a/b",
        b"/abs",
        b"nul\0name",
        b"",
    ] {
        let file = NodeKind::File { content: vec![id] };
        let snapshot = crafted(
            &mut repo,
            vec![plain_node(bad, file, content.len() as u64)],
            &[content],
        );
        let target = base.join("target");
        let _ = fs::remove_dir_all(&target);
        let before = walk_files(&base).len();
        let what = String::from_utf8_lossy(bad);
        match restore(&repo, &snapshot, None, &target) {
            Ok(report) => {
                let errors: Vec<String> =
                    report.errors.iter().map(|(_, e)| e.to_string()).collect();
                assert!(
                    errors.iter().any(|e| e.contains("invalid entry name")),
                    "{what:?}: {errors:?}"
                );
            }
            Err(e) => assert!(
                e.to_string().contains("invalid entry name"),
                "{what:?}: {e}"
            ),
        }
        assert_eq!(
            walk_files(&base).len(),
            before,
            "{what:?}: a file was written"
        );
    }
}

#[test]
fn duplicate_and_unsorted_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    for names in [[&b"a"[..], b"a"], [b"b", b"a"]] {
        let nodes = names
            .iter()
            .map(|n| plain_node(n, NodeKind::Fifo, 0))
            .collect();
        let snapshot = crafted(&mut repo, nodes, &[]);
        let target = base.join("target");
        let _ = fs::remove_dir_all(&target);
        let report = restore(&repo, &snapshot, None, &target);
        let text = format!("{report:?}");
        assert!(text.contains("not sorted or not unique"), "{text}");
    }
}

#[test]
fn symlinks_in_the_target_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    let content = b"from the snapshot";
    let id = repo.blob_id(content);
    let sub = crafted(
        &mut repo,
        vec![plain_node(
            b"f",
            NodeKind::File { content: vec![id] },
            content.len() as u64,
        )],
        &[content],
    )
    .tree;
    // The snapshot has a directory `d` with a file `f`, a file `g`, and a
    // symlink `s` pointing outside.
    let snapshot = crafted(
        &mut repo,
        vec![
            plain_node(b"d", NodeKind::Dir { subtree: sub }, 0),
            plain_node(
                b"g",
                NodeKind::File { content: vec![id] },
                content.len() as u64,
            ),
            plain_node(
                b"s",
                NodeKind::Symlink {
                    target: base.join("outside").as_os_str().as_encoded_bytes().to_vec(),
                },
                0,
            ),
        ],
        &[],
    );
    // The target already has `d` and `g` as symlinks to places outside it.
    let outside = base.join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("g"), b"precious").unwrap();
    let target = base.join("target");
    fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("d")).unwrap();
    std::os::unix::fs::symlink(outside.join("g"), target.join("g")).unwrap();
    let report = restore(&repo, &snapshot, None, &target).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(fs::read(outside.join("g")).unwrap(), b"precious");
    assert!(!outside.join("f").exists(), "written through the symlink d");
    assert!(fs::symlink_metadata(target.join("d")).unwrap().is_dir());
    assert_eq!(fs::read(target.join("d/f")).unwrap(), content);
    assert!(fs::symlink_metadata(target.join("g")).unwrap().is_file());
    assert_eq!(fs::read(target.join("g")).unwrap(), content);
    // The symlink is restored as a symlink, and nothing is written through it.
    assert!(fs::symlink_metadata(target.join("s"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn a_file_whose_size_disagrees_with_its_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    let content = b"twelve bytes";
    let id = repo.blob_id(content);
    let file = || NodeKind::File { content: vec![id] };
    let bundled = |offset| NodeKind::Bundled {
        blob: id,
        offset,
        id: BlobId([1; 32]),
    };
    let cases = [
        (file(), 0),
        (file(), 5),
        (file(), 13),
        (file(), 1 << 50),
        (bundled(8), 10),
        (bundled(0), 1 << 50),
        (bundled(u64::MAX - 10), 5),
    ];
    let existing = b"the file that was there before";
    for (kind, size) in cases {
        let what = format!("{kind:?} of {size} bytes");
        let snapshot = crafted(&mut repo, vec![plain_node(b"f", kind, size)], &[content]);
        // Into an empty target, and over an existing file (rewritten in
        // place): refused before anything is allocated or changed.
        for over_existing in [false, true] {
            let target = base.join("target");
            let _ = fs::remove_dir_all(&target);
            if over_existing {
                fs::create_dir(&target).unwrap();
                fs::write(target.join("f"), existing).unwrap();
            }
            let report = restore(&repo, &snapshot, None, &target).unwrap();
            assert_eq!(report.errors.len(), 1, "{what}: {:?}", report.errors);
            let error = report.errors[0].1.to_string();
            assert!(
                error.contains("where its entry says") || error.contains("outside its bundle"),
                "{what}: {error}"
            );
            match over_existing {
                true => assert_eq!(fs::read(target.join("f")).unwrap(), existing, "{what}"),
                false => assert!(!target.join("f").exists(), "{what}"),
            }
        }
    }
    let report = cairn_engine::check::check(&repo, &Default::default()).unwrap();
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    let refused = |needle: &str| errors.iter().filter(|e| e.contains(needle)).count();
    assert_eq!(refused("where its entry says"), 4, "{errors:?}");
    assert_eq!(refused("outside its bundle"), 3, "{errors:?}");
}

/// Two nodes that claim the same inode (with two links) but hold different
/// content: each keeps its own content, in a tar archive and in a restore.
#[test]
fn a_claimed_hard_link_with_other_content_is_not_linked() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let mut repo = one_snapshot_repo(&base);
    let (one, two): (&[u8], &[u8]) = (b"first content", b"other content, longer");
    let node = |name: &[u8], data: &[u8]| {
        let mut n = plain_node(
            name,
            NodeKind::File {
                content: vec![repo.blob_id(data)],
            },
            data.len() as u64,
        );
        (n.inode, n.device, n.links) = (77, 5, 2);
        n
    };
    let nodes = vec![node(b"a", one), node(b"b", two), node(b"c", one)];
    let snapshot = crafted(&mut repo, nodes, &[one, two]);

    let mut tar_bytes = Vec::new();
    cairn_engine::dump::dump(&repo, &snapshot, std::path::Path::new("/"), &mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        seen.push((name, link, data));
    }
    assert_eq!(
        seen,
        vec![
            ("a".into(), None, one.to_vec()),
            ("b".into(), None, two.to_vec()),
            ("c".into(), Some("a".into()), vec![]),
        ]
    );

    let target = base.join("target");
    let report = restore(&repo, &snapshot, None, &target).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(fs::read(target.join("a")).unwrap(), one);
    assert_eq!(fs::read(target.join("b")).unwrap(), two);
    assert_eq!(fs::read(target.join("c")).unwrap(), one);
    let inode =
        |n: &str| std::os::unix::fs::MetadataExt::ino(&fs::metadata(target.join(n)).unwrap());
    assert_eq!(inode("a"), inode("c"), "the same content is still linked");
    assert_ne!(inode("a"), inode("b"));
}
