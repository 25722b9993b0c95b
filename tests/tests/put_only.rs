//! Put-only keys (SPEC §3.6): with one, and full read access to the
//! storage, nothing in the repository can be read back, yet backups work,
//! deduplicate, and compare against the last one without reading a file
//! again; the full key restores, checks, forgets, prunes and copies them.

use cairn_engine::backend::{Backend, FileKind, LocalBackend};
use cairn_engine::{audit, keys, Repository};
use cairn_format::key::{open_key_file, KdfParams};
use cairn_format::keyring::{EpochSeal, Role};
use cairn_format::{BlobKind, FormatError, Timestamp};
use cairn_tests::*;
use std::ffi::OsStr;
use std::path::Path;

const PUT: &[u8] = b"put-only password";

fn open_put_only(repo: &Path, cache: &Path) -> Repository {
    let mut repo = Repository::open(LocalBackend::new(repo), PUT).unwrap();
    repo.use_parent_cache(cache);
    repo
}

/// True when `e` is the refusal of a put-only key to read.
fn refused(e: &cairn_engine::Error) -> bool {
    e.to_string().contains("a put-only key cannot read")
}

#[test]
fn a_put_only_key_backs_up_and_deduplicates_but_reads_nothing_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, other) = (tmp.path().join("src"), tmp.path().join("other"));
    build_varied_tree(&src);
    write_noise_file(&src.join("big"), 3 << 20, 1);
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(src.join("big"), other.join("same-big")).unwrap();
    std::fs::write(other.join("own"), b"written by the backup host").unwrap();
    let repo_path = tmp.path().join("repo");
    let mut full = init_repo(&repo_path);
    let first = backup_dir(&mut full, &src);
    let put_id = keys::add_put_only(&full, PUT, KdfParams::argon2id(64, 1, 1)).unwrap();

    // The key file holds no secret that opens content.
    let bytes = std::fs::read(repo_path.join("keys").join(put_id.to_hex())).unwrap();
    let (put_keys, info) = open_key_file(&bytes, PUT).unwrap();
    assert_eq!(info.role, Role::PutOnly);
    assert_eq!(put_keys.data_key, [0; 32]);
    let keyring = put_keys.keyring.as_ref().unwrap();
    assert!(keyring
        .epochs()
        .iter()
        .all(|e| matches!(e.seal, EpochSeal::Public(_))));

    // A backup deduplicates against what the full key stored: the 3 MiB
    // file is not stored again.
    let cache = tmp.path().join("parents");
    let mut put = open_put_only(&repo_path, &cache);
    let before = dir_size(&repo_path);
    let second = backup_dir(&mut put, &other);
    let grown = dir_size(&repo_path) - before;
    assert!(grown < 100_000, "the repository grew by {grown} bytes");
    // Run again unchanged, it reads no file.
    let third = backup_dir(&mut put, &other);
    assert_eq!(
        third.snapshot.summary.bytes_read, 0,
        "{:?}",
        third.snapshot.summary
    );
    assert_eq!(third.snapshot.summary.files_unchanged, 2);
    assert_eq!(third.snapshot.parent, Some(second.id));

    // Every read path fails: snapshots, trees, data blobs, index entries,
    // pack headers, the audit log, and the other key file.
    let put = open_put_only(&repo_path, &cache);
    assert!(refused(&put.snapshots().unwrap_err()));
    for id in [first.id, second.id, third.id] {
        assert!(refused(&put.load_snapshot(&id).unwrap_err()));
    }
    // Blobs: through the repository, which cannot even locate them, and
    // opened where the full key says they lie in the packs.
    let blobs = blobs_in_packs(&repo_path);
    let count = |kind| blobs.iter().filter(|(_, e)| e.kind == kind).count();
    assert!(count(BlobKind::Data) > 3 && count(BlobKind::Tree) > 3);
    for (pack, e) in &blobs {
        // Not even a tree this key wrote and remembers: the cache is
        // consulted only during a backup.
        assert!(put.read_blob(e.kind, &e.id).is_err(), "blob {}", e.id);
        let bytes = std::fs::read(pack).unwrap();
        let sealed = &bytes[e.offset as usize..(e.offset + u64::from(e.length)) as usize];
        let opened = cairn_format::pack::open_blob(&put_keys, e.kind, &e.id, sealed, e.raw_length);
        assert!(
            matches!(opened, Err(FormatError::NotReadable(_))),
            "blob {}",
            e.id
        );
    }
    for name in LocalBackend::new(&repo_path).list(FileKind::Index).unwrap() {
        assert!(
            refused(&put.read_index_file(&name).unwrap_err()),
            "index {name}"
        );
    }
    for name in LocalBackend::new(&repo_path).list(FileKind::Pack).unwrap() {
        let id = cairn_format::PackId::from_hex(&name).unwrap();
        assert!(
            refused(&put.read_pack_header(&id).unwrap_err()),
            "pack {name}"
        );
    }
    audit::record(&full, Timestamp::now(), "test", &[], "ok").unwrap();
    audit::record(&put, Timestamp::now(), "backup", &[third.id], "ok").unwrap();
    let (records, errors) = audit::records(&put).unwrap();
    assert_eq!(errors.len(), 2);
    assert!(records.is_empty() && !errors.is_empty() && errors.iter().all(refused));
    for key in LocalBackend::new(&repo_path).list(FileKind::Key).unwrap() {
        if key != put_id.to_hex() {
            let bytes = std::fs::read(repo_path.join("keys").join(&key)).unwrap();
            assert!(matches!(
                open_key_file(&bytes, PUT),
                Err(FormatError::Authentication(_))
            ));
        }
    }
    // Nor can it remove snapshots, prune or manage keys.
    assert!(put.remove_snapshot(&third.id).is_err());
    let mut put = put;
    assert!(cairn_engine::prune::prune(&mut put, &Default::default()).is_err());
    assert!(keys::add(&put, b"another", KdfParams::argon2id(64, 1, 1)).is_err());
    assert!(keys::add_put_only(&put, b"another", KdfParams::argon2id(64, 1, 1)).is_err());

    // The full key reads everything: the put-only snapshots restore, check,
    // forget, prune and copy.
    let mut full = open_repo(&repo_path);
    assert_eq!(full.snapshots().unwrap().len(), 3);
    let audited = audit::verify(&full).unwrap();
    assert_eq!(audited.records, 2);
    assert!(audited.is_intact(), "{audited:?}");
    let report = check_all(&full);
    assert!(report.is_clean(), "{:?}", report.errors);
    let out = tmp.path().join("out");
    cairn_engine::restore::restore(&full, &third.snapshot, None, &out).unwrap();
    assert_same_tree(&other, &out.join(other.strip_prefix("/").unwrap()));
    full.remove_snapshot(&first.id).unwrap();
    full.remove_snapshot(&second.id).unwrap();
    cairn_engine::prune::prune(&mut full, &Default::default()).unwrap();
    let report = check_all(&full);
    assert!(report.is_clean(), "{:?}", report.errors);
    let copy_path = tmp.path().join("copy");
    let mut copy = init_repo(&copy_path);
    let listed = full.snapshots().unwrap();
    cairn_engine::copy::copy(&full, &mut copy, &listed, None).unwrap();
    let again = tmp.path().join("again");
    let copied = copy.snapshots().unwrap();
    cairn_engine::restore::restore(&copy, &copied[0].1, None, &again).unwrap();
    assert_same_tree(&other, &again.join(other.strip_prefix("/").unwrap()));

    // The parent the put-only key remembers is forgotten and pruned with all
    // it used: its next backup stores what it needs again.
    full.remove_snapshot(&third.id).unwrap();
    cairn_engine::prune::prune(&mut full, &Default::default()).unwrap();
    let mut put = open_put_only(&repo_path, &cache);
    let fourth = backup_dir(&mut put, &other);
    assert_eq!(fourth.snapshot.parent, Some(third.id));
    assert!(fourth.snapshot.summary.bytes_read > 3 << 20);
    let full = open_repo(&repo_path);
    let report = check_all(&full);
    assert!(report.is_clean(), "{:?}", report.errors);
    let last = tmp.path().join("last");
    cairn_engine::restore::restore(&full, &fourth.snapshot, None, &last).unwrap();
    assert_same_tree(&other, &last.join(other.strip_prefix("/").unwrap()));
}

