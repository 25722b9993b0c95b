//! One suite every backend passes: the local one, the fault-injecting
//! wrapper (passing every call through), S3 (against SeaweedFS) and SFTP
//! (against OpenSSH). It pins
//! down what the engine relies on (SPEC §2): create-only and atomic creates,
//! ranged reads, a distinct error for missing files, complete listings
//! (beyond one page of 1,000), removal, empty and very large files, and the
//! refusal to read files larger than their kind allows.

use cairn_engine::backend::{Backend, Bytes, FileKind, LocalBackend};
use cairn_engine::Error;
use cairn_tests::faults::{Fault, Faulty};
use cairn_tests::s3::S3Server;
use cairn_tests::Noise;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Files per kind in the listing checks: more than one S3 page (1,000).
const MANY: usize = 1_100;
/// The size of the large file: far beyond one S3 part (8 MiB).
const LARGE: usize = 300 << 20;

/// One large file at a time, whichever backend: each costs its size in memory.
static LARGE_FILES: Mutex<()> = Mutex::new(());

/// A name for file number `i` of a test: 64 hex digits.
fn id(tag: u8, i: usize) -> String {
    let bytes = blake3::hash(&[&[tag][..], &i.to_le_bytes()].concat());
    bytes.to_hex().to_string()
}

#[track_caller]
fn assert_missing<T: std::fmt::Debug>(result: cairn_engine::Result<T>, name: &str) {
    match result {
        Err(Error::Missing(what)) => assert!(what.contains(name), "{what}"),
        other => panic!("expected a missing-file error for {name}, got {other:?}"),
    }
}

/// Runs every check on `backend`, which holds no repository yet.
fn conformance(backend: &dyn Backend) {
    new_repository(backend);
    create_only(backend);
    racing_creates(backend);
    ranged_reads(backend);
    missing_files(backend);
    listing_beyond_a_page(backend);
    removal(backend);
    empty_files(backend);
    oversized_files_are_refused(backend);
    large_file(backend);
    replacement(backend);
}

fn new_repository(b: &dyn Backend) {
    assert!(!b.exists().unwrap());
    assert!(b.list(FileKind::Config).unwrap().is_empty());
    b.create_repository().unwrap();
    b.create(FileKind::Config, "config", b"the config").unwrap();
    assert!(b.exists().unwrap());
    assert_eq!(b.list(FileKind::Config).unwrap(), vec!["config"]);
    assert!(matches!(
        b.create_repository(),
        Err(Error::RepositoryExists(_))
    ));
    // A second config, even of the same size, is refused and changes nothing.
    for other in [&b"ANOTHER..."[..], b"x"] {
        assert!(matches!(
            b.create(FileKind::Config, "config", other),
            Err(Error::RepositoryExists(_))
        ));
    }
    assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"the config");
}

/// The config and WAL files are replaced whole (a key rotation); nothing
/// named by its content is.
fn replacement(b: &dyn Backend) {
    b.replace(FileKind::Config, "config", b"the rotated config")
        .unwrap();
    assert_eq!(
        b.read(FileKind::Config, "config").unwrap(),
        b"the rotated config"
    );
    assert_eq!(b.list(FileKind::Config).unwrap(), vec!["config"]);
    let wal = "0123456789abcdef.000000010000000000000002";
    b.create(FileKind::Wal, wal, b"sealed once").unwrap();
    for bytes in [&b"sealed again, longer"[..], b"short"] {
        b.replace(FileKind::Wal, wal, bytes).unwrap();
        assert_eq!(b.read(FileKind::Wal, wal).unwrap(), bytes);
    }
    // No temporary name is left behind.
    assert_eq!(b.list(FileKind::Wal).unwrap(), vec![wal]);
    let pack = id(9, 0);
    b.create(FileKind::Pack, &pack, b"content").unwrap();
    let refused = b.replace(FileKind::Pack, &pack, b"other").unwrap_err();
    assert!(refused.to_string().contains("never replaced"), "{refused}");
    assert_eq!(b.read(FileKind::Pack, &pack).unwrap(), b"content");
}

