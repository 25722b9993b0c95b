//! The fuzz targets, their seeds and the constants both share.
//!
//! Every target is a plain function here (`tree`, `snapshot`, ...; the whole
//! list is [`TARGETS`]). The cargo-fuzz binaries in `fuzz_targets/` only wrap
//! them in `fuzz_target!`, `make_seeds` writes [`seeds`] to disk, and the
//! stable smoke fuzzer in the main workspace (`repo-format/tests/fuzz_smoke.rs`)
//! includes this file as a module and drives the same functions from the same
//! seeds. This file may therefore use only `std` and `cairn_format`.

use cairn_format::audit::AuditRecord;
use cairn_format::codec;
use cairn_format::config::{Config, COMPRESSION_NONE};
use cairn_format::crypto::{MasterKeys, ObjectType};
use cairn_format::frame;
use cairn_format::id::{AuditId, BlobId, IndexId, MarkId, PackId, RepoId, SnapshotId, ID_LEN};
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::journal::{CheckResult, Event, Failure, JournalEntry};
use cairn_format::key::{
    open_key_file, read_key_header, seal_key_file, KdfParams, KeyHeader, KeyInfo, KDF_ARGON2ID,
    KEY_MAGIC,
};
use cairn_format::lock::{LockRecord, Operation, PruneMark, SessionState};
use cairn_format::pack::{open_blob, seal_blob, BlobKind, PackEntry, PackHeader, TRAILER_LEN};
use cairn_format::snapshot::{SkippedEntry, Snapshot, Summary};
use cairn_format::tree::{Node, NodeKind, Tree, Xattr};
use cairn_format::wal::{self, WalHeader, WalName};
use cairn_format::Timestamp;
use std::sync::OnceLock;

/// Output limit passed to `frame::decode` by the `frame` target (1 MiB).
pub const FRAME_LIMIT: usize = 1 << 20;

/// Output limit passed to `MasterKeys::open` by the `sealed` target (1 MiB).
pub const OPEN_LIMIT: usize = 1 << 20;

/// Password the `key_file` target tries on key files with tiny KDF costs.
pub const KEY_PASSWORD: &[u8] = b"cairn-fuzz-password";

/// Largest Argon2 memory cost (KiB) for which `key_file` runs the KDF.
pub const KEY_MAX_MEMORY_KIB: u32 = 64;

/// Largest Argon2 pass count for which `key_file` runs the KDF.
pub const KEY_MAX_ITERATIONS: u32 = 1;

/// The fixed master keys of the `sealed` target, built from constant bytes.
pub fn fixed_keys() -> MasterKeys {
    MasterKeys {
        repo_id: RepoId([0x11; ID_LEN]),
        data_key: [0x22; 32],
        id_key: [0x33; 32],
        chunker_key: [0x44; 32],
        padding: Default::default(),
        keyring: None,
    }
}

/// Length of the parameter prefix of a `sealed` input.
pub const SEALED_PREFIX_LEN: usize = 8 + ID_LEN;

/// A `sealed` input split into its parts.
///
/// Layout: `n u64 LE (8) || blob id (32) || envelope`. `n` is the pack
/// header's start for `PackHeader::open` and (truncated to u32) the raw length
/// for `open_blob`; the blob ID binds `DataBlob`/`TreeBlob` envelopes. Inputs
/// shorter than the prefix are used whole as the envelope, with `n = 0` and a
/// zero blob ID.
pub struct SealedInput<'a> {
    /// Header start / raw length.
    pub n: u64,
    /// Blob ID for blob envelopes.
    pub blob_id: BlobId,
    /// The bytes handed to every `open`.
    pub envelope: &'a [u8],
}

impl<'a> SealedInput<'a> {
    /// Splits `data` as described on [`SealedInput`].
    pub fn parse(data: &'a [u8]) -> Self {
        if data.len() < SEALED_PREFIX_LEN {
            return SealedInput {
                n: 0,
                blob_id: BlobId([0; ID_LEN]),
                envelope: data,
            };
        }
        let (prefix, envelope) = data.split_at(SEALED_PREFIX_LEN);
        let n = u64::from_le_bytes(prefix[..8].try_into().expect("8 bytes"));
        let blob_id = BlobId(prefix[8..].try_into().expect("32 bytes"));
        SealedInput {
            n,
            blob_id,
            envelope,
        }
    }

    /// The inverse of [`SealedInput::parse`], for the seed generator.
    pub fn build(n: u64, blob_id: &BlobId, envelope: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEALED_PREFIX_LEN + envelope.len());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&blob_id.0);
        out.extend_from_slice(envelope);
        out
    }
}

