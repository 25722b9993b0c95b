//! Prune at scale: a repository of 10 million synthetic data blobs (`--blobs N`
//! to change), half of them used by one snapshot.
//!
//! The repository is written straight to disk with `cairn-format`: data blobs
//! in packs of 4,000, listed in index files of 12 packs (48,000 blobs); every
//! other pack is used by the snapshot, the rest by nothing, so prune deletes
//! whole packs and repacks none. The snapshot's trees are real (files of
//! 1,000 blobs, 100 files per directory) and stored in real packs. The data
//! packs themselves are not written: prune reads only the packs it repacks.
//! The unused ones exist as empty stand-ins, so that their deletion runs.
//!
//! Prints the blobs indexed, the time and resident-memory growth of
//! `Repository::open`, then the time of `prune`, its peak resident memory
//! above what the open left (`VmHWM`, or `VmRSS` sampled every 10 ms where the
//! peak cannot be reset) and the counts of its report; then checks that the
//! pruned repository opens with only the used blobs and that its snapshot's
//! root tree loads. A plain program, not a Criterion bench: one run takes
//! about half a minute.
//!
//! ```sh
//! cargo bench -p cairn-benches --bench prune_scale
//! cargo bench -p cairn-benches --bench prune_scale -- --blobs 1000000
//! ```

use cairn_benches::{id_bytes, number_arg, rss_bytes, scratch_dir, PeakRss, MIB};
use cairn_engine::backend::LocalBackend;
use cairn_engine::prune::{prune, PruneOptions};
use cairn_engine::Repository;
use cairn_format::config::Config;
use cairn_format::crypto::MasterKeys;
use cairn_format::id::storage_hash;
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::key::{seal_key_file, KdfParams, KeyInfo};
use cairn_format::pack::{seal_blob, PackEntry, PackHeader};
use cairn_format::snapshot::{Snapshot, Summary};
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, BlobKind, PackId, Timestamp};
use rayon::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Data blobs per pack.
const PACK_BLOBS: u64 = 4_000;
/// Stored length of each data blob: packs of about 16 MiB.
const BLOB_LEN: u32 = 4_096;
/// Packs per index file.
const FILE_PACKS: u64 = 12;
/// Data blobs per file node.
const FILE_BLOBS: u64 = 1_000;
/// Data blobs per directory tree (100 files).
const TREE_BLOBS: u64 = 100 * FILE_BLOBS;
/// A tree pack is written once it holds this many bytes.
const PACK_SIZE: usize = 16 * MIB;
const PASSWORD: &[u8] = b"prune-scale";

/// What [`build`] wrote.
struct Shape {
    /// Data packs, of which every other one (from the first) is used.
    data_packs: u64,
    /// Data blobs in the used packs.
    used_blobs: u64,
    /// Tree blobs, the root included.
    trees: u64,
    /// Directories in the root tree.
    dirs: usize,
    /// Index files.
    index_files: u64,
}

