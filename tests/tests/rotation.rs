//! Key rotation (SPEC §3.7): after `rotate`, new objects are sealed in a
//! new epoch and every other key file stops opening the repository, with an
//! error that says why; after `rewrite`, a copy of the secrets held before
//! opens no object in the repository, and every snapshot still restores
//! with the new key, its audit log intact.

use cairn_engine::backend::{Backend, FileKind, LocalBackend};
use cairn_engine::{audit, journal, keys, rotate, wal, Repository};
use cairn_format::audit::AuditRecord;
use cairn_format::config::Config;
use cairn_format::crypto::MasterKeys;
use cairn_format::index::IndexFile;
use cairn_format::journal::{Event, Failure, JournalEntry};
use cairn_format::key::KdfParams;
use cairn_format::lock::{LockRecord, PruneMark};
use cairn_format::pack::{open_blob, PackHeader, TRAILER_LEN};
use cairn_format::snapshot::Snapshot;
use cairn_format::wal::WalHeader;
use cairn_format::{PackId, Timestamp};
use cairn_tests::*;
use std::fs;
use std::path::Path;

const OTHER: &[u8] = b"another password";
const WAL_NAME: &str = "000000010000000000000001";

/// The file of `kind` named `name` in the local repository at `repo`.
fn file(repo: &Path, kind: FileKind, name: &str) -> Vec<u8> {
    let backend = LocalBackend::new(repo);
    backend.read(kind, name).unwrap()
}

/// Every object in the repository at `repo` that `keys` opens, named.
fn opened_with(repo: &Path, keys: &MasterKeys) -> Vec<String> {
    let backend = LocalBackend::new(repo);
    let mut opened = Vec::new();
    let mut note = |ok: bool, what: String| {
        if ok {
            opened.push(what);
        }
    };
    note(
        Config::open(&file(repo, FileKind::Config, "config"), keys).is_ok(),
        "config".into(),
    );
    type Opener = fn(&[u8], &MasterKeys) -> bool;
    let openers: [(FileKind, Opener); 8] = [
        (FileKind::Index, |b, k| IndexFile::open(b, k).is_ok()),
        (FileKind::Index, |b, k| IndexFile::open_tags(b, k).is_ok()),
        (FileKind::Snapshot, |b, k| Snapshot::open(b, k).is_ok()),
        (FileKind::Journal, |b, k| JournalEntry::open(b, k).is_ok()),
        (FileKind::Audit, |b, k| AuditRecord::open(b, k).is_ok()),
        (FileKind::Lock, |b, k| LockRecord::open(b, k).is_ok()),
        (FileKind::Mark, |b, k| PruneMark::open(b, k).is_ok()),
        (FileKind::Wal, |b, k| WalHeader::open(b, k).is_ok()),
    ];
    for (kind, open) in openers {
        for name in backend.list(kind).unwrap() {
            note(
                open(&file(repo, kind, &name), keys),
                format!("{} {name}", kind.name()),
            );
        }
    }
    // Pack headers, and each blob where the current key says it lies.
    let current = open_repo(repo);
    for name in backend.list(FileKind::Pack).unwrap() {
        let bytes = file(repo, FileKind::Pack, &name);
        let trailer = &bytes[bytes.len() - TRAILER_LEN..];
        let (start, len) = PackHeader::locate(trailer, bytes.len() as u64).unwrap();
        let sealed = &bytes[start as usize..(start + u64::from(len)) as usize];
        note(
            PackHeader::open(sealed, start, keys).is_ok(),
            format!("header of pack {name}"),
        );
        let id = PackId::from_hex(&name).unwrap();
        for e in current.read_pack_header(&id).unwrap().0.blobs {
            let blob = &bytes[e.offset as usize..(e.offset + u64::from(e.length)) as usize];
            note(
                open_blob(keys, e.kind, &e.id, blob, e.raw_length).is_ok(),
                format!("blob {} in pack {name}", e.id),
            );
        }
    }
    opened
}

/// Every snapshot of the repository at `repo` restores to `expected`'s
/// content (all were taken of the same tree, at two moments).
fn restores(
    repo: &Path,
    out: &Path,
    expected: &[std::collections::BTreeMap<std::path::PathBuf, [u8; 32]>],
) {
    let repo = open_repo(repo);
    let snapshots = repo.snapshots().unwrap();
    assert_eq!(snapshots.len(), expected.len());
    let mut seen = Vec::new();
    for (_, snapshot) in snapshots {
        let _ = fs::remove_dir_all(out);
        let report = cairn_engine::restore::restore(&repo, &snapshot, None, out).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let root = snapshot.paths[0].clone();
        let restored = out.join(
            Path::new(std::str::from_utf8(&root).unwrap())
                .strip_prefix("/")
                .unwrap(),
        );
        seen.push(relative_fingerprint(&restored));
    }
    for content in expected {
        assert!(seen.contains(content), "a snapshot no longer restores");
    }
}

