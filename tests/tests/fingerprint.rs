//! What an observer of the storage can tell about a file it knows: whether
//! a backup contains it (SPEC §13.1).
//!
//! In each trial a fresh repository backs up one new file: the planted file
//! F (known to the observer) or another file G of the same length. The
//! observer sees only the storage: the packs' sizes and the header lengths
//! in their clear trailers. It predicts F's stored blob sizes with what it
//! knows of the chunker and guesses "F" when the data packs can be made of
//! exactly those blobs. Against keyed FastCDC it is given the gear table's
//! secret, which the 2025 chunking attacks recover from observed sizes;
//! against buzhash-AES that recovery does not apply (every cut is a PRF
//! output), so it chunks with a secret of its own.

use cairn_engine::backend::LocalBackend;
use cairn_engine::chunker::Chunker;
use cairn_engine::{InitOptions, Repository};
use cairn_format::config::{ChunkerParams, CHUNKER_BUZHASH_AES, CHUNKER_FASTCDC2020_KEYED};
use cairn_format::crypto::{MasterKeys, Padding};
use cairn_format::frame::{padme, PADDED_OVERHEAD};
use cairn_format::keyring::SEALED_OVERHEAD;
use cairn_tests::*;
use std::ffi::OsStr;
use std::path::Path;

const FILE_LEN: usize = 600_000;
const TRIALS: u64 = 30;

/// The sizes of the new packs' blob regions (pack length less its header
/// and trailer), read as an observer of the storage can.
fn data_regions(repo: &Path) -> Vec<u64> {
    walk_files(&repo.join("data"))
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).unwrap();
            let n = bytes.len();
            let header = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
            let region = (n - 8 - header) as u64;
            // Tree packs hold a few hundred bytes here; data packs hold chunks.
            (region > 4096).then_some(region)
        })
        .collect()
}

/// Whether `regions` can be split into groups whose sums are the regions,
/// each of `sizes` used once.
fn made_of(regions: &[u64], sizes: &[u64]) -> bool {
    assert!(
        sizes.len() < 24,
        "{} chunks: too many to try every split",
        sizes.len()
    );
    if regions.iter().sum::<u64>() != sizes.iter().sum::<u64>() {
        return false;
    }
    match regions {
        [] | [_] => true,
        [first, rest @ ..] => (0u64..1 << sizes.len()).any(|mask| {
            let (mut mine, mut others) = (Vec::new(), Vec::new());
            for (i, s) in sizes.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    mine.push(*s)
                } else {
                    others.push(*s)
                }
            }
            mine.iter().sum::<u64>() == *first && made_of(rest, &others)
        }),
    }
}

/// The observer's prediction of the stored sizes of `file`'s blobs.
fn predicted(file: &[u8], chunker: &Chunker, padded: bool) -> Vec<u64> {
    chunker
        .chunks(file)
        .map(|c| {
            // Random bytes are stored raw: codec byte, the chunk, the envelope.
            let bare = (1 + c.unwrap().len() + SEALED_OVERHEAD) as u64;
            if padded {
                padme(bare + PADDED_OVERHEAD as u64)
            } else {
                bare
            }
        })
        .collect()
}

/// How often the observer tells F from G, over `TRIALS` of each; it knows
/// the chunker's secret when `knows_secret` (only FastCDC's can be
/// recovered from sizes).
fn accuracy(algorithm: u8, padding: Padding, knows_secret: bool) -> f64 {
    let mut right = 0;
    for trial in 0..TRIALS {
        let planted = Noise::new(1000 + trial).bytes(FILE_LEN);
        for contains_planted in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let src = tmp.path().join("src");
            std::fs::create_dir(&src).unwrap();
            let content = if contains_planted {
                planted.clone()
            } else {
                Noise::new(5000 + trial).bytes(FILE_LEN)
            };
            std::fs::write(src.join("file"), &content).unwrap();
            let repo_path = tmp.path().join("repo");
            let mut params = ChunkerParams::fastcdc(64 * 1024);
            params.algorithm = algorithm;
            let opts = InitOptions {
                chunker: Some(params.clone()),
                padding: Some(padding),
                ..fast_init()
            };
            let mut repo =
                Repository::init(LocalBackend::new(&repo_path), PASSWORD.as_bytes(), &opts)
                    .unwrap();
            backup_dir(&mut repo, &src);

            let keys = if knows_secret {
                master_keys(&repo_path)
            } else {
                MasterKeys::generate()
            };
            let sizes = predicted(
                &planted,
                &Chunker::new(&keys, &params),
                padding == Padding::All,
            );
            let says_planted = made_of(&data_regions(&repo_path), &sizes);
            right += usize::from(says_planted == contains_planted);
        }
    }
    right as f64 / (2 * TRIALS) as f64
}