/// Every blob in the repository's packs, with the pack file holding it, as
/// the full key reads their headers.
fn blobs_in_packs(repo: &Path) -> Vec<(std::path::PathBuf, cairn_format::pack::PackEntry)> {
    let full = open_repo(repo);
    LocalBackend::new(repo)
        .list(FileKind::Pack)
        .unwrap()
        .iter()
        .flat_map(|name| {
            let id = cairn_format::PackId::from_hex(name).unwrap();
            let file = repo.join("data").join(&name[..2]).join(name);
            let entries = full.read_pack_header(&id).unwrap().0.blobs;
            entries.into_iter().map(move |e| (file.clone(), e))
        })
        .collect()
}

#[test]
fn a_put_only_machine_key_backs_up_through_the_binary_and_is_listed_as_such() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    std::fs::write(src.join("a"), "content").unwrap();
    let machine = base.join("backup-host.key");
    let printed = ok_text(&cairn(
        &repo,
        &[
            OsStr::new("key"),
            OsStr::new("add"),
            OsStr::new("--put-only"),
            OsStr::new("--machine"),
            machine.as_os_str(),
        ],
        &[],
    ));
    assert!(printed.contains("added put-only machine key"), "{printed}");
    let listed = ok_text(&cairn(&repo, &args(&["key", "list"]), &[]));
    assert!(listed.contains("put-only"), "{listed}");
    let cache = base.join("host-cache");
    let as_host = [
        ("CAIRN_PASSWORD", ""),
        ("CAIRN_PASSWORD_FILE", machine.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
    ];
    let backup = [OsStr::new("backup"), src.as_os_str()];
    ok_text(&cairn(&repo, &backup, &as_host));
    let printed = ok_text(&cairn(&repo, &backup, &as_host));
    assert!(printed.contains("read 0 B"), "{printed}");
    let out = cairn(&repo, &args(&["snapshots"]), &as_host);
    assert_clean_failure(&out, 1, "a put-only key cannot read snapshot");
    let out = cairn(
        &repo,
        &args(&["key", "add", "--machine", "/tmp/never"]),
        &as_host,
    );
    assert_clean_failure(&out, 1, "a put-only key cannot add keys");
    // The full key lists both snapshots.
    let listed = ok_text(&cairn(&repo, &args(&["snapshots"]), &[]));
    assert!(listed.contains("2 snapshots"), "{listed}");
}

