//! Each stage of the write and read paths on its own, in memory where possible:
//! chunking, blob naming, compression, sealing, opening, and packing into a
//! repository. Run one group with e.g. `cargo bench -p cairn-benches --bench stages -- compress`.

use cairn_benches::{compressible_text, random_bytes, scratch_dir, MIB};
use cairn_engine::backend::LocalBackend;
use cairn_engine::chunker::Chunker;
use cairn_engine::packer::PackWriter;
use cairn_engine::{InitOptions, Repository};
use cairn_format::config::Config;
use cairn_format::crypto::{MasterKeys, ObjectType};
use cairn_format::key::KdfParams;
use cairn_format::pack::{open_blob, seal_blob};
use cairn_format::{frame, BlobKind, RepoId};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};

/// Fixed secrets, so chunk boundaries (and hence the work done) are the same every run.
fn bench_keys() -> MasterKeys {
    MasterKeys {
        repo_id: RepoId([0x11; 32]),
        data_key: [0x22; 32],
        id_key: [0x33; 32],
        chunker_key: [0x44; 32],
        padding: Default::default(),
        keyring: None,
    }
}

fn chunking(c: &mut Criterion) {
    let keys = bench_keys();
    let params = Config::with_defaults(keys.repo_id).chunker;
    let chunker = Chunker::new(&keys, &params);
    let data = random_bytes(64 * MIB, 1);

    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Bytes(data.len() as u64));
    // What backup does: the streaming iterator, which copies each chunk out.
    g.bench_function("stream_64MiB", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for chunk in chunker.chunks(black_box(&data[..])) {
                n += chunk.expect("reading from memory").len();
            }
            assert_eq!(n, data.len());
        })
    });
    // Boundary search alone, over a slice already in memory.
    g.bench_function("cut_64MiB", |b| {
        b.iter(|| {
            let mut rest = black_box(&data[..]);
            let mut chunks = 0u32;
            while !rest.is_empty() {
                let len = chunker.cut(rest);
                rest = &rest[len..];
                chunks += 1;
            }
            chunks
        })
    });
    g.finish();
}

fn blob_id(c: &mut Criterion) {
    let keys = bench_keys();
    let data = random_bytes(MIB, 2);
    let mut g = c.benchmark_group("blob_id");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("keyed_blake3_1MiB", |b| {
        b.iter(|| keys.blob_id(black_box(&data)))
    });
    g.finish();
}

fn compression(c: &mut Criterion) {
    let inputs = [
        ("text", compressible_text(MIB, 3)),
        ("random", random_bytes(MIB, 4)),
    ];
    let mut g = c.benchmark_group("compress");
    for (name, data) in &inputs {
        g.throughput(Throughput::Bytes(data.len() as u64));
        for level in [1, 3] {
            let framed = frame::encode(data, Some(level));
            eprintln!(
                "compress/{name}/zstd{level}: {} -> {} bytes ({:.2}x)",
                data.len(),
                framed.len(),
                data.len() as f64 / framed.len() as f64
            );
            g.bench_function(format!("{name}/zstd{level}_1MiB"), |b| {
                b.iter(|| frame::encode(black_box(data), Some(level)))
            });
        }
    }
    g.finish();
}

fn sealing(c: &mut Criterion) {
    let keys = bench_keys();
    let data = random_bytes(MIB, 5);
    let id = keys.blob_id(&data);
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(data.len() as u64));
    // Encryption only: level None stores the frame raw.
    g.bench_function("xchacha20poly1305_1MiB", |b| {
        b.iter(|| keys.seal(ObjectType::DataBlob, Some(&id.0), black_box(&data), None))
    });
    g.finish();
}

fn opening(c: &mut Criterion) {
    let keys = bench_keys();
    let raw = random_bytes(MIB, 6);
    let text = compressible_text(MIB, 7);
    let mut g = c.benchmark_group("open");
    // open_blob decrypts, decompresses if needed, and re-hashes to check the ID.
    for (name, data, level) in [("raw", &raw, None), ("text_zstd3", &text, Some(3))] {
        let id = keys.blob_id(data);
        let sealed = seal_blob(&keys, BlobKind::Data, &id, data, level);
        let len = data.len() as u32;
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(format!("{name}_1MiB"), |b| {
            b.iter(|| {
                open_blob(&keys, BlobKind::Data, &id, black_box(&sealed), len).expect("blob opens")
            })
        });
    }
    g.finish();
}

/// Blob contents for the packing bench: `count` distinct 1 MiB blobs.
fn blobs(count: usize, text: bool) -> Vec<Vec<u8>> {
    (0..count as u64)
        .map(|i| {
            if text {
                compressible_text(MIB, 100 + i)
            } else {
                random_bytes(MIB, 200 + i)
            }
        })
        .collect()
}

fn packing(c: &mut Criterion) {
    const BLOBS: usize = 32;
    let opts = InitOptions {
        kdf: KdfParams::argon2id(64, 1, 1),
        ..Default::default()
    };
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes((BLOBS * MIB) as u64));
    for (name, text) in [("random", false), ("text", true)] {
        let data = blobs(BLOBS, text);
        // Hash, seal (with the repository's default zstd level 3) and write
        // 16 MiB packs through the local backend, which fsyncs every file.
        g.bench_function(format!("{name}_32x1MiB"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh repository each time: the writer would otherwise
                    // pile up packs, since the bench never saves an index.
                    let dir = scratch_dir(256 * MIB as u64).expect("scratch directory");
                    let repo =
                        Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts)
                            .expect("init repository");
                    let start = Instant::now();
                    let mut writer = PackWriter::new(&repo);
                    for blob in &data {
                        writer
                            .save(BlobKind::Data, blob.clone())
                            .expect("save blob");
                    }
                    let (packs, stats) = writer.finish().expect("finish packs");
                    total += start.elapsed();
                    assert_eq!(stats.data_blobs, BLOBS as u64);
                    black_box(packs);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = stages;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = chunking, blob_id, compression, sealing, opening, packing
}
criterion_main!(stages);
