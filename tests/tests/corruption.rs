//! Corruption of every file of a repository (config, key file, index files,
//! snapshots, packs): random byte flips, truncation to half, truncation to
//! nothing, and deletion. Every one is detected, by opening the repository or
//! by `check --read-data`, with a message naming the damaged file; nothing
//! wrong is ever restored; files the damage does not touch still restore;
//! damaged packs are traced to the paths they affect. The one exception is a
//! deleted snapshot file, which no reader can tell from a snapshot that was
//! never taken (SPEC.md §13): there the other snapshots must stay whole.
//!
//! The flips are drawn from a seed that is printed; `CAIRN_CORRUPT_SEED=N`
//! repeats a run and `CAIRN_CORRUPT_ROUNDS=N` tries N sets of flips per file
//! instead of one.

use cairn_engine::backend::LocalBackend;
use cairn_engine::restore::restore;
use cairn_engine::{Error, Repository};
use cairn_format::{FormatError, SnapshotId};
use cairn_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

type Content = BTreeMap<PathBuf, [u8; 32]>;

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flips(u64),
    Half,
    Empty,
    Delete,
}

fn damage(file: &Path, how: Damage) {
    match how {
        Damage::Flips(seed) => {
            let mut bytes = fs::read(file).unwrap();
            let mut noise = Noise::new(seed);
            for _ in 0..3 {
                let r = u64::from_le_bytes(noise.bytes(8).try_into().unwrap());
                let at = (r % bytes.len() as u64) as usize;
                bytes[at] ^= 1 << (r >> 61);
            }
            fs::write(file, bytes).unwrap();
        }
        Damage::Half => {
            let len = fs::metadata(file).unwrap().len();
            fs::OpenOptions::new()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        }
        Damage::Empty => fs::write(file, b"").unwrap(),
        Damage::Delete => fs::remove_file(file).unwrap(),
    }
}

