//! forget, prune and lock records: kept snapshots stay whole through many
//! cycles, pruned repositories are as small as fresh ones, backups need only
//! to create files, and prune is safe alongside backups and after crashes.

use cairn_engine::backend::{Backend, LocalBackend};
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::check::{check, CheckOptions};
use cairn_engine::prune::{prune, PruneOptions};
use cairn_engine::restore::restore;
use cairn_engine::{Error, Repository};
use cairn_format::lock::Operation;
use cairn_format::SnapshotId;
use cairn_tests::faults::{self, Faulty};
use cairn_tests::*;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory with an empty `src` and a repository with small
/// packs at `repo`.
fn small_pack_fixture() -> (tempfile::TempDir, PathBuf, PathBuf, Repository) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().canonicalize().unwrap().join("src");
    fs::create_dir(&src).unwrap();
    let repo_path = tmp.path().join("repo");
    let repo = init_small_pack_repo(&repo_path);
    (tmp, src, repo_path, repo)
}

/// Changes the source tree for cycle `n`: rewrites some files, adds one,
/// removes one; big files keep most of their chunks.
fn mutate(src: &Path, n: u64) {
    let mut noise = Noise::new(1000 + n);
    for i in 0..12u64 {
        let path = src.join(format!("small-{i}.txt"));
        if i % 4 == n % 4 || !path.exists() {
            fs::write(
                &path,
                compressible_text(2_000 + (i as usize) * 700, n * 100 + i),
            )
            .unwrap();
        }
    }
    for i in 0..3u64 {
        let path = src.join(format!("big-{i}.bin"));
        let mut data = match fs::read(&path) {
            Ok(d) => d,
            Err(_) => noise.bytes(700_000 + i as usize * 200_000),
        };
        if i == n % 3 {
            let at = (noise.bytes(4)[0] as usize * 2_000) % data.len();
            let patch = noise.bytes(50_000);
            let end = (at + patch.len()).min(data.len());
            data[at..end].copy_from_slice(&patch[..end - at]);
        }
        fs::write(&path, data).unwrap();
    }
    fs::write(src.join(format!("new-{n}.bin")), noise.bytes(150_000)).unwrap();
    let _ = fs::remove_file(src.join(format!("new-{}.bin", n.wrapping_sub(2))));
}

fn pack_bytes(repo: &Path) -> u64 {
    dir_size(&repo.join("data"))
}

fn assert_clean(repo: &Repository) {
    let report = check_all(repo);
    assert!(report.is_clean(), "{:?}", report.errors);
}

fn restored(
    repo: &Repository,
    id: &SnapshotId,
    src: &Path,
    out: &Path,
) -> BTreeMap<PathBuf, [u8; 32]> {
    let _ = fs::remove_dir_all(out);
    restore(repo, &repo.load_snapshot(id).unwrap(), Some(src), out).unwrap();
    relative_fingerprint(&out.join(src.file_name().unwrap()))
}

