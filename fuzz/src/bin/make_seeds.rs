//! Writes valid encoded structures into `corpus/<target>/` as starting points
//! for the fuzz targets. Usage: `cargo run --bin make_seeds [CORPUS_DIR]`
//! (default: the `corpus` directory next to this crate's Cargo.toml).
//! Existing files with the same names are overwritten; others are left alone.

use cairn_format::codec;
use cairn_format::config::{Config, COMPRESSION_NONE};
use cairn_format::crypto::{MasterKeys, ObjectType};
use cairn_format::frame;
use cairn_format::id::{BlobId, IndexId, MarkId, PackId, RepoId, SnapshotId};
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::key::{
    open_key_file, seal_key_file, KdfParams, KeyHeader, KeyInfo, KDF_ARGON2ID, KEY_MAGIC,
};
use cairn_format::lock::{LockRecord, Operation, PruneMark, SessionState};
use cairn_format::pack::{open_blob, seal_blob, BlobKind, PackEntry, PackHeader};
use cairn_format::snapshot::{SkippedEntry, Snapshot, Summary};
use cairn_format::tree::{Node, NodeKind, Tree, Xattr};
use cairn_format::Timestamp;
use cairn_fuzz::{fixed_keys, SealedInput, KEY_MAX_ITERATIONS, KEY_MAX_MEMORY_KIB, KEY_PASSWORD};
use std::path::{Path, PathBuf};

fn ts(secs: i64, nanos: u32) -> Timestamp {
    Timestamp { secs, nanos }
}

fn node(name: &[u8], kind: NodeKind, size: u64) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        user: "alice".into(),
        group: "staff".into(),
        mtime: ts(1_700_000_000, 123_456_789),
        ctime: ts(1_700_000_001, 0),
        size,
        inode: 42,
        device: 2049,
        links: 1,
        xattrs: Vec::new(),
    }
}

fn sample_tree() -> Tree {
    let mut link = node(
        b"link",
        NodeKind::Symlink {
            target: b"../target".to_vec(),
        },
        9,
    );
    link.xattrs = vec![
        Xattr {
            name: b"user.a".to_vec(),
            value: b"1".to_vec(),
        },
        Xattr {
            name: b"user.b".to_vec(),
            value: vec![0, 255],
        },
    ];
    Tree::new(vec![
        node(
            b"file.txt",
            NodeKind::File {
                content: vec![BlobId([1; 32]), BlobId([2; 32])],
            },
            2048,
        ),
        node(
            b"small.txt",
            NodeKind::Bundled {
                blob: BlobId([4; 32]),
                offset: 4096,
                id: BlobId([5; 32]),
            },
            100,
        ),
        node(
            b"dir",
            NodeKind::Dir {
                subtree: BlobId([3; 32]),
            },
            0,
        ),
        link,
        node(b"dev", NodeKind::CharDevice { rdev: 0x0501 }, 0),
    ])
}

fn sample_lock() -> LockRecord {
    LockRecord {
        version: 1,
        session: [5; 16],
        operation: Operation::Backup,
        hostname: "host".into(),
        pid: 4242,
        username: "user".into(),
        started: Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        },
        written: Timestamp {
            secs: 1_700_000_300,
            nanos: 0,
        },
        state: SessionState::Running,
        seen_marks: vec![MarkId([6; 32])],
    }
}

fn sample_mark() -> PruneMark {
    PruneMark {
        version: 1,
        session: [7; 16],
        created: Timestamp {
            secs: 1_700_000_600,
            nanos: 0,
        },
        superseded: vec![IndexId([8; 32])],
        condemned: vec![PackId([9; 32]), PackId([10; 32])],
    }
}

fn sample_snapshot(repo_tree: BlobId, parent: Option<SnapshotId>) -> Snapshot {
    Snapshot {
        version: 1,
        time: ts(1_700_000_000, 5),
        hostname: "host".into(),
        username: "alice".into(),
        uid: 1000,
        gid: 1000,
        paths: vec![b"/home/alice".to_vec(), b"/etc".to_vec()],
        tags: vec!["daily".into()],
        tree: repo_tree,
        parent,
        summary: Summary {
            files_new: 3,
            files_changed: 1,
            dirs: 2,
            bytes_read: 4096,
            data_blobs_added: 2,
            tree_blobs_added: 1,
            bytes_added: 4096,
            bytes_added_stored: 1000,
            total_size: 8192,
            started: ts(1_700_000_000, 5),
            finished: ts(1_700_000_002, 999_999_999),
            ..Summary::default()
        },
        skipped: vec![SkippedEntry {
            path: b"/home/alice/private".to_vec(),
            reason: "Permission denied (os error 13)".into(),
        }],
        program: "cairn 0.1.0".into(),
    }
}

fn entries() -> Vec<PackEntry> {
    vec![
        PackEntry {
            kind: BlobKind::Data,
            id: BlobId([1; 32]),
            offset: 0,
            length: 1041,
            raw_length: 1000,
        },
        PackEntry {
            kind: BlobKind::Tree,
            id: BlobId([3; 32]),
            offset: 1041,
            length: 300,
            raw_length: 420,
        },
    ]
}

