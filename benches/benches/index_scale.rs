//! The in-memory index at scale: 10 million synthetic blobs (`--blobs N` to
//! change), in index files of 50,000 blobs in packs of 40.
//!
//! Prints the time to decrypt and decode the sealed index files (in parallel,
//! as `Repository::open` does), the time to build the index from them, the
//! index's bytes per blob, and the growth of the process's resident memory.
//! Then writes those files into a repository on disk (in `/dev/shm` when it
//! has room) and times `Repository::open` with an index table
//! (`use_index_table`): the first open builds the index and writes the
//! table, the next three read it; the time of each, and the growth of
//! resident memory in the first two. A plain program, not a Criterion bench: one run takes
//! about a minute.
//!
//! ```sh
//! cargo bench -p cairn-benches --bench index_scale
//! cargo bench -p cairn-benches --bench index_scale -- --blobs 1000000
//! ```

use cairn_benches::{id_bytes, number_arg, rss_bytes, scratch_dir};
use cairn_engine::backend::LocalBackend;
use cairn_engine::index::IndexLoader;
use cairn_engine::Repository;
use cairn_format::config::Config;
use cairn_format::crypto::MasterKeys;
use cairn_format::id::storage_hash;
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::key::{seal_key_file, KdfParams, KeyInfo};
use cairn_format::pack::PackEntry;
use cairn_format::{BlobId, BlobKind, PackId};
use rayon::prelude::*;
use std::fs;
use std::path::Path;
use std::time::Instant;

const PER_FILE: u64 = 50_000;
const PER_PACK: u64 = 40;

fn index_file(first: u64, blobs: u64) -> IndexFile {
    let packs = (first..first + blobs)
        .step_by(PER_PACK as usize)
        .map(|start| IndexPack {
            id: PackId(id_bytes(u64::MAX - start)),
            blobs: (start..(start + PER_PACK).min(first + blobs))
                .map(|n| PackEntry {
                    kind: if n % 20 == 0 {
                        BlobKind::Tree
                    } else {
                        BlobKind::Data
                    },
                    id: BlobId(id_bytes(n)),
                    offset: (n - start) * 400_000,
                    length: 400_000,
                    raw_length: 1_000_000,
                })
                .collect(),
        })
        .collect();
    IndexFile { version: 1, packs }
}

const PASSWORD: &[u8] = b"index-scale";

/// Writes a repository of `keys` holding the index files `sealed` (and no
/// packs) at `root`, as `init` and backups would have.
fn write_repository(root: &Path, keys: &MasterKeys, sealed: &[Vec<u8>]) {
    let store = |dir: &str, bytes: &[u8]| {
        fs::create_dir_all(root.join(dir)).expect("a repository folder");
        let name: String = storage_hash(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fs::write(root.join(dir).join(name), bytes).expect("a repository file");
    };
    let info = KeyInfo {
        role: cairn_format::keyring::Role::Full,
        created: cairn_format::Timestamp::now(),
        hostname: "bench".into(),
        username: "bench".into(),
    };
    let kdf = KdfParams::argon2id(64, 1, 1);
    store(
        "keys",
        &seal_key_file(keys, PASSWORD, kdf, &info).expect("a key file"),
    );
    sealed.par_iter().for_each(|file| store("index", file));
    for dir in ["data", "snapshots", "locks", "marks"] {
        fs::create_dir_all(root.join(dir)).expect("a repository folder");
    }
    fs::write(
        root.join("config"),
        Config::with_defaults(keys.repo_id).seal(keys),
    )
    .expect("the config");
}

fn main() {
    let blobs = number_arg("--blobs", 10_000_000);
    // As `init` makes them: key epochs, metadata padded.
    let mut keys = MasterKeys::generate_keyed();
    keys.padding = Config::with_defaults(keys.repo_id).padding();
    let files: Vec<u64> = (0..blobs).step_by(PER_FILE as usize).collect();
    let sealed: Vec<Vec<u8>> = files
        .par_iter()
        .map(|&first| index_file(first, PER_FILE.min(blobs - first)).seal(&keys))
        .collect();
    let sealed_bytes: usize = sealed.iter().map(Vec::len).sum();

    // Decoding alone, on every core, to show its share of the open.
    let t = Instant::now();
    let decoded = sealed
        .par_iter()
        .map(|bytes| IndexFile::open(bytes, &keys).map(|f| f.packs.len()))
        .collect::<Result<Vec<_>, _>>()
        .expect("index files open");
    let decode_time = t.elapsed();
    drop(decoded);

    // As Repository::open does.
    let rss_before = rss_bytes();
    let started = Instant::now();
    let index = IndexLoader::load(&sealed, |bytes| IndexFile::open(bytes, &keys))
        .expect("index files open");
    let total = started.elapsed();
    let rss_growth = rss_bytes().saturating_sub(rss_before);

    // Every 1000th blob is found, with its kind.
    for n in (0..blobs).step_by(1000) {
        let kind = if n % 20 == 0 {
            BlobKind::Tree
        } else {
            BlobKind::Data
        };
        assert!(index.contains(kind, &BlobId(id_bytes(n))), "blob {n} lost");
    }
    let lookups = Instant::now();
    let mut found = 0u64;
    for n in 0..1_000_000u64 {
        found += u64::from(index.contains(BlobKind::Data, &BlobId(id_bytes(n * 7 + 1))));
    }
    let lookup_ns = lookups.elapsed().as_nanos() as f64 / 1e6;

    println!("blobs indexed:            {}", index.len());
    println!(
        "sealed index files:       {} files, {:.1} MiB",
        sealed.len(),
        sealed_bytes as f64 / 1048576.0
    );
    println!(
        "decrypt and decode alone: {:.2} s",
        decode_time.as_secs_f64()
    );
    println!("open (decode and build):  {:.2} s", total.as_secs_f64());
    println!(
        "index bytes per blob:     {:.2}",
        index.memory_bytes() as f64 / index.len() as f64
    );
    println!(
        "resident growth per blob: {:.2} bytes",
        rss_growth as f64 / index.len() as f64
    );
    println!("lookup:                   {lookup_ns:.0} ns ({found} of 1,000,000 found)");
    drop(index);

    // Repository::open of the same files, with an index table.
    let scratch = scratch_dir(sealed_bytes as u64 + blobs * 40).expect("a scratch folder");
    let root = scratch.path().join("repo");
    let tables = scratch.path().join("tables");
    write_repository(&root, &keys, &sealed);
    drop(sealed);
    for round in 0..4 {
        let rss_before = rss_bytes();
        let started = Instant::now();
        let repo = Repository::open_hinted(LocalBackend::new(&root), PASSWORD, None, |r| {
            r.use_index_table(&tables)
        })
        .expect("the repository opens");
        let took = started.elapsed();
        let growth = rss_bytes().saturating_sub(rss_before);
        assert_eq!(repo.index().len() as u64, blobs);
        let last = blobs - 1;
        let kind = match last % 20 {
            0 => BlobKind::Tree,
            _ => BlobKind::Data,
        };
        assert!(repo.index().contains(kind, &BlobId(id_bytes(last))));
        // Later rounds reuse the memory the allocator kept from the last.
        let memory = match round {
            0 | 1 => format!(
                ", resident growth {:.2} bytes per blob",
                growth as f64 / blobs as f64
            ),
            _ => String::new(),
        };
        let what = match round {
            0 => "open, building the table",
            _ => "open from the table     ",
        };
        println!("{what}: {:.3} s{memory}", took.as_secs_f64());
    }
}