#[test]
fn cycles_of_backup_forget_and_prune_keep_every_kept_snapshot_whole() {
    let (tmp, src, repo_path, mut repo) = small_pack_fixture();
    // Each snapshot with the content it must restore to.
    let mut kept: Vec<(SnapshotId, BTreeMap<PathBuf, [u8; 32]>)> = Vec::new();
    let mut deleted = 0;
    let mut repacked = 0;
    for cycle in 0..15u64 {
        mutate(&src, cycle);
        let report = backup_dir(&mut repo, &src);
        kept.push((report.id, relative_fingerprint(&src)));
        if cycle % 3 == 2 {
            // Forget all but the newest two and one older survivor.
            let forget: Vec<usize> = (0..kept.len() - 2).filter(|i| i % 3 != 0).collect();
            for &i in forget.iter().rev() {
                repo.remove_snapshot(&kept.remove(i).0).unwrap();
            }
            let opts = PruneOptions {
                max_repack: (cycle % 2 == 0).then_some(2 << 20),
                ..Default::default()
            };
            let r = prune(&mut repo, &opts).unwrap();
            assert!(r.waiting.is_empty(), "nothing else runs: {:?}", r.waiting);
            deleted += r.packs_deleted;
            repacked += r.packs_repacked;
            repo = open_repo(&repo_path);
            assert_clean(&repo);
            for (id, content) in &kept {
                let out = tmp.path().join("out");
                assert_eq!(&restored(&repo, id, &src, &out), content, "snapshot {id}");
            }
        }
    }
    eprintln!("{deleted} packs deleted, {repacked} repacked");
    assert!(deleted > 0);
    assert!(fs::read_dir(repo_path.join("marks"))
        .unwrap()
        .next()
        .is_none());

    // A fresh repository holding the same snapshots, chunked the same way,
    // would hold exactly the blobs they use, plus pack headers: the pruned
    // one is within a few percent of that.
    let snapshots: Vec<_> = kept
        .iter()
        .map(|(id, _)| (*id, repo.load_snapshot(id).unwrap()))
        .collect();
    let needed = cairn_engine::stats::stats(&repo, &snapshots)
        .unwrap()
        .stored_size;
    let stored = pack_bytes(&repo_path);
    eprintln!("packs hold {stored} B; the kept snapshots use {needed} B of blobs");
    assert!(
        stored as f64
            <= needed as f64 * 1.05 + 2048.0 * walk_files(&repo_path.join("data")).len() as f64,
        "packs hold {stored} B; the kept snapshots use {needed} B"
    );
}

#[test]
fn packs_mostly_unused_are_repacked_within_the_limits_given() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let repo_path = base.join("repo");
    // Chunks of about 64 KiB: each file is several blobs, spread over the
    // two packs being filled, so that both hold blobs of every directory.
    let opts = cairn_engine::InitOptions {
        chunker: Some(cairn_format::config::ChunkerParams::fastcdc(64 * 1024)),
        pack_size: Some(1 << 20),
        ..fast_init()
    };
    let mut repo =
        Repository::init(LocalBackend::new(&repo_path), PASSWORD.as_bytes(), &opts).unwrap();
    // Three directories backed up together share packs; the snapshots that
    // keep only some of them leave those packs partly used.
    let dirs: Vec<PathBuf> = (0..3).map(|i| base.join(format!("d{i}"))).collect();
    for (i, d) in dirs.iter().enumerate() {
        fs::create_dir(d).unwrap();
        write_noise_file(&d.join("data.bin"), 300_000, i as u64);
    }
    let all = backup(&mut repo, &dirs, &BackupOptions::default()).unwrap();
    let one = backup(&mut repo, &dirs[..1], &BackupOptions::default()).unwrap();
    repo.remove_snapshot(&all.id).unwrap();
    let size_before = pack_bytes(&repo_path);

    // Dry run: counts, and nothing changes.
    let listing = walk_files(&repo_path);
    let dry = PruneOptions {
        dry_run: true,
        ..Default::default()
    };
    let r = prune(&mut repo, &dry).unwrap();
    assert!(r.packs_repacked >= 1 && r.bytes_copied > 250_000, "{r:?}");
    assert_eq!(walk_files(&repo_path), listing);
    // Above the unused share allowed, but beyond the size limit: kept as is.
    let limited = PruneOptions {
        max_repack: Some(100),
        ..Default::default()
    };
    let r = prune(&mut repo, &limited).unwrap();
    assert_eq!(r.packs_repacked, 0, "{r:?}");
    assert_eq!(
        r.packs_deleted, r.packs_unused,
        "only unused packs go: {r:?}"
    );
    // An unused share below the threshold: kept as is. (A pack may hold one
    // used chunk of 16 KiB or more among at most 1.25 MiB.)
    let tolerant = PruneOptions {
        max_unused: 0.99,
        ..Default::default()
    };
    assert_eq!(prune(&mut repo, &tolerant).unwrap().packs_repacked, 0);
    let r = prune(&mut repo, &PruneOptions::default()).unwrap();
    assert!(r.packs_repacked >= 1 && r.packs_deleted >= 1, "{r:?}");
    let size_after = pack_bytes(&repo_path);
    assert!(
        size_after < size_before / 2,
        "{size_before} B before, {size_after} B after"
    );
    // The same repository value: prune leaves its index current.
    assert_clean(&repo);
    let out = base.join("out");
    restore(&repo, &one.snapshot, None, &out).unwrap();
    assert_same_tree(&dirs[0], &out.join(dirs[0].strip_prefix("/").unwrap()));
}

