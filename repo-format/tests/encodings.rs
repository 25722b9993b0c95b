//! Property tests: every structure round-trips through its encoding, and
//! arbitrary bytes never make a decoder panic.

use cairn_format::codec::{self, Versioned};
use cairn_format::crypto::MasterKeys;
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::pack::{PackEntry, PackHeader};
use cairn_format::snapshot::{SkippedEntry, Snapshot, Summary};
use cairn_format::tree::{Node, NodeKind, Tree, Xattr};
use cairn_format::{BlobId, BlobKind, PackId, SnapshotId, Timestamp};
use proptest::prelude::*;

fn id() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (any::<i64>(), 0u32..1_000_000_000).prop_map(|(secs, nanos)| Timestamp { secs, nanos })
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
        1..40,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn kind() -> impl Strategy<Value = NodeKind> {
    prop_oneof![
        proptest::collection::vec(id().prop_map(BlobId), 0..5)
            .prop_map(|content| NodeKind::File { content }),
        id().prop_map(|i| NodeKind::Dir { subtree: BlobId(i) }),
        bytes(64).prop_map(|target| NodeKind::Symlink { target }),
        Just(NodeKind::Fifo),
        Just(NodeKind::Socket),
        any::<u64>().prop_map(|rdev| NodeKind::CharDevice { rdev }),
        any::<u64>().prop_map(|rdev| NodeKind::BlockDevice { rdev }),
        (id(), 0u64..1 << 40, id()).prop_map(|(blob, offset, i)| NodeKind::Bundled {
            blob: BlobId(blob),
            offset,
            id: BlobId(i)
        }),
    ]
}

