//! Every chunk size a repository may have: files of sizes around each of the
//! chunker's and the bundler's thresholds back up, check clean with every
//! byte read, and restore byte-identical. A file the chunker cuts into
//! several chunks below the bundling size was once bundled as its last
//! chunk alone.

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::bundle::SMALL_FILE;
use cairn_engine::restore::restore;
use cairn_engine::{InitOptions, Repository};
use cairn_format::config::{ChunkerParams, MAX_AVG_CHUNK};
use cairn_format::tree::NodeKind;
use cairn_tests::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The sizes worth a file for `params`: one byte either side of each
/// threshold, and the thresholds themselves.
fn sizes(params: &ChunkerParams) -> BTreeSet<u64> {
    let (min, avg, max) = (
        u64::from(params.min_size),
        u64::from(params.avg_size),
        u64::from(params.max_size),
    );
    let mut out = BTreeSet::from([0, 1, 250_000]);
    for t in [min, avg, max, 2 * max, SMALL_FILE] {
        out.extend([t - 1, t, t + 1]);
    }
    out
}

/// A tree with one file of each size (noise, so chunk cuts fall anywhere), a
/// directory of small files that fills several bundles, and one that holds
/// one file of each size below the bundling size, in text that compresses.
fn build(src: &Path, params: &ChunkerParams) {
    let sized = src.join("sized");
    let text = src.join("text");
    let many = src.join("many");
    for dir in [&sized, &text, &many] {
        fs::create_dir_all(dir).unwrap();
    }
    for (i, size) in sizes(params).into_iter().enumerate() {
        write_noise_file(&sized.join(format!("{size:09}.bin")), size, i as u64);
        if size < SMALL_FILE {
            let data = compressible_text(size as usize, i as u64);
            fs::write(text.join(format!("{size:09}.txt")), data).unwrap();
        }
    }
    // About 5 MiB of files near the bundling size, past the largest bundle.
    for i in 0..24u64 {
        let size = SMALL_FILE - 4096 + i * 400;
        write_noise_file(&many.join(format!("{i:02}.bin")), size, 1000 + i);
    }
}

#[test]
fn every_chunk_size_backs_up_checks_and_restores_exactly() {
    let mut avg = 256u32;
    let mut tried = 0;
    while avg <= MAX_AVG_CHUNK {
        let params = ChunkerParams::fastcdc(avg);
        let base = tempfile::tempdir().unwrap();
        let (src, repo_dir, out) = (
            base.path().join("src"),
            base.path().join("repo"),
            base.path().join("out"),
        );
        build(&src, &params);
        let opts = InitOptions {
            chunker: Some(params.clone()),
            ..fast_init()
        };
        let mut repo =
            Repository::init(LocalBackend::new(&repo_dir), PASSWORD.as_bytes(), &opts).unwrap();
        let report = backup(
            &mut repo,
            std::slice::from_ref(&src),
            &BackupOptions::default(),
        )
        .unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);

        // Every bundled file is one chunk of this chunker.
        let mut bundled = 0;
        cairn_engine::browse::walk(&repo, &report.snapshot.tree, b"/", &mut |path, node| {
            if matches!(node.kind, NodeKind::Bundled { .. }) {
                bundled += 1;
                assert!(
                    node.size < SMALL_FILE && node.size <= u64::from(params.max_size),
                    "average {avg}: {} of {} bytes is bundled",
                    String::from_utf8_lossy(path),
                    node.size
                );
            }
        })
        .unwrap();

        let check = check_all(&open_repo(&repo_dir));
        assert!(
            check.is_clean() && check.damaged.is_empty(),
            "average {avg}: {:?} {:?}",
            check.errors,
            check.damaged
        );
        restore(&repo, &report.snapshot, None, &out).unwrap();
        assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
        eprintln!("average chunk {avg} bytes: {bundled} files bundled, restore identical");
        tried += 1;
        avg *= 2;
    }
    assert_eq!(tried, 15, "256 bytes to 4 MiB");
}