/// The repository at `path` on storage that refuses every delete and every
/// create of a name that exists.
fn create_only(path: &Path) -> Faulty<LocalBackend> {
    let probe = LocalBackend::new(path);
    let existing = move |kind, name: &str| probe.list(kind).unwrap().iter().any(|n| n == name);
    Faulty::new(LocalBackend::new(path), faults::create_only(existing))
}

#[test]
fn a_backup_needs_only_to_create_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().canonicalize().unwrap().join("src");
    fs::create_dir(&src).unwrap();
    let repo_path = tmp.path().join("repo");
    init_repo(&repo_path);
    for cycle in 0..3 {
        mutate(&src, cycle);
        let mut repo = Repository::open_as(
            create_only(&repo_path),
            PASSWORD.as_bytes(),
            Operation::Backup,
        )
        .unwrap();
        let report = backup_dir(&mut repo, &src);
        let out = tmp.path().join("out");
        assert_eq!(
            restored(&repo, &report.id, &src, &out),
            relative_fingerprint(&src)
        );
    }
    // The records of the ended sessions stay, as they could not be removed.
    assert!(count(&repo_path.join("locks")) >= 9);
    // The refusals are real: prune, which deletes, fails on this backend.
    let repo = Repository::open(create_only(&repo_path), PASSWORD.as_bytes()).unwrap();
    let first = repo.snapshots().unwrap()[0].0;
    assert!(repo.remove_snapshot(&first).is_err());
    assert_clean(&repo);
}

#[test]
fn an_ended_session_removes_its_lock_records() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().canonicalize().unwrap().join("src");
    fs::create_dir(&src).unwrap();
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    for cycle in 0..3 {
        mutate(&src, cycle);
        backup_dir(&mut repo, &src);
        assert_eq!(count(&repo_path.join("locks")), 0, "after backup {cycle}");
    }
    prune(&mut repo, &PruneOptions::default()).unwrap();
    assert_eq!(count(&repo_path.join("locks")), 0, "after prune");
}