// ---------------------------------------------------------------------------
// Targets. For any input each must return: a panic, an abort, a timeout or
// running out of memory is a bug in `cairn-format`. None looks at what a call
// returns.
// ---------------------------------------------------------------------------

/// A fuzz target: runs decoders on `data` and ignores what they return.
pub type Target = fn(&[u8]);

/// Every target by name, in the order the smoke fuzzer runs them. The names
/// are those of the cargo-fuzz binaries in `fuzz_targets/` and of the
/// directories under `corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("tree", tree),
    ("snapshot", snapshot),
    ("pack_header", pack_header),
    ("index", index),
    ("config", config),
    ("key_file", key_file),
    ("frame", frame),
    ("lock", lock),
    ("journal", journal),
    ("audit", audit),
    ("wal", wal_file),
    ("sealed", sealed),
];

/// `codec::decode::<Tree>` on raw bytes (the plaintext of a tree blob).
pub fn tree(data: &[u8]) {
    let _ = codec::decode::<Tree>(data);
}

/// `codec::decode::<Snapshot>` on raw bytes (the plaintext of a snapshot file).
pub fn snapshot(data: &[u8]) {
    let _ = codec::decode::<Snapshot>(data);
}

/// `codec::decode::<PackHeader>` on raw bytes, and `PackHeader::locate` on the
/// last 8 bytes as if the input were a whole pack.
pub fn pack_header(data: &[u8]) {
    let _ = codec::decode::<PackHeader>(data);
    let trailer = &data[data.len().saturating_sub(TRAILER_LEN)..];
    let _ = PackHeader::locate(trailer, data.len() as u64);
}

/// `codec::decode::<IndexFile>` on raw bytes (the plaintext of an index file).
pub fn index(data: &[u8]) {
    let _ = codec::decode::<IndexFile>(data);
}

/// `codec::decode::<Config>` on raw bytes (the plaintext of the config file),
/// which includes `Config::validate`.
pub fn config(data: &[u8]) {
    let _ = codec::decode::<Config>(data);
}

/// `read_key_header` on a whole key file, then `open_key_file` with a fixed
/// password, but only when the header asks for a tiny Argon2 cost: anything
/// dearer would make the fuzzer spend its time in the KDF.
pub fn key_file(data: &[u8]) {
    let Ok((header, _body_start)) = read_key_header(data) else {
        return;
    };
    let kdf = &header.kdf;
    if kdf.memory_kib <= KEY_MAX_MEMORY_KIB && kdf.iterations <= KEY_MAX_ITERATIONS {
        let _ = open_key_file(data, KEY_PASSWORD);
    }
}

/// `frame::decode` (codec byte + raw or zstd payload) with a 1 MiB limit.
pub fn frame(data: &[u8]) {
    let _ = frame::decode(data, FRAME_LIMIT, "fuzz frame");
}

/// `codec::decode` of a lock record and of a prune mark on raw bytes (the
/// plaintexts of files in `locks/` and `marks/`).
pub fn lock(data: &[u8]) {
    let _ = codec::decode::<LockRecord>(data);
    let _ = codec::decode::<PruneMark>(data);
}

/// `codec::decode::<JournalEntry>` on raw bytes (the plaintext of a file in
/// `journal/`), which includes its validation.
pub fn journal(data: &[u8]) {
    let _ = codec::decode::<JournalEntry>(data);
}

/// `codec::decode::<AuditRecord>` on raw bytes (the plaintext of a file in
/// `audit/`), which includes its validation.
pub fn audit(data: &[u8]) {
    let _ = codec::decode::<AuditRecord>(data);
}

/// `codec::decode_prefix::<WalHeader>` on raw bytes (the plaintext of a
/// file in `wal/`), which includes its validation, and the parsers of WAL
/// file names, archive names and LSNs on the same bytes as text.
pub fn wal_file(data: &[u8]) {
    let _ = codec::decode_prefix::<WalHeader>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = WalName::parse(text).map(|n| n.position());
        let _ = wal::split_storage_name(text);
        let _ = wal::parse_lsn(text);
    }
}

/// Every object type, in the order the `sealed` target tries them.
const ALL_TYPES: [ObjectType; 12] = [
    ObjectType::DataBlob,
    ObjectType::TreeBlob,
    ObjectType::PackHeader,
    ObjectType::Index,
    ObjectType::Snapshot,
    ObjectType::Config,
    ObjectType::KeyFile,
    ObjectType::Lock,
    ObjectType::PruneMark,
    ObjectType::JournalEntry,
    ObjectType::Audit,
    ObjectType::Wal,
];

