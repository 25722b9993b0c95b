//! Retention on S3 Object Lock (SPEC §2.6), against SeaweedFS, which
//! enforces it: `init --retain-days` refuses storage that cannot keep files
//! (a bucket without Object Lock, a local directory) before writing
//! anything, and makes a missing bucket with Object Lock; every pack, index
//! file and snapshot a backup writes is kept from deletion for as long as
//! the repository (or the backup) says, its snapshot is held as long, and
//! prune leaves alone what storage keeps.

use cairn_engine::backend::{Backend, FileKind, S3Backend, S3Config, S3Location};
use cairn_engine::prune::{prune, PruneOptions};
use cairn_engine::Repository;
use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use cairn_tests::*;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

const S3_ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
];

fn run(location: &str, list: &[&str]) -> Output {
    cairn(Path::new(location), &args(list), &S3_ENV)
}

/// The backend of the repository under `prefix` of bucket `bucket`.
fn backend(server: &S3Server, bucket: &str, prefix: &str) -> S3Backend {
    let config = server.config(prefix, SECRET_KEY);
    S3Backend::new(S3Config {
        location: S3Location {
            bucket: bucket.into(),
            ..config.location.clone()
        },
        ..config
    })
    .unwrap()
}

/// Asserts that every file of `kind` is kept from deletion for about `days` days.
fn retained_for(b: &S3Backend, kind: FileKind, days: u64) {
    let names = b.list(kind).unwrap();
    assert!(!names.is_empty(), "no {}", kind.name());
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    for name in names {
        let until = b
            .retained_until(kind, &name)
            .unwrap()
            .unwrap_or_else(|| panic!("{} {name} is not retained", kind.name()));
        let left = until.duration_since(now).unwrap();
        assert!(
            left > day * days as u32 - day / 24 && left <= day * days as u32,
            "{} {name}: kept for {left:?}",
            kind.name()
        );
    }
}

#[test]
fn retained_backups_are_kept_by_storage_and_left_alone_by_prune() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), compressible_text(20_000, 1)).unwrap();
    write_noise_file(&src.join("b.bin"), 300_000, 2);
    let init = ["init", "--kdf-memory-kib", "64", "--retain-days", "2"];

    // Storage that cannot keep files: refused on one line, nothing written.
    let plain = server.location("plain");
    assert_clean_failure(&run(&plain, &init), 1, "has no Object Lock");
    let listed = backend(&server, cairn_tests::s3::BUCKET, "plain");
    assert!(listed.list(FileKind::Key).unwrap().is_empty());
    let local = base.join("local");
    assert_clean_failure(
        &run(local.to_str().unwrap(), &init),
        1,
        "cannot keep files from deletion",
    );
    assert!(!local.join("config").exists());

    // A bucket that does not exist yet is made with Object Lock.
    let locked = format!("s3:{}/locked/repo", server.endpoint());
    ok_text(&run(&locked, &init));
    ok_text(&run(&locked, &["backup", src.to_str().unwrap()]));
    let b = backend(&server, "locked", "repo");
    // Asked of a backend only once it knows the bucket keeps files.
    b.retain_for(2).unwrap();
    for kind in [FileKind::Pack, FileKind::Index, FileKind::Snapshot] {
        retained_for(&b, kind, 2);
    }
    // One backup kept longer: its snapshot file, and the hold on it; and
    // the older packs it shares data with are kept as long.
    let first_packs = b.list(FileKind::Pack).unwrap();
    std::fs::write(src.join("c.txt"), compressible_text(9_000, 3)).unwrap();
    let text = ok_text(&run(
        &locked,
        &["backup", "--retain-days", "5", src.to_str().unwrap()],
    ));
    assert!(text.contains("snapshot"), "{text}");
    let snapshots = ok_text(&run(&locked, &["snapshots", "--json"]));
    let dates: Vec<&str> = snapshots
        .split("hold-until=")
        .skip(1)
        .map(|s| &s[..10])
        .collect();
    assert_eq!(dates.len(), 2, "{snapshots}");
    assert_ne!(dates[0], dates[1], "{snapshots}");
    let four_days = SystemTime::now() + Duration::from_secs(4 * 86_400);
    let extended = first_packs.iter().filter(|name| {
        let until = b.retained_until(FileKind::Pack, name).unwrap().unwrap();
        until > four_days
    });
    assert!(
        extended.count() > 0,
        "no pack of the first backup is kept longer"
    );

    // A copy into another retained repository holds what it copies, and a
    // second copy finds it there.
    let copy = format!("s3:{}/locked/copy", server.endpoint());
    ok_text(&run(
        &copy,
        &["init", "--kdf-memory-kib", "64", "--retain-days", "3"],
    ));
    let copy_in = || {
        let env = [S3_ENV[0], S3_ENV[1], ("CAIRN_FROM_PASSWORD", PASSWORD)];
        let from = ["copy", "--from-repo", &locked];
        ok_text(&cairn(Path::new(&copy), &args(&from), &env))
    };
    let text = copy_in();
    assert!(
        text.contains("2 snapshots copied, 0 already there"),
        "{text}"
    );
    let copied = ok_text(&run(&copy, &["snapshots", "--json"]));
    assert_eq!(copied.matches("hold-until=").count(), 2, "{copied}");
    let again = copy_in();
    assert!(
        again.contains("0 snapshots copied, 2 already there"),
        "{again}"
    );

    // forget keeps both held snapshots; prune deletes nothing storage keeps.
    let text = ok_text(&run(&locked, &["forget", "--keep-last", "1", "--prune"]));
    assert!(text.contains("keep (hold)"), "{text}");
    assert_eq!(
        ok_text(&run(&locked, &["snapshots", "--json"]))
            .matches("\"id\"")
            .count(),
        2
    );
    // A pack no index lists (an interrupted backup's) is kept while retained.
    let mut repo = Repository::open(b, PASSWORD.as_bytes()).unwrap();
    let orphan = "ab".repeat(32);
    repo.backend()
        .create(FileKind::Pack, &orphan, b"an interrupted backup's pack")
        .unwrap();
    let report = prune(&mut repo, &PruneOptions::default()).unwrap();
    assert_eq!(report.packs_retained, 1, "{report:?}");
    assert_eq!(report.packs_deleted, 0, "{report:?}");
    assert!(repo
        .backend()
        .list(FileKind::Pack)
        .unwrap()
        .contains(&orphan));
    ok_text(&run(&locked, &["check", "--read-data"]));
}