#[test]
fn prune_refuses_to_run_beside_another_prune_and_reads_every_lock_record() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().canonicalize().unwrap().join("src");
    fs::create_dir(&src).unwrap();
    mutate(&src, 0);
    let repo_path = tmp.path().join("repo");
    let mut repo = init_repo(&repo_path);
    backup_dir(&mut repo, &src);
    let other = repo.start_session(Operation::Prune).unwrap();
    match prune(&mut repo, &PruneOptions::default()) {
        Err(Error::Invalid(msg)) => {
            assert!(msg.contains("another prune or repair is running"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    other.end().unwrap();
    prune(&mut repo, &PruneOptions::default()).unwrap();

    // A record that cannot be read may be a running backup's: prune stops,
    // and unlock removes it when asked to.
    let junk = b"not a lock record";
    let name = blake3::hash(junk).to_hex().to_string();
    fs::write(repo_path.join("locks").join(&name), junk).unwrap();
    match prune(&mut repo, &PruneOptions::default()) {
        Err(Error::Invalid(msg)) => assert!(msg.contains(&name), "{msg}"),
        other => panic!("{other:?}"),
    }
    let done = cairn_engine::session::unlock(&repo, true).unwrap();
    assert_eq!(done.unreadable.len(), 1);
    prune(&mut repo, &PruneOptions::default()).unwrap();
    assert!(fs::read_dir(repo_path.join("locks"))
        .unwrap()
        .next()
        .is_none());
}

/// `cairn backup --stdin` with its standard input open for the test to write.
fn stdin_backup(repo: &Path, name: &str) -> Child {
    Command::new(cairn_bin())
        .env_clear()
        .env("CAIRN_REPOSITORY", repo)
        .env("CAIRN_PASSWORD", PASSWORD)
        .args(["backup", "--stdin", "--stdin-filename", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Waits until `dir` holds at least `n` files.
fn wait_for_files(dir: &Path, n: usize) {
    let start = Instant::now();
    while count(dir) < n {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_backups_in_separate_processes_both_complete_and_restore() {
    let (_tmp, base, repo) = cli_fixture();
    let (a, b) = (base.join("a"), base.join("b"));
    for (dir, seed) in [(&a, 1), (&b, 2)] {
        fs::create_dir(dir).unwrap();
        mutate(dir, seed);
        // Content both share, so that both may store it at once.
        write_noise_file(&dir.join("shared.bin"), 3 << 20, 99);
    }
    let spawn = |dir: &Path| {
        Command::new(cairn_bin())
            .env_clear()
            .env("CAIRN_REPOSITORY", &repo)
            .env("CAIRN_PASSWORD", PASSWORD)
            .arg("backup")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a), spawn(&b));
    ok_text(&first.wait_with_output().unwrap());
    ok_text(&second.wait_with_output().unwrap());
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
    let listed: serde_json::Value = serde_json::from_str(&ok_text(&cairn(
        &repo,
        &args(&["snapshots", "--json"]),
        &[],
    )))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for snapshot in listed {
        let dir = PathBuf::from(snapshot["paths"][0].as_str().unwrap());
        let out = base.join("out");
        let _ = fs::remove_dir_all(&out);
        let id = snapshot["id"].as_str().unwrap();
        let mut list = args(&["restore", id, "--target"]);
        list.push(out.as_os_str());
        ok_text(&cairn(&repo, &list, &[]));
        assert_same_tree(&dir, &out.join(dir.strip_prefix("/").unwrap()));
    }
}

#[test]
fn a_backup_killed_with_sigkill_blocks_neither_backup_nor_prune() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    mutate(&src, 0);
    let mut child = stdin_backup(&repo, "dump.sql");
    // Its first record, then the one naming the marks it read.
    wait_for_files(&repo.join("locks"), 2);
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&Noise::new(5).bytes(2 << 20))
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    ok_text(&cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
    ok_text(&cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
    ok_text(&cairn(&repo, &args(&["forget", "--keep-last", "1"]), &[]));
    let out = cairn(&repo, &args(&["prune"]), &[]);
    let printed = ok_text(&out);
    assert!(!printed.contains("wait"), "{printed}");
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(notes.contains("gone without ending"), "{notes}");
    assert!(count(&repo.join("marks")) == 0);
    let printed = ok_text(&cairn(&repo, &args(&["unlock"]), &[]));
    assert!(printed.contains("removed 1 session;"), "{printed}");
    assert_eq!(count(&repo.join("locks")), 0);
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
}

#[test]
fn prune_beside_a_running_backup_never_takes_what_that_backup_uses() {
    let (_tmp, base, repo) = cli_fixture();
    let src = base.join("src");
    let content = Noise::new(11).bytes(3 << 20);
    fs::write(src.join("x.bin"), &content).unwrap();
    ok_text(&cairn(&repo, &[OsStr::new("backup"), src.as_os_str()], &[]));
    let packs_before = walk_files(&repo.join("data"));

    // The backup loads the index while the first snapshot still uses the
    // content, so it stores none of it again.
    // The first backup's records are still there: wait for two more.
    let records = count(&repo.join("locks"));
    let mut child = stdin_backup(&repo, "x.bin");
    wait_for_files(&repo.join("locks"), records + 2);
    child.stdin.as_mut().unwrap().write_all(&content).unwrap();
    ok_text(&cairn(&repo, &args(&["forget", "latest"]), &[]));
    let printed = ok_text(&cairn(&repo, &args(&["prune"]), &[]));
    assert!(printed.contains("wait until"), "{printed}");
    assert_eq!(count(&repo.join("marks")), 1);
    for p in &packs_before {
        assert!(p.exists(), "{} deleted under a running backup", p.display());
    }
    drop(child.stdin.take());
    ok_text(&child.wait_with_output().unwrap());

    // The backup's snapshot uses the marked content: it checks and restores.
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
    // Reading all data covers the marked packs that readers still use: a
    // flipped byte in the one holding the content is found and traced.
    let traced = packs_before.iter().any(|p| {
        let original = fs::read(p).unwrap();
        let mut damaged = original.clone();
        damaged[200] ^= 1;
        fs::write(p, &damaged).unwrap();
        let out = cairn(&repo, &args(&["check", "--read-data"]), &[]);
        fs::write(p, &original).unwrap();
        out.status.code() == Some(4) && String::from_utf8_lossy(&out.stderr).contains("x.bin")
    });
    assert!(traced, "damage in a marked pack went unnoticed");
    let out = cairn(&repo, &args(&["dump", "latest", "x.bin"]), &[]);
    assert!(out.status.success());
    assert_eq!(out.stdout, content);
    // The next prune finds the backup over and keeps the packs it uses.
    let printed = ok_text(&cairn(&repo, &args(&["prune"]), &[]));
    // The content's chunks are in one data pack or two (filled at once).
    assert!(
        printed.contains("kept 1 marked pack that") || printed.contains("kept 2 marked packs that"),
        "{printed}"
    );
    assert_eq!(count(&repo.join("marks")), 0);
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
    let out = cairn(&repo, &args(&["dump", "latest", "x.bin"]), &[]);
    assert!(out.status.success());
    assert_eq!(out.stdout, content);
    // Once forgotten too, the content goes.
    ok_text(&cairn(&repo, &args(&["forget", "latest"]), &[]));
    ok_text(&cairn(&repo, &args(&["prune"]), &[]));
    assert!(walk_files(&repo.join("data")).is_empty());
    ok_text(&cairn(&repo, &args(&["check", "--read-data"]), &[]));
}

#[test]
fn prune_stopped_at_every_write_leaves_a_valid_repository_that_the_next_prune_finishes() {
    let (tmp, src, template, mut repo) = small_pack_fixture();
    let mut kept = Vec::new();
    for cycle in 0..5 {
        mutate(&src, cycle);
        let report = backup_dir(&mut repo, &src);
        kept.push((report.id, relative_fingerprint(&src)));
    }
    // Forget the first and the third: the second, between them, stays.
    for i in [2, 0] {
        let (id, _) = kept.remove(i);
        repo.remove_snapshot(&id).unwrap();
    }
    let snapshots = repo.snapshots().unwrap();
    assert_eq!(snapshots.len(), kept.len());
    let work = tmp.path().join("work");
    let mut points = 0;
    for n in 0.. {
        copy_repo(&template, &work);
        let dies = Faulty::new(LocalBackend::new(&work), faults::dies_at(n));
        let mut repo = Repository::open(dies, PASSWORD.as_bytes()).unwrap();
        if prune(&mut repo, &PruneOptions::default()).is_ok() {
            break;
        }
        points += 1;
        drop(repo);
        // The process is gone: its lock records count as stale, as `unlock` would.
        for f in walk_files(&work.join("locks")) {
            fs::remove_file(f).unwrap();
        }
        let mut repo = open_repo(&work);
        let report = check(&repo, &CheckOptions::default()).unwrap();
        assert!(
            report.is_clean(),
            "stopped at write {n}: {:?}",
            report.errors
        );
        let r = prune(&mut repo, &PruneOptions::default()).unwrap();
        assert!(
            r.waiting.is_empty(),
            "stopped at write {n}: {:?}",
            r.waiting
        );
        let repo = open_repo(&work);
        assert_clean(&repo);
        assert_eq!(repo.snapshots().unwrap().len(), snapshots.len());
        assert_eq!(count(&work.join("marks")), 0, "stopped at write {n}");
        for (id, content) in &kept {
            let out = tmp.path().join("out");
            assert_eq!(
                &restored(&repo, id, &src, &out),
                content,
                "stopped at write {n}"
            );
        }
    }
    eprintln!("prune stopped at each of its {points} writes and removals");
    assert!(points >= 10, "{points}");
}

/// A pack that one mark condemns while another mark's superseded file still
/// lists it, and that a backup came to use, survives both marks: the first
/// leaves it to the second, which indexes it again for the backup.
#[test]
fn overlapping_marks_never_delete_what_a_later_backup_uses() {
    use cairn_engine::packer::PackWriter;
    use cairn_format::tree::{NodeKind, Tree};
    use cairn_format::BlobKind;
    let (tmp, src, path, mut repo) = small_pack_fixture();
    mutate(&src, 0);
    backup_dir(&mut repo, &src);
    let open = || Repository::open_keys(LocalBackend::new(&path), PASSWORD.as_bytes()).unwrap();
    let prune_now = || prune(&mut open(), &PruneOptions::default()).unwrap();
    let x = Noise::new(77).bytes(300_000);
    // C: a session that keeps every mark waiting while it runs.
    let c = repo.start_session(Operation::Backup).unwrap();
    // B stores pack P holding X, not yet indexed.
    let mut b = open();
    b.begin_session(Operation::Backup).unwrap();
    let mut writer = PackWriter::new(&b);
    let x_id = writer.save(BlobKind::Data, x.clone()).unwrap();
    let (packs_b, _) = writer.finish().unwrap();
    // Prune 1 marks P, which no index lists yet (M1), and waits for C and B.
    let r = prune_now();
    assert_eq!(r.waiting.len(), 1, "{r:?}");
    let report = check_all(&open_repo(&path));
    assert!(
        report.is_clean() && report.marked_packs.len() == 1,
        "{report:?}"
    );
    // B indexes P and ends without a snapshot.
    b.save_index(packs_b).unwrap();
    b.end_session().unwrap();
    // Rebuilding the index keeps P: a current file lists it.
    cairn_engine::repair::repair_index(&open(), false, false).unwrap();
    assert!(open_repo(&path).index().contains(BlobKind::Data, &x_id));
    // D reads M1, and uses X from P through B's index.
    let mut d = open();
    d.begin_session(Operation::Backup).unwrap();
    let mut writer = PackWriter::new(&d);
    assert_eq!(writer.save(BlobKind::Data, x.clone()).unwrap(), x_id);
    // Prune 2: nothing uses X yet, so M2 marks P again (and B's index
    // file); it waits for C and D.
    let r = prune_now();
    assert_eq!(r.waiting.len(), 2, "{r:?}");
    // C ends: M1 completes. P must stay, as a file M2 supersedes lists it.
    c.end().unwrap();
    let r = prune_now();
    assert_eq!(r.waiting.len(), 1, "{r:?}");
    // D stores its snapshot using X.
    let node = plain_node(
        b"x",
        NodeKind::File {
            content: vec![x_id],
        },
        x.len() as u64,
    );
    let tree = writer
        .save(BlobKind::Tree, Tree::new(vec![node]).encode())
        .unwrap();
    let (packs_d, _) = writer.finish().unwrap();
    d.save_index(packs_d).unwrap();
    let template = d.snapshots().unwrap().pop().unwrap().1;
    let snapshot = cairn_format::snapshot::Snapshot { tree, ..template };
    d.save_snapshot(&snapshot).unwrap();
    d.end_session().unwrap();
    let check_x = || {
        let repo = open_repo(&path);
        assert_clean(&repo);
        let out = tmp.path().join("x-out");
        let _ = fs::remove_dir_all(&out);
        let report = restore(&repo, &snapshot, None, &out).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(fs::read(out.join("x")).unwrap(), x);
    };
    check_x();
    // Prune 4: M2 completes and indexes P again for D's snapshot.
    let r = prune_now();
    assert!(r.waiting.is_empty() && r.packs_rescued == 1, "{r:?}");
    assert_eq!(count(&path.join("marks")), 0);
    check_x();
}

#[test]
fn unlock_refuses_while_a_prune_runs() {
    let (_tmp, _src, path, repo) = small_pack_fixture();
    let running = repo.start_session(Operation::Prune).unwrap();
    match cairn_engine::session::unlock(&repo, true) {
        Err(Error::Invalid(msg)) => assert!(msg.contains("another prune or repair"), "{msg}"),
        other => panic!("{other:?}"),
    }
    running.end().unwrap();
    // Once it has ended, unlock runs; the prune removed its own records.
    let done = cairn_engine::session::unlock(&repo, true).unwrap();
    assert!(
        done.sessions.is_empty() && done.running.is_empty(),
        "{done:?}"
    );
    assert_eq!(count(&path.join("locks")), 0);
}