fn main() {
    let blobs = number_arg("--blobs", 10_000_000);
    // About 50 bytes of index file per blob and 32 of tree per used blob.
    let scratch = scratch_dir(blobs * 100).expect("a scratch directory");
    let root = scratch.path().join("repo");
    let started = Instant::now();
    let shape = build(&root, blobs);
    let build_time = started.elapsed();

    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut repo = Repository::open(LocalBackend::new(&root), PASSWORD).expect("repository opens");
    let open_time = started.elapsed();
    let rss_open = rss_bytes();
    let indexed = repo.index().len() as u64;
    assert_eq!(indexed, blobs + shape.trees, "every blob is indexed");

    let peak = PeakRss::start();
    let method = peak.method();
    let rss_base = rss_bytes();
    let started = Instant::now();
    let report = prune(&mut repo, &PruneOptions::default()).expect("prune succeeds");
    let prune_time = started.elapsed();
    let prune_peak = peak.finish().saturating_sub(rss_base);
    drop(repo);

    // The pruned repository: only the used blobs, and a snapshot that resolves.
    let repo =
        Repository::open(LocalBackend::new(&root), PASSWORD).expect("pruned repository opens");
    let remaining = repo.index().len() as u64;
    assert_eq!(remaining, shape.used_blobs + shape.trees, "used blobs kept");
    let snapshots = repo.snapshots().expect("snapshots read");
    let root_tree = repo
        .load_tree(&snapshots[0].1.tree)
        .expect("root tree loads");
    assert_eq!(root_tree.nodes.len(), shape.dirs);

    let unused_packs = shape.data_packs / 2;
    println!("blobs indexed:            {indexed}");
    println!(
        "repository:               {} data packs ({unused_packs} unused), {} trees, {} index files, written in {:.1} s",
        shape.data_packs,
        shape.trees,
        shape.index_files,
        build_time.as_secs_f64()
    );
    println!(
        "open:                     {:.2} s, resident growth {:.1} MiB ({:.2} bytes per blob)",
        open_time.as_secs_f64(),
        mib(rss_open.saturating_sub(rss_before)),
        rss_open.saturating_sub(rss_before) as f64 / indexed as f64
    );
    println!(
        "prune:                    {:.2} s",
        prune_time.as_secs_f64()
    );
    println!(
        "prune peak above open:    {:.1} MiB ({:.2} bytes per blob; {method})",
        mib(prune_peak),
        prune_peak as f64 / indexed as f64
    );
    println!(
        "prune report:             {} packs deleted ({} marked unused, {} repacked, {} kept), {} snapshots walked",
        report.packs_deleted,
        report.packs_unused,
        report.packs_repacked,
        report.packs_kept,
        report.snapshots
    );
    println!(
        "after prune:              {remaining} blobs indexed, root tree of {} directories loads",
        root_tree.nodes.len()
    );
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Writes a repository of `blobs` data blobs at `root` and one snapshot that
/// uses the blobs of every other pack.
fn build(root: &Path, blobs: u64) -> Shape {
    // As `init` makes them: key epochs, metadata padded.
    let mut keys = MasterKeys::generate_keyed();
    keys.padding = Config::with_defaults(keys.repo_id).padding();
    for dir in ["keys", "data", "index", "snapshots", "locks", "marks"] {
        fs::create_dir_all(root.join(dir)).expect("create a repository directory");
    }
    let info = KeyInfo {
        role: cairn_format::keyring::Role::Full,
        created: Timestamp::now(),
        hostname: "bench".into(),
        username: "bench".into(),
    };
    let kdf = KdfParams::argon2id(64, 1, 1);
    store(
        root,
        "keys",
        &seal_key_file(&keys, PASSWORD, kdf, &info).expect("key file"),
    );

    // The data packs, in index files; empty stand-ins for the unused packs.
    let data_packs = blobs.div_ceil(PACK_BLOBS);
    let firsts: Vec<u64> = (0..data_packs).step_by(FILE_PACKS as usize).collect();
    firsts.par_iter().for_each(|&first| {
        let packs = (first..(first + FILE_PACKS).min(data_packs))
            .map(|p| data_pack(p, blobs))
            .collect();
        store(root, "index", &IndexFile { version: 1, packs }.seal(&keys));
    });
    for p in (1..data_packs).step_by(2) {
        fs::write(path(root, "data", &pack_id(p).0), b"").expect("write a stand-in pack");
    }

    // Trees of file nodes naming the used blobs, under one root tree.
    let used_blobs = (0..data_packs)
        .step_by(2)
        .map(|p| ((p + 1) * PACK_BLOBS).min(blobs) - p * PACK_BLOBS)
        .sum::<u64>();
    let mut packer = TreePacker::new(root, &keys);
    let mut dirs = Vec::new();
    for (t, start) in (0..used_blobs).step_by(TREE_BLOBS as usize).enumerate() {
        let files = (start..(start + TREE_BLOBS).min(used_blobs))
            .step_by(FILE_BLOBS as usize)
            .map(|first| {
                let content: Vec<BlobId> = (first..(first + FILE_BLOBS).min(used_blobs))
                    .map(used_blob)
                    .collect();
                let size = content.len() as u64 * u64::from(BLOB_LEN);
                node(
                    format!("file-{first:010}"),
                    NodeKind::File { content },
                    size,
                )
            })
            .collect();
        let subtree = packer.save(&Tree::new(files));
        dirs.push(node(format!("dir-{t:05}"), NodeKind::Dir { subtree }, 0));
    }
    let dir_count = dirs.len();
    let root_tree = packer.save(&Tree::new(dirs));
    let packs = packer.finish();
    store(root, "index", &IndexFile { version: 1, packs }.seal(&keys));

    let now = Timestamp::now();
    let snapshot = Snapshot {
        version: 1,
        time: now,
        hostname: "bench".into(),
        username: "bench".into(),
        uid: 0,
        gid: 0,
        paths: vec![b"/bench".to_vec()],
        tags: Vec::new(),
        tree: root_tree,
        parent: None,
        summary: Summary {
            started: now,
            finished: now,
            ..Summary::default()
        },
        skipped: Vec::new(),
        program: "cairn prune_scale bench".into(),
    };
    store(root, "snapshots", &snapshot.seal(&keys));
    // The config last, as `init` does: storage without it is no repository.
    fs::write(
        root.join("config"),
        Config::with_defaults(keys.repo_id).seal(&keys),
    )
    .expect("write the config");
    Shape {
        data_packs,
        used_blobs,
        trees: dir_count as u64 + 1,
        dirs: dir_count,
        index_files: firsts.len() as u64 + 1,
    }
}

/// The synthetic ID of data pack `p`.
fn pack_id(p: u64) -> PackId {
    PackId(id_bytes(u64::MAX - p))
}

/// Data pack `p`: blobs `p * PACK_BLOBS` onwards, back to back.
fn data_pack(p: u64, blobs: u64) -> IndexPack {
    let first = p * PACK_BLOBS;
    IndexPack {
        id: pack_id(p),
        blobs: (first..(first + PACK_BLOBS).min(blobs))
            .map(|n| PackEntry {
                kind: BlobKind::Data,
                id: BlobId(id_bytes(n)),
                offset: (n - first) * u64::from(BLOB_LEN),
                length: BLOB_LEN,
                raw_length: BLOB_LEN,
            })
            .collect(),
    }
}

/// The `u`-th used data blob: used blobs fill the even-numbered packs.
fn used_blob(u: u64) -> BlobId {
    let pack = 2 * (u / PACK_BLOBS);
    BlobId(id_bytes(pack * PACK_BLOBS + u % PACK_BLOBS))
}

/// A directory entry named `name`.
fn node(name: String, kind: NodeKind, size: u64) -> Node {
    let mode = match kind {
        NodeKind::Dir { .. } => 0o755,
        _ => 0o644,
    };
    Node {
        name: name.into_bytes(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        mtime: Timestamp::default(),
        ctime: Timestamp::default(),
        size,
        inode: 0,
        device: 0,
        links: 1,
        xattrs: Vec::new(),
    }
}

/// Where the local backend keeps a file named by `id` in `dir` (packs under
/// `data/<first two hex digits>/`), the directory created if missing.
fn path(root: &Path, dir: &str, id: &[u8; 32]) -> PathBuf {
    let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let dir = match dir {
        "data" => root.join("data").join(&name[..2]),
        other => root.join(other),
    };
    fs::create_dir_all(&dir).expect("create a repository directory");
    dir.join(name)
}

/// Writes `bytes` into `dir`, named by their BLAKE3 hash; returns the hash.
fn store(root: &Path, dir: &str, bytes: &[u8]) -> [u8; 32] {
    let id = storage_hash(bytes);
    fs::write(path(root, dir, &id), bytes).expect("write a repository file");
    id
}

/// Seals tree blobs into pack files of about [`PACK_SIZE`] bytes.
struct TreePacker<'a> {
    root: &'a Path,
    keys: &'a MasterKeys,
    /// The pack being filled, and its entries.
    pack: Vec<u8>,
    blobs: Vec<PackEntry>,
    /// The packs written.
    written: Vec<IndexPack>,
}

impl<'a> TreePacker<'a> {
    fn new(root: &'a Path, keys: &'a MasterKeys) -> Self {
        TreePacker {
            root,
            keys,
            pack: Vec::new(),
            blobs: Vec::new(),
            written: Vec::new(),
        }
    }

    /// Stores `tree` as a blob; returns its ID.
    fn save(&mut self, tree: &Tree) -> BlobId {
        let plain = tree.encode();
        let id = self.keys.blob_id(&plain);
        // Uncompressed: trees of random IDs do not shrink.
        let sealed = seal_blob(self.keys, BlobKind::Tree, &id, &plain, None);
        self.blobs.push(PackEntry {
            kind: BlobKind::Tree,
            id,
            offset: self.pack.len() as u64,
            length: sealed.len() as u32,
            raw_length: plain.len() as u32,
        });
        self.pack.extend_from_slice(&sealed);
        if self.pack.len() >= PACK_SIZE {
            self.flush();
        }
        id
    }

    /// Writes the pack being filled, if it holds anything.
    fn flush(&mut self) {
        if self.blobs.is_empty() {
            return;
        }
        let blobs = std::mem::take(&mut self.blobs);
        PackHeader {
            version: 1,
            blobs: blobs.clone(),
        }
        .append_to(&mut self.pack, self.keys);
        let id = PackId(store(self.root, "data", &self.pack));
        self.pack.clear();
        self.written.push(IndexPack { id, blobs });
    }

    /// Writes the last pack; returns every pack written.
    fn finish(mut self) -> Vec<IndexPack> {
        self.flush();
        self.written
    }
}