#[test]
fn every_damaged_file_is_detected_and_nothing_wrong_is_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    fs::create_dir(&src).unwrap();
    let template = base.join("template");
    let mut repo = init_small_pack_repo(&template);
    let mut snapshots: BTreeMap<SnapshotId, Content> = BTreeMap::new();
    for v in 0..2u64 {
        for i in 0..5u64 {
            fs::write(
                src.join(format!("t{i}.txt")),
                compressible_text(3000, v * 5 + i),
            )
            .unwrap();
        }
        write_noise_file(&src.join("big.bin"), 1_500_000, v);
        write_noise_file(&src.join("same.bin"), 700_000, 42);
        let r = backup_dir(&mut repo, &src);
        snapshots.insert(r.id, relative_fingerprint(&src));
    }
    drop(repo);
    let files: Vec<PathBuf> = walk_files(&template)
        .into_iter()
        .filter(|p| !p.starts_with(template.join("locks")))
        .collect();
    let setting = |name: &str| std::env::var(name).ok().and_then(|n| n.parse().ok());
    let seed: u64 = setting("CAIRN_CORRUPT_SEED").unwrap_or_else(|| u64::from(std::process::id()));
    let rounds: u64 = setting("CAIRN_CORRUPT_ROUNDS").unwrap_or(1);
    eprintln!(
        "corruption: seed {seed} (CAIRN_CORRUPT_SEED to repeat), {rounds} sets of flips per file"
    );
    let work = base.join("work");
    let (mut tried, mut at_open, mut by_check) = (0, 0, 0);
    for (i, file) in files.iter().enumerate() {
        let relative = file.strip_prefix(&template).unwrap();
        let name = relative.file_name().unwrap().to_string_lossy().into_owned();
        let is = |dir: &str| relative.starts_with(dir);
        let flips = (0..rounds).map(|r| Damage::Flips(seed ^ (i as u64) << 32 ^ r));
        for how in flips.chain([Damage::Half, Damage::Empty, Damage::Delete]) {
            copy_repo(&template, &work);
            damage(&work.join(relative), how);
            tried += 1;
            let what = format!("{} {how:?}", relative.display());
            let repo = match Repository::open(LocalBackend::new(&work), PASSWORD.as_bytes()) {
                Err(e) => {
                    // Found on opening, and named (a lost key or config shows
                    // as no key opening, or no repository).
                    let text = e.to_string();
                    let named = text.contains(&name)
                        || (is("keys") && text.contains("wrong password"))
                        || (name == "config" && text.contains("no repository"));
                    assert!(named, "{what}: {text}");
                    at_open += 1;
                    if is("index") {
                        // The index is rebuilt from the packs, and every
                        // snapshot restores whole.
                        assert!(text.contains("repair index"), "{what}: {text}");
                        let keys_only =
                            Repository::open_keys(LocalBackend::new(&work), PASSWORD.as_bytes())
                                .unwrap();
                        cairn_engine::repair::repair_index(&keys_only, false, false).unwrap();
                        let repo = open_repo(&work);
                        for (id, expected) in &snapshots {
                            let out = base.join("out");
                            let _ = fs::remove_dir_all(&out);
                            let r =
                                restore(&repo, &repo.load_snapshot(id).unwrap(), Some(&src), &out)
                                    .unwrap();
                            assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
                            assert_eq!(&relative_fingerprint(&out.join("src")), expected, "{what}");
                        }
                    }
                    continue;
                }
                Ok(repo) => repo,
            };
            let report = check_all(&repo);
            let deleted_snapshot = is("snapshots") && matches!(how, Damage::Delete);
            if deleted_snapshot {
                assert!(report.is_clean(), "{what}: {:?}", report.errors);
            } else {
                assert!(!report.is_clean(), "{what}: not detected");
                let errors = format!("{:?}", report.errors);
                match (is("index"), how) {
                    // A lost index file cannot be named: what it listed is
                    // (the blobs now missing, the packs no index lists).
                    (true, Damage::Delete) => assert!(
                        !report.unused_packs.is_empty(),
                        "{what}: {:?}",
                        report.marked_packs
                    ),
                    _ => assert!(
                        errors.contains(&name),
                        "{what}: the file is not named: {errors}"
                    ),
                }
                by_check += 1;
                // A damaged pack is traced to the paths it affects, unless
                // every flip fell in its header: the index still locates each
                // blob, so the header alone is named and every snapshot must
                // restore whole (asserted below).
                let header_only = !report.errors.is_empty()
                    && report.errors.iter().all(|e| match e {
                        Error::Invalid(text) => text.ends_with("does not match its name (damaged)"),
                        Error::Format { source, .. } => matches!(
                            source,
                            FormatError::Authentication("pack header")
                                | FormatError::Malformed { what: "pack", .. }
                        ),
                        _ => false,
                    });
                if is("data") && !header_only {
                    assert!(
                        !report.damaged.is_empty(),
                        "{what}: no path traced: {errors}"
                    );
                }
            }
            // Every snapshot that can be read restores its intact files
            // exactly and reports the others; nothing wrong is written.
            for (id, expected) in &snapshots {
                let Ok(snapshot) = repo.load_snapshot(id) else {
                    continue;
                };
                let out = base.join("out");
                let _ = fs::remove_dir_all(&out);
                let failed: Vec<PathBuf> = match restore(&repo, &snapshot, Some(&src), &out) {
                    Ok(r) => {
                        // A damaged pack is named by each error it causes.
                        for (path, e) in &r.errors {
                            let text = e.to_string();
                            assert!(
                                !is("data") || text.contains(&name),
                                "{what}: {}: {text}",
                                path.display()
                            );
                        }
                        r.errors.into_iter().map(|(p, _)| p).collect()
                    }
                    Err(_) => vec![out.clone()],
                };
                let restored = out.join("src");
                for (path, hash) in expected {
                    let copy = restored.join(path);
                    match copy.exists() {
                        true => assert_eq!(
                            &hash_file(&copy),
                            hash,
                            "{what}: {} is wrong",
                            path.display()
                        ),
                        false => {
                            assert!(
                                failed.iter().any(|f| copy.starts_with(f)),
                                "{what}: {} missing and not reported",
                                path.display()
                            );
                            // Only what check traced the damage to is lost.
                            let in_snapshot = src.join(path);
                            assert!(
                                report
                                    .damaged
                                    .iter()
                                    .any(|d| d.snapshot == *id && in_snapshot.starts_with(&d.path)),
                                "{what}: {} did not restore, but check did not name it",
                                path.display()
                            );
                        }
                    }
                }
                if deleted_snapshot
                    || report.damaged.iter().all(|d| d.snapshot != *id) && !is("index")
                {
                    assert!(
                        failed.is_empty(),
                        "{what}: snapshot {id} should restore whole: {failed:?}"
                    );
                }
            }
        }
    }
    eprintln!(
        "corruptions tried: {tried} on {} files; detected on opening: {at_open}, by check: {by_check}, undetectable by design (deleted snapshots): {}",
        files.len(),
        tried - at_open - by_check
    );
    assert_eq!(tried - at_open - by_check, snapshots.len() as u64);
}