/// Every authenticated opener under one fixed `MasterKeys` ([`fixed_keys`]):
/// `MasterKeys::open` for each object type, `open_blob` for both blob kinds,
/// `Config::open`, `Snapshot::open`, `IndexFile::open`, `PackHeader::open`,
/// `LockRecord::open`, `PruneMark::open`, `JournalEntry::open`,
/// `AuditRecord::open` and `WalHeader::open`. Garbage must be rejected
/// (normally as an authentication failure) without a panic.
///
/// Input layout: see [`SealedInput`] (a 40-byte parameter prefix, then the
/// envelope).
pub fn sealed(data: &[u8]) {
    static KEYS: OnceLock<MasterKeys> = OnceLock::new();
    let keys = KEYS.get_or_init(fixed_keys);
    let input = SealedInput::parse(data);
    let env = input.envelope;
    let id = input.blob_id;

    for ty in ALL_TYPES {
        let binding = matches!(ty, ObjectType::DataBlob | ObjectType::TreeBlob).then_some(&id.0);
        let _ = keys.open(ty, binding, env, OPEN_LIMIT);
    }
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let _ = open_blob(keys, kind, &id, env, input.n as u32);
    }
    let _ = Config::open(env, keys);
    let _ = Snapshot::open(env, keys);
    let _ = IndexFile::open(env, keys);
    let _ = PackHeader::open(env, input.n, keys);
    let _ = LockRecord::open(env, keys);
    let _ = PruneMark::open(env, keys);
    let _ = JournalEntry::open(env, keys);
    let _ = AuditRecord::open(env, keys);
    let _ = WalHeader::open(env, keys);
}

// ---------------------------------------------------------------------------
// Seeds: valid encodings as starting points, so that the fuzzers reach deep
// paths sooner (a key file that really opens with the fuzz password, a pack
// whose trailer `locate` accepts, envelopes that open under the fixed keys).
// ---------------------------------------------------------------------------

/// A seed input: `(target, name, bytes)`. `make_seeds` writes it to
/// `corpus/<target>/seed-<name>`.
pub type Seed = (&'static str, &'static str, Vec<u8>);

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

fn sample_wal() -> WalHeader {
    WalHeader {
        version: 1,
        cluster: "main".into(),
        name: "000000010000000000000002".into(),
        archived: ts(1_800_000_000, 7),
    }
}

fn sample_journal() -> [JournalEntry; 2] {
    let entry = |event| JournalEntry {
        version: 1,
        time: ts(1_700_000_900, 3),
        hostname: "host".into(),
        username: "user".into(),
        event,
    };
    [
        entry(Event::Failure(Failure {
            source: "db".into(),
            repository: "offsite".into(),
            step: "backup".into(),
            message: "pg_dump failed".into(),
        })),
        entry(Event::Check(CheckResult {
            subset: "2/7".into(),
            group: 2,
            groups: 7,
            packs: 70,
            packs_read: 10,
            bytes_read: 1 << 20,
            duration_nanos: 5_000,
            problems: 1,
            first_problems: vec!["pack 00 is missing".into()],
        })),
    ]
}

