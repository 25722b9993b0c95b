//! The in-memory index at scale: 10 million synthetic blobs (`--blobs N` to
//! change), in index files of 50,000 blobs in packs of 40.
//!
//! Prints the time to decrypt and decode the sealed index files (in parallel,
//! as `Repository::open` does), the time to build the index from them, the
//! index's bytes per blob, and the growth of the process's resident memory.
//! A plain program, not a Criterion bench: one run takes tens of seconds.
//!
//! ```sh
//! cargo bench -p cairn-benches --bench index_scale
//! cargo bench -p cairn-benches --bench index_scale -- --blobs 1000000
//! ```

use cairn_benches::{id_bytes, number_arg, rss_bytes};
use cairn_engine::index::IndexLoader;
use cairn_format::crypto::MasterKeys;
use cairn_format::index::{IndexFile, IndexPack};
use cairn_format::pack::PackEntry;
use cairn_format::{BlobId, BlobKind, PackId};
use rayon::prelude::*;
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

fn main() {
    let blobs = number_arg("--blobs", 10_000_000);
    let keys = MasterKeys::generate();
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
}