#[test]
fn index_tags_that_differ_from_their_entries_are_reported_and_repaired() {
    use cairn_format::crypto::ObjectType;
    use cairn_format::index::{DedupTags, IndexFile, INDEX_MAGIC};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_varied_tree(&src);
    let repo_path = tmp.path().join("repo");
    let mut full = init_repo(&repo_path);
    backup_dir(&mut full, &src);
    let keys = master_keys(&repo_path);
    // An index file of the full key's making whose tags list no blob: a
    // put-only key would store everything again, and check must say so.
    let name = LocalBackend::new(&repo_path)
        .list(FileKind::Index)
        .unwrap()
        .remove(0);
    let path = repo_path.join("index").join(&name);
    let file = IndexFile::open(&std::fs::read(&path).unwrap(), &keys).unwrap();
    let empty = DedupTags {
        version: 1,
        packs: vec![],
        tags: vec![],
    };
    let tags = keys.seal(
        ObjectType::DedupTags,
        None,
        &cairn_format::codec::encode(&empty),
        None,
    );
    let entries = keys.seal_framed(
        ObjectType::Index,
        None,
        blake3::hash(&tags).as_bytes(),
        cairn_format::frame::encode(&cairn_format::codec::encode(&file), None),
    );
    let mut bytes = INDEX_MAGIC.to_vec();
    bytes.extend_from_slice(&(tags.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&tags);
    bytes.extend_from_slice(&entries);
    std::fs::remove_file(&path).unwrap();
    let forged = blake3::hash(&bytes).to_hex().to_string();
    std::fs::write(repo_path.join("index").join(&forged), &bytes).unwrap();

    let report = check_all(&open_repo(&repo_path));
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.to_string().contains("deduplication tags differ")),
        "{:?}",
        report.errors
    );
    let full = Repository::open_keys(LocalBackend::new(&repo_path), PASSWORD.as_bytes()).unwrap();
    cairn_engine::repair::repair_index(&full, false, false).unwrap();
    let report = check_all(&open_repo(&repo_path));
    assert!(report.is_clean(), "{:?}", report.errors);
}

#[test]
fn run_with_a_put_only_key_backs_up_when_due_and_leaves_the_rest_to_a_full_key() {
    let (_tmp, base, config) = files_policy("keep = { last = 2 }\nprune = \"1d\"");
    let put = base.join("put");
    std::fs::write(&put, "put-only password\n").unwrap();
    for repo in ["@main", "@copy"] {
        let list = [
            "-r",
            repo,
            "key",
            "add",
            "--put-only",
            "--new-password-file",
            put.to_str().unwrap(),
            "--kdf-memory-kib",
            "64",
        ];
        ok_text(&cairn_configured(&config, &list, &[]));
    }
    let cache = base.join("host-cache");
    let as_host = [
        ("CAIRN_PASSWORD", ""),
        ("CAIRN_PASSWORD_FILE", put.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
    ];
    let first = cairn_configured(&config, &["run"], &as_host);
    let printed = ok_text(&first);
    assert!(printed.contains("snapshot"), "{printed}");
    let notes = String::from_utf8_lossy(&first.stderr);
    assert!(notes.contains("left to a host with a full key"), "{notes}");
    // The second run knows from its own record that nothing is due.
    let printed = ok_text(&cairn_configured(&config, &["run"], &as_host));
    assert!(printed.contains("not due"), "{printed}");
    // The full key sees the one snapshot, which restores.
    let listed = ok_text(&cairn_configured(
        &config,
        &["-r", "@main", "snapshots"],
        &[],
    ));
    assert!(listed.contains("1 snapshot"), "{listed}");
    let out = base.join("out");
    let restore = [
        "-r",
        "@main",
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
    ];
    ok_text(&cairn_configured(&config, &restore, &[]));
    let src = base.join("src");
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}