fn sample_audit() -> AuditRecord {
    AuditRecord {
        version: 1,
        time: ts(1_700_001_000, 0),
        hostname: "host".into(),
        username: "user".into(),
        command: "forget".into(),
        snapshots: vec![SnapshotId([8; 32]), SnapshotId([9; 32])],
        outcome: "ok".into(),
        previous: vec![AuditId([10; 32])],
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

/// Every seed of every target, built from sample values (envelopes under
/// [`fixed_keys`]). Envelopes carry random nonces, so the bytes of the `sealed`
/// and `key_file` seeds differ from call to call; the others do not.
pub fn seeds() -> Vec<Seed> {
    let mut out: Vec<Seed> = Vec::new();
    let mut put = |target: &'static str, name: &'static str, bytes: Vec<u8>| {
        out.push((target, name, bytes));
    };
    let keys: MasterKeys = fixed_keys();

    // Plain encodings for the codec targets.
    let tree = sample_tree();
    put("tree", "four-nodes", codec::encode(&tree));
    put("tree", "empty", codec::encode(&Tree::new(Vec::new())));

    let snap = sample_snapshot(BlobId([3; 32]), Some(SnapshotId([9; 32])));
    put("snapshot", "with-parent", codec::encode(&snap));
    let mut first = sample_snapshot(BlobId([4; 32]), None);
    first.tags.clear();
    first.skipped.clear();
    put("snapshot", "no-parent", codec::encode(&first));

    let header = sample_pack_header();
    put("pack_header", "two-blobs", codec::encode(&header));
    put(
        "pack_header",
        "empty",
        codec::encode(&PackHeader {
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
    put("pack_header", "whole-pack", pack);

    put("index", "two-packs", codec::encode(&sample_index()));
    put(
        "index",
        "empty",
        codec::encode(&IndexFile {
            version: 1,
            packs: Vec::new(),
        }),
    );

    let (record, mark) = (sample_lock(), sample_mark());
    put("lock", "record", codec::encode(&record));
    put("lock", "mark", codec::encode(&mark));
    let [failure, check] = sample_journal();
    put("journal", "failure", codec::encode(&failure));
    put("journal", "check", codec::encode(&check));
    let audit = sample_audit();
    put("audit", "forget", codec::encode(&audit));
    let wal_header = sample_wal();
    let mut wal_plain = codec::encode(&wal_header);
    wal_plain.extend_from_slice(b"\x10\xd1\x07\x00 some WAL bytes");
    put("wal", "segment", wal_plain);
    put(
        "wal",
        "backup-name",
        b"000000010000000000000002.00000028.backup".to_vec(),
    );

    let config = Config::with_defaults(RepoId([0x11; 32]));
    put("config", "defaults", codec::encode(&config));
    let mut plain_config = config.clone();
    plain_config.compression.algorithm = COMPRESSION_NONE;
    plain_config.chunker.min_size = 64;
    plain_config.chunker.avg_size = 256;
    plain_config.chunker.max_size = 1024;
    put("config", "no-compression", codec::encode(&plain_config));

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
        role: cairn_format::keyring::Role::Full,
        created: ts(1_700_000_000, 1),
        hostname: "host".into(),
        username: "alice".into(),
    };
    let key_file = seal_key_file(&keys, KEY_PASSWORD, cheap.clone(), &info)
        .expect("cheap KDF parameters are valid");
    put("key_file", "cheap-kdf", key_file);
    let keyed = MasterKeys::generate_keyed();
    let keyed_file = seal_key_file(&keyed, KEY_PASSWORD, cheap.clone(), &info)
        .expect("cheap KDF parameters are valid");
    put("key_file", "cheap-kdf-epochs", keyed_file);
    let dear = codec::encode(&KeyHeader {
        version: 2,
        role: cairn_format::keyring::Role::Full,
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
    put("key_file", "default-kdf-header", dear_file);

    // Compression frames.
    put("frame", "raw", frame::encode(b"hello, cairn", None));
    put(
        "frame",
        "zstd-zeros",
        frame::encode(&vec![0u8; 10_000], Some(3)),
    );
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog. ".repeat(40);
    put("frame", "zstd-text", frame::encode(&text, Some(3)));
    put(
        "frame",
        "padded-zstd",
        frame::pad(frame::encode(&text, Some(3)), 77),
    );

    // Valid envelopes under the fixed keys, one per opener of the `sealed` target.
    let zero = BlobId([0; 32]);
    let tree_plain = tree.encode();
    let tree_id = keys.blob_id(&tree_plain);
    put(
        "sealed",
        "data-blob",
        SealedInput::build(
            data_plain.len() as u64,
            &data_id,
            &seal_blob(&keys, BlobKind::Data, &data_id, &data_plain, Some(3)),
        ),
    );
    put(
        "sealed",
        "tree-blob",
        SealedInput::build(
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
    put(
        "sealed",
        "pack-header",
        SealedInput::build(header_start, &zero, &sealed_header),
    );
    put(
        "sealed",
        "index",
        SealedInput::build(0, &zero, &sample_index().seal(&keys)),
    );
    put(
        "sealed",
        "snapshot",
        SealedInput::build(0, &zero, &snap.seal(&keys)),
    );
    put(
        "sealed",
        "lock",
        SealedInput::build(0, &zero, &record.seal(&keys)),
    );
    put(
        "sealed",
        "mark",
        SealedInput::build(0, &zero, &mark.seal(&keys)),
    );
    put(
        "sealed",
        "journal",
        SealedInput::build(0, &zero, &failure.seal(&keys)),
    );
    put(
        "sealed",
        "audit",
        SealedInput::build(0, &zero, &audit.seal(&keys)),
    );
    put(
        "sealed",
        "wal",
        SealedInput::build(
            0,
            &zero,
            &wal_header
                .seal_from(&b"WAL"[..], 3, &keys, Some(3))
                .expect("sealed in memory"),
        ),
    );
    // The fixed keys are those of a repository without key epochs: its
    // config is of version 1.
    let mut own_config = Config::with_defaults(keys.repo_id);
    own_config.pack_size = 4 * 1024 * 1024;
    own_config.version = 1;
    own_config.padding = 0;
    own_config.epoch = None;
    put(
        "sealed",
        "config",
        SealedInput::build(0, &zero, &own_config.seal(&keys)),
    );
    put(
        "sealed",
        "key-file-type",
        SealedInput::build(
            0,
            &zero,
            &keys.seal(ObjectType::KeyFile, None, b"opaque", None),
        ),
    );
    out
}

/// Runs `seeds` (as built by [`seeds`], or read back from disk) through the
/// decoders and openers the targets call and panics if one is rejected or
/// missing, so that a format change that silently invalidates them (and so
/// the targets' success paths) is noticed rather than lost as coverage.
pub fn check_seeds(seeds: &[(&str, &str, Vec<u8>)]) {
    let keys = &fixed_keys();
    let read = |target: &str, name: &str| -> &[u8] {
        seeds
            .iter()
            .find(|(t, n, _)| *t == target && *n == name)
            .map(|(_, _, bytes)| bytes.as_slice())
            .unwrap_or_else(|| panic!("no seed {target}/seed-{name}"))
    };
    for (target, name) in [("tree", "four-nodes"), ("tree", "empty")] {
        codec::decode::<Tree>(read(target, name)).expect("tree seed decodes");
    }
    for name in ["with-parent", "no-parent"] {
        codec::decode::<Snapshot>(read("snapshot", name)).expect("snapshot seed decodes");
    }
    for name in ["two-blobs", "empty"] {
        codec::decode::<PackHeader>(read("pack_header", name)).expect("pack header seed decodes");
    }
    let pack = read("pack_header", "whole-pack");
    let (start, len) =
        PackHeader::locate(&pack[pack.len() - 8..], pack.len() as u64).expect("trailer");
    let sealed_header = &pack[start as usize..start as usize + len as usize];
    PackHeader::open(sealed_header, start, keys).expect("whole-pack seed's header opens");
    for name in ["two-packs", "empty"] {
        codec::decode::<IndexFile>(read("index", name)).expect("index seed decodes");
    }
    codec::decode::<LockRecord>(read("lock", "record")).expect("lock record seed decodes");
    codec::decode::<PruneMark>(read("lock", "mark")).expect("prune mark seed decodes");
    for name in ["failure", "check"] {
        codec::decode::<JournalEntry>(read("journal", name)).expect("journal seed decodes");
    }
    codec::decode::<AuditRecord>(read("audit", "forget")).expect("audit seed decodes");
    codec::decode_prefix::<WalHeader>(read("wal", "segment")).expect("WAL seed decodes");
    for name in ["defaults", "no-compression"] {
        codec::decode::<Config>(read("config", name)).expect("config seed decodes");
    }
    open_key_file(read("key_file", "cheap-kdf"), KEY_PASSWORD).expect("key file seed opens");
    read_key_header(read("key_file", "default-kdf-header")).expect("key file seed's header reads");
    for name in ["raw", "zstd-zeros", "zstd-text"] {
        frame::decode(read("frame", name), FRAME_LIMIT, "seed").expect("frame seed decodes");
    }
    let sealed = |name: &str| SealedInput::parse(read("sealed", name));
    for (name, kind) in [("data-blob", BlobKind::Data), ("tree-blob", BlobKind::Tree)] {
        let input = sealed(name);
        open_blob(keys, kind, &input.blob_id, input.envelope, input.n as u32)
            .expect("blob seed opens");
    }
    let input = sealed("pack-header");
    PackHeader::open(input.envelope, input.n, keys).expect("pack header seed opens");
    IndexFile::open(sealed("index").envelope, keys).expect("index seed opens");
    Snapshot::open(sealed("snapshot").envelope, keys).expect("snapshot seed opens");
    LockRecord::open(sealed("lock").envelope, keys).expect("lock seed opens");
    PruneMark::open(sealed("mark").envelope, keys).expect("mark seed opens");
    JournalEntry::open(sealed("journal").envelope, keys).expect("journal seed opens");
    AuditRecord::open(sealed("audit").envelope, keys).expect("audit seed opens");
    WalHeader::open(sealed("wal").envelope, keys).expect("WAL seed opens");
    Config::open(sealed("config").envelope, keys).expect("config seed opens");
    keys.open(
        ObjectType::KeyFile,
        None,
        sealed("key-file-type").envelope,
        OPEN_LIMIT,
    )
    .expect("key-file-type seed opens");
}