#[test]
fn after_a_rotation_and_rewrite_the_old_secrets_open_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (src, repo_path, out) = (base.join("src"), base.join("repo"), base.join("out"));
    fs::create_dir_all(src.join("docs")).unwrap();
    for i in 0..5 {
        fs::write(
            src.join(format!("docs/{i}.txt")),
            compressible_text(4000, i),
        )
        .unwrap();
    }
    write_noise_file(&src.join("big"), 3 << 20, 1);
    let mut repo = init_small_pack_repo(&repo_path);
    let first = backup_dir(&mut repo, &src);
    let mut contents = vec![relative_fingerprint(&src)];
    fs::write(src.join("new.txt"), compressible_text(5000, 3)).unwrap();
    let second = backup_dir(&mut repo, &src);
    contents.push(relative_fingerprint(&src));
    audit::record(&repo, Timestamp::now(), "backup", &[first.id], "ok").unwrap();
    audit::record(&repo, Timestamp::now(), "backup", &[second.id], "ok").unwrap();
    let failure = Failure {
        source: "files".into(),
        repository: "here".into(),
        step: "check".into(),
        message: "a test".into(),
    };
    journal::record(&repo, Timestamp::now(), Event::Failure(failure)).unwrap();
    wal::archive(&repo, "main", WAL_NAME, b"a WAL segment").unwrap();
    keys::add(&repo, OTHER, KdfParams::argon2id(64, 1, 1)).unwrap();
    keys::add_put_only(&repo, b"put-only", KdfParams::argon2id(64, 1, 1)).unwrap();
    // The secrets a thief copied before the rotation, and the key files.
    let old = master_keys(&repo_path);
    assert!(!opened_with(&repo_path, &old).is_empty());

    // Rotation: a new epoch for the password in use; the other keys are stale.
    let mut repo = open_repo(&repo_path);
    let rotation = rotate::rotate(&mut repo, PASSWORD.as_bytes()).unwrap();
    assert_eq!(rotation.epoch, 1);
    assert_eq!(rotation.stale_keys.len(), 2);
    for stale in [OTHER, b"put-only".as_slice()] {
        let err = Repository::open(LocalBackend::new(&repo_path), stale)
            .err()
            .expect("a key made before the rotation is refused")
            .to_string();
        assert!(err.contains("rotated to epoch 1"), "{err}");
    }
    // New objects are sealed in the new epoch; the old ones still open.
    let mut repo = open_repo(&repo_path);
    fs::write(src.join("after.txt"), compressible_text(7000, 4)).unwrap();
    let third = backup_dir(&mut repo, &src);
    contents.push(relative_fingerprint(&src));
    audit::record(&repo, Timestamp::now(), "backup", &[third.id], "ok").unwrap();
    let sealed = file(&repo_path, FileKind::Snapshot, &third.id.to_hex());
    assert_eq!(cairn_format::keyring::sealed_epoch(&sealed), Some(1));
    assert!(Snapshot::open(&sealed, &old).is_err());
    assert!(opened_with(&repo_path, &old).len() > 10);
    restores(&repo_path, &out, &contents);

    // The rewrite leaves nothing the old secrets open.
    let report = rotate::rewrite(&mut repo, PASSWORD.as_bytes()).unwrap();
    assert!(report.remaining.is_empty(), "{:?}", report.remaining);
    assert_eq!(report.snapshots.len(), 2, "{report:?}");
    assert!(report.prune.packs_repacked > 0 && report.journal == 1);
    assert_eq!(report.wal, 1);
    // The two records sealed before, and the one after that names them.
    assert_eq!(report.audit, 3);
    for id in &report.other_keys {
        keys::remove(&repo, id).unwrap();
    }
    let opened = opened_with(&repo_path, &old);
    assert!(opened.is_empty(), "the old secrets open {opened:?}");
    let now = master_keys(&repo_path);
    let epochs: Vec<u32> = now
        .keyring
        .as_ref()
        .unwrap()
        .epochs()
        .iter()
        .map(|e| e.epoch)
        .collect();
    assert_eq!(epochs, [1]);
    assert!(opened_with(&repo_path, &now).len() > 10);

    // Everything restores with the new key, checks clean, and the audit
    // log still accounts for every snapshot.
    restores(&repo_path, &out, &contents);
    let repo = open_repo(&repo_path);
    let checked = check_all(&repo);
    assert!(checked.is_clean(), "{:?}", checked.errors);
    let audited = audit::verify(&repo).unwrap();
    assert!(audited.is_intact(), "{audited:?}");
    let (records, _) = audit::records(&repo).unwrap();
    let renamed: Vec<_> = report.snapshots.iter().map(|(_, new)| *new).collect();
    assert!(records
        .iter()
        .any(|(_, r)| r.snapshots.iter().any(|s| renamed.contains(s))));
    assert_eq!(
        wal::fetch(&repo, "main", WAL_NAME).unwrap().unwrap(),
        b"a WAL segment"
    );
    let (entries, unreadable) = journal::entries(&repo).unwrap();
    assert!(entries.len() == 1 && unreadable.is_empty());
}

#[test]
fn key_rotate_through_the_binary_reports_each_step() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    build_varied_tree(&src);
    let ok = |list: &[&str]| ok_text(&cairn(&repo, &args(list), &[]));
    ok(&["backup", src.to_str().unwrap()]);
    let text = ok(&["key", "rotate"]);
    assert!(text.contains("rotated to key epoch 1"), "{text}");
    let text = ok(&["key", "rewrite"]);
    assert!(
        text.contains("re-sealed") && text.contains("1 snapshot,"),
        "{text}"
    );
    assert!(text.contains("holds the newest alone"), "{text}");
    let text = ok(&["key", "rotate", "--rewrite"]);
    assert!(
        text.contains("rotated to key epoch 2") && text.contains("holds the newest alone"),
        "{text}"
    );
    ok(&["check", "--read-data"]);
    let out = base.join("out");
    ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    let audit = ok(&["audit"]);
    assert!(audit.contains("key rewrite"), "{audit}");
}