fn create_only(b: &dyn Backend) {
    let name = id(1, 0);
    b.create(FileKind::Pack, &name, b"first content").unwrap();
    // The same name and size: taken as the same content, already there.
    b.create(FileKind::Pack, &name, b"other content").unwrap();
    // Another size: storage holds something else under this name.
    let e = b
        .create(FileKind::Pack, &name, b"longer other content")
        .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains(&name) && m.contains("damaged")),
        "{e}"
    );
    assert_eq!(b.read(FileKind::Pack, &name).unwrap(), b"first content");
    assert_eq!(b.list(FileKind::Pack).unwrap(), vec![name.clone()]);
    // Bytes given away are stored the same way.
    let owned =
        |bytes: &'static [u8]| b.create_owned(FileKind::Pack, &name, Bytes::from_static(bytes));
    owned(b"other content").unwrap();
    assert!(owned(b"longer other content").is_err());
    let given = id(1, 2);
    b.create_owned(FileKind::Pack, &given, Bytes::from_static(b"given"))
        .unwrap();
    assert_eq!(b.read(FileKind::Pack, &given).unwrap(), b"given");
    b.remove(FileKind::Pack, &given).unwrap();
    assert_eq!(b.read(FileKind::Pack, &name).unwrap(), b"first content");
    // Names that are not IDs are refused before storage sees them.
    for bad in ["../config", "config", "", &id(1, 1).to_uppercase()] {
        assert!(b.create(FileKind::Snapshot, bad, b"x").is_err(), "{bad:?}");
        assert!(b.read(FileKind::Snapshot, bad).is_err(), "{bad:?}");
    }
}