prop_compose! {
    fn node()(name in name(), kind in kind(), mode in 0u32..=0o7777, uid in any::<u32>(), gid in any::<u32>(),
              user in ".{0,8}", group in ".{0,8}", mtime in timestamp(), ctime in timestamp(),
              nums in any::<(u64, u64, u64, u64)>(),
              xattrs in proptest::collection::vec((bytes(16), bytes(32)), 0..3)) -> Node {
        Node { name, kind, mode, uid, gid, user, group, mtime, ctime,
               size: nums.0 >> 1, inode: nums.1, device: nums.2, links: nums.3,
               xattrs: {
                   let mut x: Vec<Xattr> = xattrs.into_iter().map(|(name, value)| Xattr { name, value }).collect();
                   x.sort_by(|a, b| a.name.cmp(&b.name));
                   x.dedup_by(|a, b| a.name == b.name);
                   x
               } }
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    proptest::collection::vec(node(), 0..12).prop_map(|mut nodes| {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        Tree::new(nodes)
    })
}

/// Pack entries, mostly within the bounds readers accept (SPEC §9.2).
fn entry() -> impl Strategy<Value = PackEntry> {
    let within = (
        any::<bool>(),
        id(),
        0..1u64 << 40,
        42..=(16u32 << 20) + 42,
        0..=16u32 << 20,
    );
    let any_values = (
        any::<bool>(),
        id(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
    );
    prop_oneof![9 => within, 1 => any_values].prop_map(|(t, i, offset, length, raw_length)| {
        PackEntry {
            kind: if t { BlobKind::Tree } else { BlobKind::Data },
            id: BlobId(i),
            offset,
            length,
            raw_length,
        }
    })
}

prop_compose! {
    fn snapshot()(time in timestamp(), hostname in ".{0,12}", username in ".{0,12}", uid in any::<u32>(), gid in any::<u32>(),
                  paths in proptest::collection::vec(bytes(30), 0..4), tags in proptest::collection::vec(".{0,8}", 0..4),
                  tree in id(), parent in proptest::option::of(id()), counts in any::<[u64; 11]>(),
                  started in timestamp(), finished in timestamp(),
                  skipped in proptest::collection::vec((bytes(20), ".{0,10}"), 0..3)) -> Snapshot {
        Snapshot { version: 1, time, hostname, username, uid, gid, paths, tags, tree: BlobId(tree),
                   parent: parent.map(SnapshotId),
                   summary: Summary { files_new: counts[0], files_changed: counts[1], files_unchanged: counts[2], dirs: counts[3],
                                      others: counts[4], bytes_read: counts[5], data_blobs_added: counts[6], tree_blobs_added: counts[7],
                                      bytes_added: counts[8], bytes_added_stored: counts[9], total_size: counts[10], started, finished },
                   skipped: skipped.into_iter().map(|(path, reason)| SkippedEntry { path, reason }).collect(),
                   program: "cairn test".into() }
    }
}

fn round_trip<T: Versioned + PartialEq + std::fmt::Debug>(value: &T) {
    let decoded: T = codec::decode(&codec::encode(value)).expect("decodes");
    assert_eq!(&decoded, value);
}

proptest! {
    #[test]
    fn trees_round_trip(t in tree()) { round_trip(&t); }

    #[test]
    fn snapshots_round_trip(s in snapshot()) {
        round_trip(&s);
        let keys = MasterKeys::generate();
        prop_assert_eq!(Snapshot::open(&s.seal(&keys), &keys).unwrap(), s);
    }

    #[test]
    fn pack_headers_round_trip(blobs in proptest::collection::vec(entry(), 0..20)) {
        round_trip(&PackHeader { version: 1, blobs });
    }

    #[test]
    fn index_files_round_trip(packs in proptest::collection::vec((id(), proptest::collection::vec(entry(), 0..8)), 0..6)) {
        let index = IndexFile { version: 1, packs: packs.into_iter().map(|(i, blobs)| IndexPack { id: PackId(i), blobs }).collect() };
        round_trip(&index);
        let keys = MasterKeys::generate();
        let within = |e: &PackEntry| {
            e.offset.checked_add(u64::from(e.length)).is_some()
                && (42..=e.kind.max_len() + 42).contains(&(e.length as usize))
                && e.raw_length as usize <= e.kind.max_len()
        };
        match index.packs.iter().flat_map(|p| &p.blobs).all(within) {
            true => prop_assert_eq!(IndexFile::open(&index.seal(&keys), &keys).unwrap(), index),
            false => prop_assert!(IndexFile::open(&index.seal(&keys), &keys).is_err()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(data in bytes(512)) {
        let _ = codec::decode::<Tree>(&data);
        let _ = codec::decode::<Snapshot>(&data);
        let _ = codec::decode::<PackHeader>(&data);
        let _ = codec::decode::<IndexFile>(&data);
        let _ = codec::decode::<cairn_format::config::Config>(&data);
        let _ = cairn_format::key::read_key_header(&data);
        let _ = cairn_format::frame::decode(&data, 1 << 16, "fuzz");
    }
}

/// A node named `name` of `kind`, one link, every other field zero or empty.
fn plain_node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0,
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        mtime: Timestamp::default(),
        ctime: Timestamp::default(),
        size: 0,
        inode: 0,
        device: 0,
        links: 1,
        xattrs: vec![],
    }
}

#[test]
fn tree_with_a_hostile_name_is_rejected() {
    for bad in [&b".."[..], b".", b"a/b", b"a\0b", b""] {
        let mut t = Tree::new(vec![]);
        t.nodes.push(plain_node(bad, NodeKind::Fifo));
        assert!(Tree::decode(&t.encode()).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn the_wire_format_is_pinned() {
    // A tree with one FIFO named "a": version 2, 1 node, name len 1 'a', variant 3,
    // mode 0o644 (varint a4 03), uid 0, gid 0, "", "", mtime (zigzag 2 = 1s, 5ns),
    // ctime (0, 0), size 0, inode 7, device 0, links 1, no xattrs.
    let t = Tree::new(vec![Node {
        mode: 0o644,
        mtime: Timestamp { secs: 1, nanos: 5 },
        inode: 7,
        ..plain_node(b"a", NodeKind::Fifo)
    }]);
    assert_eq!(
        t.encode(),
        [
            0x02, 0x01, 0x01, b'a', 0x03, 0xa4, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02, 0x05, 0x00,
            0x00, 0x00, 0x07, 0x00, 0x01, 0x00
        ]
    );
}

fn bundled_tree(version: u32, offset: u64, size: u64) -> Tree {
    let kind = NodeKind::Bundled {
        blob: BlobId([0xbb; 32]),
        offset,
        id: BlobId([0x1d; 32]),
    };
    let mut t = Tree::new(vec![Node {
        size,
        ..plain_node(b"a", kind)
    }]);
    t.version = version;
    t
}

#[test]
fn a_bundled_file_is_pinned_and_needs_tree_version_2() {
    let t = bundled_tree(2, 300, 5);
    let bytes = t.encode();
    // Version 2, 1 node, name "a", variant 7, the bundle's 32 bytes, offset 300
    // (varint ac 02), the content ID's 32 bytes, then the node's other fields.
    let mut expected = vec![0x02, 0x01, 0x01, b'a', 0x07];
    expected.extend([0xbb; 32]);
    expected.extend([0xac, 0x02]);
    expected.extend([0x1d; 32]);
    assert_eq!(bytes[..expected.len()], expected[..]);
    assert_eq!(Tree::decode(&bytes).unwrap(), t);
    // The same node in a version 1 tree is refused; other version 1 trees are read.
    assert!(Tree::decode(&bundled_tree(1, 300, 5).encode()).is_err());
    let mut v1 = Tree::new(Vec::new());
    v1.version = 1;
    assert_eq!(Tree::decode(&v1.encode()).unwrap(), v1);
    let mut v3 = v1.clone();
    v3.version = 3;
    assert!(Tree::decode(&v3.encode()).is_err());
    // A file that would end beyond 2^64 is refused.
    assert!(Tree::decode(&bundled_tree(2, u64::MAX, 5).encode()).is_err());
}