fn sample_pack_header() -> PackHeader {
    PackHeader {
        version: 1,
        blobs: entries(),
    }
}

fn sample_index() -> IndexFile {
    IndexFile {
        version: 1,
        packs: vec![
            IndexPack {
                id: PackId([7; 32]),
                blobs: entries(),
            },
            IndexPack {
                id: PackId([8; 32]),
                blobs: Vec::new(),
            },
        ],
    }
}

struct Writer {
    root: PathBuf,
    count: usize,
}

impl Writer {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self.count += 1;
    }
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut w = Writer { root, count: 0 };
    let keys: MasterKeys = fixed_keys();

    // Plain encodings for the codec targets.
    let tree = sample_tree();
    w.put("tree", "four-nodes", &codec::encode(&tree));
    w.put("tree", "empty", &codec::encode(&Tree::new(Vec::new())));

    let snap = sample_snapshot(BlobId([3; 32]), Some(SnapshotId([9; 32])));
    w.put("snapshot", "with-parent", &codec::encode(&snap));
    let mut first = sample_snapshot(BlobId([4; 32]), None);
    first.tags.clear();
    first.skipped.clear();
    w.put("snapshot", "no-parent", &codec::encode(&first));

    let header = sample_pack_header();
    w.put("pack_header", "two-blobs", &codec::encode(&header));
    w.put(
        "pack_header",
        "empty",
        &codec::encode(&PackHeader {
            version: 1,
            blobs: Vec::new(),
        }),
    );
    // A whole pack, so that `locate` finds its trailer.
    let mut pack = Vec::new();
    let data_plain = vec![b'x'; 1000];
    let data_id = keys.blob_id(&data_plain);
    pack.extend_from_slice(&seal_blob(
        &keys,
        BlobKind::Data,
        &data_id,
        &data_plain,
        Some(3),
    ));
    let pack_header = PackHeader {
        version: 1,
        blobs: vec![PackEntry {
            kind: BlobKind::Data,
            id: data_id,
            offset: 0,
            length: pack.len() as u32,
            raw_length: data_plain.len() as u32,
        }],
    };
    let header_start = pack.len() as u64;
    pack_header.append_to(&mut pack, &keys);
    w.put("pack_header", "whole-pack", &pack);

    w.put("index", "two-packs", &codec::encode(&sample_index()));
    w.put(
        "index",
        "empty",
        &codec::encode(&IndexFile {
            version: 1,
            packs: Vec::new(),
        }),
    );

    let (record, mark) = (sample_lock(), sample_mark());
    w.put("lock", "record", &codec::encode(&record));
    w.put("lock", "mark", &codec::encode(&mark));

    let config = Config::with_defaults(RepoId([0x11; 32]));
    w.put("config", "defaults", &codec::encode(&config));
    let mut plain_config = config.clone();
    plain_config.compression.algorithm = COMPRESSION_NONE;
    plain_config.chunker.min_size = 64;
    plain_config.chunker.avg_size = 256;
    plain_config.chunker.max_size = 1024;
    w.put("config", "no-compression", &codec::encode(&plain_config));

    // Key files: one that opens with the target's password under tiny costs,
    // one whose header asks for real costs (only the header is read).
    let cheap = KdfParams {
        algorithm: KDF_ARGON2ID,
        memory_kib: KEY_MAX_MEMORY_KIB,
        iterations: KEY_MAX_ITERATIONS,
        parallelism: 1,
        salt: [0x55; 32],
    };
    let info = KeyInfo {
        created: ts(1_700_000_000, 1),
        hostname: "host".into(),
        username: "alice".into(),
    };
    let key_file =
        seal_key_file(&keys, KEY_PASSWORD, cheap, &info).expect("cheap KDF parameters are valid");
    w.put("key_file", "cheap-kdf", &key_file);
    let dear = codec::encode(&KeyHeader {
        version: 1,
        kdf: KdfParams {
            algorithm: KDF_ARGON2ID,
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
            salt: [0x66; 32],
        },
    });
    let mut dear_file = KEY_MAGIC.to_vec();
    dear_file.extend_from_slice(&(dear.len() as u32).to_le_bytes());
    dear_file.extend_from_slice(&dear);
    dear_file.extend_from_slice(&[0xAB; 200]);
    w.put("key_file", "default-kdf-header", &dear_file);

    // Compression frames.
    w.put("frame", "raw", &frame::encode(b"hello, cairn", None));
    w.put(
        "frame",
        "zstd-zeros",
        &frame::encode(&vec![0u8; 10_000], Some(3)),
    );
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog. ".repeat(40);
    w.put("frame", "zstd-text", &frame::encode(&text, Some(3)));

    // Valid envelopes under the fixed keys, one per opener of the `sealed` target.
    let zero = BlobId([0; 32]);
    let tree_plain = tree.encode();
    let tree_id = keys.blob_id(&tree_plain);
    w.put(
        "sealed",
        "data-blob",
        &SealedInput::build(
            data_plain.len() as u64,
            &data_id,
            &seal_blob(&keys, BlobKind::Data, &data_id, &data_plain, Some(3)),
        ),
    );
    w.put(
        "sealed",
        "tree-blob",
        &SealedInput::build(
            tree_plain.len() as u64,
            &tree_id,
            &seal_blob(&keys, BlobKind::Tree, &tree_id, &tree_plain, None),
        ),
    );
    let sealed_header = keys.seal(
        ObjectType::PackHeader,
        None,
        &codec::encode(&pack_header),
        Some(3),
    );
    w.put(
        "sealed",
        "pack-header",
        &SealedInput::build(header_start, &zero, &sealed_header),
    );
    w.put(
        "sealed",
        "index",
        &SealedInput::build(0, &zero, &sample_index().seal(&keys)),
    );
    w.put(
        "sealed",
        "snapshot",
        &SealedInput::build(0, &zero, &snap.seal(&keys)),
    );
    w.put(
        "sealed",
        "lock",
        &SealedInput::build(0, &zero, &record.seal(&keys)),
    );
    w.put(
        "sealed",
        "mark",
        &SealedInput::build(0, &zero, &mark.seal(&keys)),
    );
    let mut own_config = Config::with_defaults(keys.repo_id);
    own_config.pack_size = 4 * 1024 * 1024;
    w.put(
        "sealed",
        "config",
        &SealedInput::build(0, &zero, &own_config.seal(&keys)),
    );
    w.put(
        "sealed",
        "key-file-type",
        &SealedInput::build(
            0,
            &zero,
            &keys.seal(ObjectType::KeyFile, None, b"opaque", None),
        ),
    );

    self_check(&w.root, &keys);
    println!("wrote {} seed files under {}", w.count, w.root.display());
}

