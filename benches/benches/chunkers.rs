//! Keyed FastCDC against buzhash-AES (SPEC §7.4), and what padding costs
//! (SPEC §5.1): a table for benches/RESULTS.md.
//!
//! * speed: boundary search over 256 MiB of random bytes, best of 5;
//! * deduplication: 64 MiB of random bytes and 20 later versions, each with
//!   10 edits (an insertion, a deletion or an overwrite of 1 to 4 KiB at a
//!   random place), every version chunked; the bytes of all versions over
//!   the bytes of distinct chunks, for five chunker secrets;
//! * a first backup of a tree (`--tree DIR`, default the Rust toolchain in
//!   ~/.rustup) into a new repository with each chunker and padding, after
//!   one backup that is not reported (it fills the page cache): time and
//!   repository bytes.
//!
//! `cargo bench -p cairn-benches --bench chunkers [-- --tree DIR]`

use cairn_benches::{random_bytes, scratch_dir, Xorshift, MIB};
use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::chunker::Chunker;
use cairn_engine::{InitOptions, Repository};
use cairn_format::config::{ChunkerParams, Config, CHUNKER_BUZHASH_AES, CHUNKER_FASTCDC2020_KEYED};
use cairn_format::crypto::{MasterKeys, Padding};
use cairn_format::key::KdfParams;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

const ALGORITHMS: [(u8, &str); 2] = [
    (CHUNKER_FASTCDC2020_KEYED, "keyed FastCDC"),
    (CHUNKER_BUZHASH_AES, "buzhash-AES"),
];

fn chunker(keys: &MasterKeys, algorithm: u8) -> Chunker {
    let mut params = Config::with_defaults(keys.repo_id).chunker;
    params.algorithm = algorithm;
    Chunker::new(keys, &params)
}

/// Cut points of `data`, as chunk lengths.
fn cuts(c: &Chunker, data: &[u8]) -> Vec<usize> {
    let mut rest = data;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = c.cut(rest);
        out.push(len);
        rest = &rest[len..];
    }
    out
}

fn speed(keys: &MasterKeys) {
    let data = random_bytes(256 * MIB, 1);
    println!("| chunker | boundary search, MiB/s (best of 5) | chunks in 256 MiB |");
    println!("|---|---:|---:|");
    for (algorithm, name) in ALGORITHMS {
        let c = chunker(keys, algorithm);
        let mut best = f64::MAX;
        let mut count = 0;
        for _ in 0..5 {
            let start = Instant::now();
            count = std::hint::black_box(cuts(&c, &data)).len();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!("| {name} | {:.0} | {count} |", 256.0 / best);
    }
}

/// `base` with `edits` random insertions, deletions and overwrites.
fn edited(base: &[u8], edits: usize, rng: &mut Xorshift) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..edits {
        let at = rng.below(out.len() as u64 - 8192) as usize;
        let len = 1024 + rng.below(3073) as usize;
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes);
        match rng.below(3) {
            0 => drop(out.splice(at..at, bytes)),
            1 => drop(out.drain(at..at + len)),
            _ => out[at..at + len].copy_from_slice(&bytes),
        }
    }
    out
}

/// Bytes of the distinct chunks of all `versions`.
fn distinct_bytes(c: &Chunker, versions: &[Vec<u8>]) -> usize {
    let mut seen = HashSet::new();
    let mut stored = 0;
    for v in versions {
        let mut at = 0;
        for len in cuts(c, v) {
            if seen.insert(blake3::hash(&v[at..at + len])) {
                stored += len;
            }
            at += len;
        }
    }
    stored
}

/// Deduplication ratios over five chunker secrets: a single secret's ratio
/// varies by a few percent, for either chunker.
fn dedup() {
    let mut rng = Xorshift::new(9);
    let mut versions = vec![random_bytes(64 * MIB, 2)];
    for _ in 0..20 {
        let next = edited(versions.last().expect("one version"), 10, &mut rng);
        versions.push(next);
    }
    let total: usize = versions.iter().map(Vec::len).sum();
    let keys: Vec<MasterKeys> = (0..5).map(|_| MasterKeys::generate()).collect();
    println!();
    println!(
        "{:.1} MiB in 21 versions; dedup ratio = all versions / distinct chunks, over 5 secrets:",
        total as f64 / MIB as f64
    );
    println!();
    println!("| chunker | mean | lowest | highest |");
    println!("|---|---:|---:|---:|");
    for (algorithm, name) in ALGORITHMS {
        let ratios: Vec<f64> = keys
            .iter()
            .map(|k| total as f64 / distinct_bytes(&chunker(k, algorithm), &versions) as f64)
            .collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let low = ratios.iter().copied().fold(f64::MAX, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        println!("| {name} | {mean:.2} | {low:.2} | {high:.2} |");
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn tree_backups(tree: &Path) {
    let work = scratch_dir(4 * 1024 * MIB as u64).expect("scratch directory");
    println!();
    println!(
        "tree: {} ({:.0} MiB of files)",
        tree.display(),
        dir_bytes(tree) as f64 / MIB as f64
    );
    println!();
    println!("| chunker | padding | first backup, s | repository, MiB | vs. FastCDC unpadded |");
    println!("|---|---|---:|---:|---:|");
    let mut baseline = None;
    // The first run reads the tree into the page cache: not reported.
    let runs = [
        (ALGORITHMS[0], Padding::None, "warm-up"),
        (ALGORITHMS[0], Padding::None, "none"),
        (ALGORITHMS[0], Padding::Metadata, "metadata"),
        (ALGORITHMS[0], Padding::All, "all"),
        (ALGORITHMS[1], Padding::Metadata, "metadata"),
        (ALGORITHMS[1], Padding::All, "all"),
    ];
    for ((algorithm, name), padding, padding_name) in runs {
        let dir = work.path().join("repo");
        let mut params = ChunkerParams::fastcdc(1024 * 1024);
        params.algorithm = algorithm;
        let opts = InitOptions {
            kdf: KdfParams::argon2id(64, 1, 1),
            chunker: Some(params),
            padding: Some(padding),
            ..Default::default()
        };
        let mut repo =
            Repository::init(LocalBackend::new(&dir), b"bench", &opts).expect("init repository");
        let start = Instant::now();
        backup(&mut repo, &[tree.to_path_buf()], &BackupOptions::default()).expect("backup");
        let secs = start.elapsed().as_secs_f64();
        drop(repo);
        let bytes = dir_bytes(&dir);
        std::fs::remove_dir_all(&dir).expect("remove repository");
        if padding_name == "warm-up" {
            continue;
        }
        let base = *baseline.get_or_insert(bytes);
        println!(
            "| {name} | {padding_name} | {secs:.2} | {:.2} | {:+.2}% |",
            bytes as f64 / MIB as f64,
            (bytes as f64 / base as f64 - 1.0) * 100.0
        );
    }
}

fn default_tree() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let toolchains = Path::new(&home).join(".rustup/toolchains");
    std::fs::read_dir(toolchains)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("stable"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tree = args
        .iter()
        .position(|a| a == "--tree")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(default_tree);
    let keys = MasterKeys::generate();
    speed(&keys);
    dedup();
    match tree {
        Some(tree) => tree_backups(&tree),
        None => println!("\nno tree to back up: give --tree DIR"),
    }
}