fn racing_creates(b: &dyn Backend) {
    // Eight writers of one name, each with content of another size.
    let name = id(2, 0);
    let results: Vec<_> = std::thread::scope(|s| {
        let writers: Vec<_> = (1..=8)
            .map(|n| {
                let name = &name;
                s.spawn(move || b.create(FileKind::Snapshot, name, &vec![n as u8; n]))
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (1..=8).filter(|n| results[n - 1].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let n = winners[0];
    assert_eq!(b.read(FileKind::Snapshot, &name).unwrap(), vec![n as u8; n]);
}

fn ranged_reads(b: &dyn Backend) {
    let name = id(3, 0);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    b.create(FileKind::Index, &name, &bytes).unwrap();
    assert_eq!(b.size(FileKind::Index, &name).unwrap(), 100_000);
    for (offset, length) in [(0, 1), (1, 99_999), (65_536, 300), (99_999, 1), (500, 0)] {
        assert_eq!(
            b.read_at(FileKind::Index, &name, offset, length).unwrap(),
            &bytes[offset as usize..(offset + length) as usize],
            "{length} bytes at {offset}"
        );
    }
    // A range beyond the end fails: the file is shorter than its index says.
    for (offset, length) in [(99_999, 2), (100_000, 1), (1 << 40, 10)] {
        let e = b
            .read_at(FileKind::Index, &name, offset, length)
            .unwrap_err();
        assert!(!matches!(e, Error::Missing(_)), "{e}");
    }
    assert_eq!(b.read(FileKind::Index, &name).unwrap(), bytes);
}

fn missing_files(b: &dyn Backend) {
    let name = id(4, 0);
    assert_missing(b.read(FileKind::Snapshot, &name), &name);
    assert_missing(b.read_at(FileKind::Pack, &name, 0, 10), &name);
    assert_missing(b.size(FileKind::Key, &name), &name);
    assert_missing(b.modified(FileKind::Lock, &name), &name);
    assert_missing(b.remove(FileKind::Mark, &name), &name);
}

fn listing_beyond_a_page(b: &dyn Backend) {
    let created = SystemTime::now();
    let mut expected = Vec::new();
    for (tag, kind) in [(5, FileKind::Pack), (6, FileKind::Lock)] {
        let names: Vec<String> = (0..MANY).map(|i| id(tag, i)).collect();
        // Four writers at once, or S3 takes long.
        std::thread::scope(|s| {
            for part in names.chunks(MANY.div_ceil(4)) {
                s.spawn(move || {
                    for name in part {
                        b.create(kind, name, name.as_bytes()).unwrap();
                    }
                });
            }
        });
        expected.push((kind, names));
    }
    for (kind, mut names) in expected {
        if kind == FileKind::Pack {
            names.push(id(1, 0)); // from create_only
        }
        names.sort();
        assert_eq!(b.list(kind).unwrap(), names, "{kind:?}");
    }
    // Kinds are separate namespaces.
    assert_eq!(b.list(FileKind::Key).unwrap(), Vec::<String>::new());
    let name = id(6, 0);
    assert_missing(b.read(FileKind::Mark, &name), &name);
    // The time storage gives is the creation time, by a clock near ours.
    let modified = b.modified(FileKind::Lock, &name).unwrap();
    let slack = Duration::from_secs(120);
    assert!(modified + slack > created && modified < SystemTime::now() + slack);
}

fn removal(b: &dyn Backend) {
    let name = id(7, 0);
    b.create(FileKind::Mark, &name, b"mark").unwrap();
    assert_eq!(b.list(FileKind::Mark).unwrap(), vec![name.clone()]);
    b.remove(FileKind::Mark, &name).unwrap();
    assert!(b.list(FileKind::Mark).unwrap().is_empty());
    assert_missing(b.read(FileKind::Mark, &name), &name);
    assert_missing(b.remove(FileKind::Mark, &name), &name);
    // Removed, a name can be created again.
    b.create(FileKind::Mark, &name, b"again").unwrap();
    assert_eq!(b.read(FileKind::Mark, &name).unwrap(), b"again");
    assert!(b.remove(FileKind::Config, "config").is_err());
    assert_eq!(b.read(FileKind::Config, "config").unwrap(), b"the config");
}

fn empty_files(b: &dyn Backend) {
    let name = id(8, 0);
    b.create(FileKind::Key, &name, b"").unwrap();
    assert_eq!(b.read(FileKind::Key, &name).unwrap(), b"");
    assert_eq!(b.size(FileKind::Key, &name).unwrap(), 0);
    assert_eq!(b.read_at(FileKind::Key, &name, 0, 0).unwrap(), b"");
    assert!(b.read_at(FileKind::Key, &name, 0, 1).is_err());
    b.create(FileKind::Key, &name, b"").unwrap();
    assert!(b.create(FileKind::Key, &name, b"not empty").is_err());
    assert_eq!(b.list(FileKind::Key).unwrap(), vec![name]);
}

fn oversized_files_are_refused(b: &dyn Backend) {
    // Storage may hold anything: a reader refuses what no key file can be.
    let name = id(9, 0);
    let limit = FileKind::Key.max_len() as usize;
    b.create(FileKind::Key, &name, &vec![7; limit + 1]).unwrap();
    let e = b.read(FileKind::Key, &name).unwrap_err().to_string();
    assert!(
        e.contains(&name) && e.contains("larger than any key file"),
        "{e}"
    );
    let fits = id(9, 1);
    b.create(FileKind::Key, &fits, &vec![7; limit]).unwrap();
    assert_eq!(b.read(FileKind::Key, &fits).unwrap().len(), limit);
}

fn large_file(b: &dyn Backend) {
    let _one_at_a_time = LARGE_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let name = id(10, 0);
    let bytes = Bytes::from(Noise::new(10).bytes(LARGE));
    let expected = blake3::hash(&bytes);
    // Given away, as packs are: on S3, uploaded in parts without a copy.
    b.create_owned(FileKind::Pack, &name, bytes).unwrap();
    assert_eq!(b.size(FileKind::Pack, &name).unwrap(), LARGE as u64);
    let piece = 16 << 20;
    let mut hasher = blake3::Hasher::new();
    for offset in (0..LARGE).step_by(piece) {
        let length = piece.min(LARGE - offset);
        let got = b
            .read_at(FileKind::Pack, &name, offset as u64, length as u64)
            .unwrap();
        assert_eq!(got.len(), length);
        hasher.update(&got);
    }
    assert_eq!(hasher.finalize(), expected);
    // A reader of a whole pack gets it whole.
    assert_eq!(
        blake3::hash(&b.read(FileKind::Pack, &name).unwrap()),
        expected
    );
}

/// A directory of a kind that is missing, as in repositories made before
/// that kind existed, lists as empty (SPEC.md §2.1); `root` is where the
/// backend `b` keeps the repository, reachable as a local path.
fn missing_directories_are_empty(b: &dyn Backend, root: &std::path::Path) {
    for (kind, dir) in [(FileKind::Mark, "marks"), (FileKind::Journal, "journal")] {
        std::fs::remove_dir_all(root.join(dir)).unwrap();
        assert_eq!(b.list(kind).unwrap(), Vec::<String>::new());
    }
}

#[test]
fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("repo"));
    conformance(&backend);
    missing_directories_are_empty(&backend, &dir.path().join("repo"));
}

#[test]
fn fault_injecting_wrapper_conforms_when_it_injects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = Faulty::new(
        LocalBackend::new(dir.path().join("repo")),
        Box::new(|_| Fault::Pass),
    );
    conformance(&faulty);
    assert_eq!(faulty.injected(), 0);
}

#[test]
fn s3_backend_conforms() {
    let server = S3Server::start();
    conformance(&server.backend("conformance"));
    // Another prefix of the same bucket is another, empty repository.
    assert!(!server.backend("elsewhere").exists().unwrap());
}

#[test]
fn sftp_backend_conforms() {
    let server = cairn_tests::sshd::SshServer::start();
    let root = server.scratch().join("conformance");
    conformance(&server.backend(&root));
    missing_directories_are_empty(&server.backend(&root), &root);
    assert!(!server
        .backend(&server.scratch().join("elsewhere"))
        .exists()
        .unwrap());
}