/// Reads the seeds back through the openers the targets call, so that a format
/// change that silently invalidates them (and so the targets' success paths)
/// is noticed here rather than as lost coverage.
fn self_check(root: &Path, keys: &MasterKeys) {
    let read = |target: &str, name: &str| {
        let path = root.join(target).join(format!("seed-{name}"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    };
    for (target, name) in [("tree", "four-nodes"), ("tree", "empty")] {
        codec::decode::<Tree>(&read(target, name)).expect("tree seed decodes");
    }
    for name in ["with-parent", "no-parent"] {
        codec::decode::<Snapshot>(&read("snapshot", name)).expect("snapshot seed decodes");
    }
    for name in ["two-blobs", "empty"] {
        codec::decode::<PackHeader>(&read("pack_header", name)).expect("pack header seed decodes");
    }
    let pack = read("pack_header", "whole-pack");
    let (start, len) =
        PackHeader::locate(&pack[pack.len() - 8..], pack.len() as u64).expect("trailer");
    let sealed_header = &pack[start as usize..start as usize + len as usize];
    PackHeader::open(sealed_header, start, keys).expect("whole-pack seed's header opens");
    for name in ["two-packs", "empty"] {
        codec::decode::<IndexFile>(&read("index", name)).expect("index seed decodes");
    }
    codec::decode::<LockRecord>(&read("lock", "record")).expect("lock record seed decodes");
    codec::decode::<PruneMark>(&read("lock", "mark")).expect("prune mark seed decodes");
    for name in ["defaults", "no-compression"] {
        codec::decode::<Config>(&read("config", name)).expect("config seed decodes");
    }
    open_key_file(&read("key_file", "cheap-kdf"), KEY_PASSWORD).expect("key file seed opens");
    for name in ["raw", "zstd-zeros", "zstd-text"] {
        frame::decode(&read("frame", name), cairn_fuzz::FRAME_LIMIT, "seed")
            .expect("frame seed decodes");
    }
    let sealed = |name: &str| read("sealed", name);
    for (name, kind) in [("data-blob", BlobKind::Data), ("tree-blob", BlobKind::Tree)] {
        let bytes = sealed(name);
        let input = SealedInput::parse(&bytes);
        open_blob(keys, kind, &input.blob_id, input.envelope, input.n as u32)
            .expect("blob seed opens");
    }
    let bytes = sealed("pack-header");
    let input = SealedInput::parse(&bytes);
    PackHeader::open(input.envelope, input.n, keys).expect("pack header seed opens");
    let bytes = sealed("index");
    IndexFile::open(SealedInput::parse(&bytes).envelope, keys).expect("index seed opens");
    let bytes = sealed("snapshot");
    Snapshot::open(SealedInput::parse(&bytes).envelope, keys).expect("snapshot seed opens");
    let bytes = sealed("lock");
    LockRecord::open(SealedInput::parse(&bytes).envelope, keys).expect("lock seed opens");
    let bytes = sealed("mark");
    PruneMark::open(SealedInput::parse(&bytes).envelope, keys).expect("mark seed opens");
    let bytes = sealed("config");
    Config::open(SealedInput::parse(&bytes).envelope, keys).expect("config seed opens");
    let bytes = sealed("key-file-type");
    keys.open(
        ObjectType::KeyFile,
        None,
        SealedInput::parse(&bytes).envelope,
        cairn_fuzz::OPEN_LIMIT,
    )
    .expect("key-file-type seed opens");
}