#[test]
fn with_the_gear_secret_an_observer_tells_a_planted_file_by_its_blob_sizes() {
    let plain = accuracy(CHUNKER_FASTCDC2020_KEYED, Padding::Metadata, true);
    let padded = accuracy(CHUNKER_FASTCDC2020_KEYED, Padding::All, true);
    eprintln!("keyed FastCDC: right {plain:.2} (metadata padded), {padded:.2} (all padded)");
    assert!(plain >= 0.9, "{plain}");
    assert!(
        padded >= 0.9,
        "padding alone does not hide cut points: {padded}"
    );
    // The control: without the secret the same observer guesses.
    let blind = accuracy(CHUNKER_FASTCDC2020_KEYED, Padding::Metadata, false);
    eprintln!("keyed FastCDC, secret unknown: right {blind:.2}");
    assert!(blind <= 0.6, "{blind}");
}

#[test]
fn with_buzhash_aes_and_padding_an_observer_does_no_better_than_a_coin() {
    let hardened = accuracy(CHUNKER_BUZHASH_AES, Padding::All, false);
    let unpadded = accuracy(CHUNKER_BUZHASH_AES, Padding::Metadata, false);
    eprintln!("buzhash-AES: right {hardened:.2} (all padded), {unpadded:.2} (metadata padded)");
    assert!(hardened <= 0.6, "{hardened}");
    assert!(unpadded <= 0.6, "{unpadded}");
}

#[test]
fn a_hardened_repository_backs_up_restores_and_checks_through_the_binary() {
    let (_tmp, base, _) = cli_fixture();
    let repo = base.join("hardened");
    let init = [
        "init",
        "--kdf-memory-kib",
        "64",
        "--chunker",
        "buzhash-aes",
        "--padding",
        "all",
        "--chunk-size-kib",
        "64",
    ];
    ok_text(&cairn(&repo, &args(&init), &[]));
    let config: serde_json::Value =
        serde_json::from_str(&ok_text(&cairn(&repo, &args(&["cat", "config"]), &[]))).unwrap();
    assert_eq!(config["chunker"]["algorithm"], 2);
    assert_eq!(config["padding"], 2);
    assert_eq!(config["version"], 2);

    let src = base.join("src");
    build_varied_tree(&src);
    write_noise_file(&src.join("big"), 3 << 20, 5);
    ok_text(&cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
    let out = base.join("out");
    ok_text(&cairn(
        &repo,
        &args(&["restore", "latest", "--target", out.to_str().unwrap()]),
        &[],
    ));
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    // Every blob's envelope has a Padmé length.
    let full = open_repo(&repo);
    for name in cairn_engine::backend::Backend::list(
        &cairn_engine::backend::LocalBackend::new(&repo),
        cairn_engine::backend::FileKind::Pack,
    )
    .unwrap()
    {
        let id = cairn_format::PackId::from_hex(&name).unwrap();
        for e in full.read_pack_header(&id).unwrap().0.blobs {
            let len = u64::from(e.length);
            assert_eq!(padme(len), len, "blob {}", e.id);
        }
    }
    // Every object but the config and the key file has a Padmé length: its
    // blobs are padded, and so are its pack headers, index and snapshot.
    for f in walk_files(&repo) {
        let kind = f.parent().unwrap().file_name().unwrap().to_str().unwrap();
        if ["keys", "locks"].contains(&kind) || f.ends_with("config") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        if f.starts_with(repo.join("data")) {
            let n = bytes.len();
            let header = u64::from(u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()));
            assert_eq!(padme(header), header, "{}", f.display());
        } else if kind == "index" {
            // Two envelopes: the tags, then the entries (SPEC §10.1).
            let tags = u64::from(u32::from_le_bytes(bytes[4..8].try_into().unwrap()));
            let entries = bytes.len() as u64 - 8 - tags;
            assert_eq!(
                (padme(tags), padme(entries)),
                (tags, entries),
                "{}",
                f.display()
            );
        } else {
            let len = bytes.len() as u64;
            assert_eq!(padme(len), len, "{} is {len} bytes", f.display());
        }
    }
}
