//! Injected storage faults: an I/O error, a full disk or a short write at
//! each create of a backup or prune, a failed removal in prune, a failed
//! read at each pack read of a restore, a prune and a backup, slow reads. Each operation fails with an error naming the fault
//! (or, for the final record of a session, carries on), never records a
//! snapshot whose data is not stored, never restores wrong data, and leaves a
//! repository that checks clean and takes the next backup.

use cairn_engine::backend::{FileKind, LocalBackend};
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::prune::{prune, PruneOptions};
use cairn_engine::restore::restore;
use cairn_engine::Repository;
use cairn_format::SnapshotId;
use cairn_tests::faults::{Call, Fault, Faulty, Op, Plan};
use cairn_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    src: PathBuf,
    template: PathBuf,
    /// The template's newest snapshot and what it restores to.
    newest: (SnapshotId, BTreeMap<PathBuf, [u8; 32]>),
}

/// A repository with two snapshots of a changing tree, and the tree changed again.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    fs::create_dir(&src).unwrap();
    let template = base.join("template");
    let mut repo = init_small_pack_repo(&template);
    let mut newest = None;
    for v in 0..3u64 {
        for i in 0..4u64 {
            fs::write(
                src.join(format!("t{i}.txt")),
                compressible_text(4000, v * 7 + i),
            )
            .unwrap();
        }
        write_noise_file(&src.join("big.bin"), 1_200_000, v);
        if v < 2 {
            let r = backup_dir(&mut repo, &src);
            newest = Some((r.id, relative_fingerprint(&src)));
        }
    }
    Fixture {
        _tmp: tmp,
        base,
        src,
        template,
        newest: newest.unwrap(),
    }
}

/// A plan that applies `fault` to call `n` of `op` only.
fn at(op: Op, n: u64, fault: Fault) -> Plan {
    Box::new(move |call: &Call<'_>| match call.op == op && call.n == n {
        true => fault,
        false => Fault::Pass,
    })
}

fn open(path: &Path, plan: Plan) -> (Repository, Arc<Faulty<LocalBackend>>) {
    let backend = Arc::new(Faulty::new(LocalBackend::new(path), plan));
    let repo = Repository::open(backend.clone(), PASSWORD.as_bytes()).unwrap();
    (repo, backend)
}

/// The repository is whole: it checks clean reading everything, the
/// template's newest snapshot is there and restores byte-identical, and a
/// backup without faults succeeds and restores.
fn assert_whole(f: &Fixture, path: &Path, what: &str) {
    let mut repo = open_repo(path);
    let report = check_all(&repo);
    assert!(report.is_clean(), "{what}: {:?}", report.errors);
    let (id, content) = &f.newest;
    let snapshot = repo
        .load_snapshot(id)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = f.base.join("out");
    let _ = fs::remove_dir_all(&out);
    restore(&repo, &snapshot, Some(&f.src), &out).unwrap();
    assert_eq!(&relative_fingerprint(&out.join("src")), content, "{what}");
    let r = backup(
        &mut repo,
        std::slice::from_ref(&f.src),
        &BackupOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{what}: the next backup failed: {e}"));
    let out = f.base.join("out");
    let _ = fs::remove_dir_all(&out);
    restore(&repo, &r.snapshot, Some(&f.src), &out).unwrap();
    assert_same_tree(&f.src, &out.join("src"));
}

#[test]
fn a_backup_with_a_failed_write_fails_clearly_and_records_no_snapshot() {
    let f = fixture();
    let work = f.base.join("work");
    copy_repo(&f.template, &work);
    let (mut repo, counter) = open(&work, Box::new(|_: &Call<'_>| Fault::Pass));
    backup_dir(&mut repo, &f.src);
    let creates = counter.calls(Op::Create);
    let mut injected = 0;
    for n in 0..creates {
        for kind in [
            ErrorKind::Other,
            ErrorKind::StorageFull,
            ErrorKind::WriteZero,
        ] {
            copy_repo(&f.template, &work);
            let what = format!("create {n} failing with {kind:?}");
            let (mut repo, faulty) = open(&work, at(Op::Create, n, Fault::Fail(kind)));
            let before = repo.snapshots().unwrap().len();
            let result = backup(
                &mut repo,
                std::slice::from_ref(&f.src),
                &BackupOptions::default(),
            );
            injected += faulty.injected();
            let after = open_repo(&work).snapshots().unwrap().len();
            match result {
                Err(e) => {
                    assert!(e.to_string().contains("injected fault"), "{what}: {e}");
                    assert_eq!(after, before, "{what}: a snapshot was recorded");
                }
                // Only the session's final record may fail without failing
                // the backup. Blobs go to one of two packs at random, so a
                // run may make a create or two fewer than the one counted,
                // and then finish before create `n`.
                Ok(_) => {
                    let made = faulty.calls(Op::Create);
                    assert!(
                        n + 1 >= made,
                        "{what}: the backup did not fail ({made} creates)"
                    );
                    assert_eq!(after, before + 1);
                }
            }
            drop(repo);
            assert_whole(&f, &work, &what);
        }
    }
    eprintln!("backup: {injected} write faults injected at {creates} creates");
    assert!(
        injected + 6 >= creates * 3,
        "{injected} of {creates} creates"
    );
}

#[test]
fn prune_with_a_failed_write_or_removal_fails_clearly_and_the_next_prune_finishes() {
    let f = fixture();
    let work = f.base.join("work");
    let forget_oldest = |repo: &Repository| {
        let oldest = repo.snapshots().unwrap()[0].0;
        repo.remove_snapshot(&oldest).unwrap();
    };
    copy_repo(&f.template, &work);
    let pack_reads = Arc::new(AtomicU64::new(0));
    let (mut repo, counter) = open(&work, failing_pack_read(u64::MAX, pack_reads.clone()));
    forget_oldest(&repo);
    prune(&mut repo, &PruneOptions::default()).unwrap();
    let (creates, removes) = (counter.calls(Op::Create), counter.calls(Op::Remove));
    let reads = pack_reads.load(Ordering::SeqCst);
    let mut injected = 0;
    for (op, count) in [
        (Op::Create, creates),
        (Op::Remove, removes),
        (Op::Read, reads),
    ] {
        // The first removal is the forgotten snapshot's.
        for n in (op == Op::Remove) as u64..count {
            copy_repo(&f.template, &work);
            let what = format!("{op:?} {n} failing");
            let plan = match op {
                Op::Read => failing_pack_read(n, Arc::new(AtomicU64::new(0))),
                _ => at(op, n, Fault::Fail(ErrorKind::Other)),
            };
            let (mut repo, faulty) = open(&work, plan);
            forget_oldest(&repo);
            let result = prune(&mut repo, &PruneOptions::default());
            injected += faulty.injected();
            if let Err(e) = &result {
                assert!(e.to_string().contains("injected fault"), "{what}: {e}");
            }
            drop(repo);
            // A prune that could not record its end looks alive while this
            // process lives; gone with its process, it would be stale.
            for record in walk_files(&work.join("locks")) {
                fs::remove_file(record).unwrap();
            }
            let mut repo = open_repo(&work);
            let r = prune(&mut repo, &PruneOptions::default()).unwrap();
            assert!(r.waiting.is_empty(), "{what}: {:?}", r.waiting);
            drop(repo);
            assert_whole(&f, &work, &what);
            assert_eq!(walk_files(&work.join("marks")).len(), 0, "{what}");
        }
    }
    eprintln!(
        "prune: {injected} faults injected at {creates} creates, {removes} removes and {reads} pack reads"
    );
    assert!(reads > 0, "the prune repacked nothing");
    assert!(injected >= creates + removes - 1 + reads);
}

/// A plan that fails the `n`-th read of a pack (from 0), and counts pack reads.
fn failing_pack_read(n: u64, reads: Arc<AtomicU64>) -> Plan {
    Box::new(move |call: &Call<'_>| {
        if call.op != Op::Read || call.kind != FileKind::Pack {
            return Fault::Pass;
        }
        match reads.fetch_add(1, Ordering::SeqCst) == n {
            true => Fault::Fail(ErrorKind::Other),
            false => Fault::Pass,
        }
    })
}

#[test]
fn a_restore_with_a_failed_read_never_writes_wrong_data() {
    let f = fixture();
    let work = f.base.join("work");
    copy_repo(&f.template, &work);
    let snapshot = open_repo(&work).snapshots().unwrap().pop().unwrap().1;
    let out = f.base.join("out");
    let counted = Arc::new(AtomicU64::new(0));
    let (repo, _) = open(&work, failing_pack_read(u64::MAX, counted.clone()));
    let _ = fs::remove_dir_all(&out);
    restore(&repo, &snapshot, None, &out).unwrap();
    let reads = counted.load(Ordering::SeqCst);
    let expected = fingerprint(&out.join(f.src.strip_prefix("/").unwrap()));
    let (mut injected, mut recovered) = (0, 0);
    for n in 0..reads {
        let plan = failing_pack_read(n, Arc::new(AtomicU64::new(0)));
        let (repo, faulty) = open(&work, plan);
        let _ = fs::remove_dir_all(&out);
        let result = restore(&repo, &snapshot, None, &out);
        injected += faulty.injected();
        let failed: Vec<PathBuf> = match &result {
            Ok(report) => report.errors.iter().map(|(p, _)| p.clone()).collect(),
            Err(e) => {
                assert!(e.to_string().contains("injected fault"), "read {n}: {e}");
                Vec::new()
            }
        };
        // A failed read of a run of blobs is retried blob by blob.
        recovered += u64::from(result.is_ok() && failed.is_empty());
        let restored = out.join(f.src.strip_prefix("/").unwrap());
        for (path, hash) in &expected {
            let copy = restored.join(path.strip_prefix(&restored).unwrap());
            match copy.exists() {
                true => assert_eq!(
                    &hash_file(&copy),
                    hash,
                    "read {n}: {} is wrong",
                    copy.display()
                ),
                false => assert!(
                    // The file, or a directory above it whose listing failed.
                    result.is_err() || failed.iter().any(|p| copy.starts_with(p)),
                    "read {n}: {} missing but not reported: {failed:?} {result:?}",
                    copy.display()
                ),
            }
        }
    }
    eprintln!(
        "restore: {injected} read faults injected at {reads} pack reads; {recovered} retried successfully, the others reported"
    );
    assert_eq!(injected, reads);
}

#[test]
fn a_backup_with_a_failed_read_stores_its_files_anyway_or_fails_clearly() {
    let f = fixture();
    let work = f.base.join("work");
    copy_repo(&f.template, &work);
    let counted = Arc::new(AtomicU64::new(0));
    let (mut repo, _) = open(&work, failing_pack_read(u64::MAX, counted.clone()));
    let opts = BackupOptions::default();
    backup(&mut repo, std::slice::from_ref(&f.src), &opts).unwrap();
    // The parent snapshot's trees are read from packs.
    let reads = counted.load(Ordering::SeqCst);
    assert!(reads > 0);
    let mut injected = 0;
    for n in 0..reads {
        copy_repo(&f.template, &work);
        let what = format!("pack read {n} failing");
        let (mut repo, faulty) = open(&work, failing_pack_read(n, Arc::new(AtomicU64::new(0))));
        let before = repo.snapshots().unwrap().len();
        let result = backup(&mut repo, std::slice::from_ref(&f.src), &opts);
        injected += faulty.injected();
        let after = open_repo(&work).snapshots().unwrap().len();
        match result {
            // Without its parent's tree the backup reads the files again.
            Ok(r) => {
                assert_eq!(after, before + 1, "{what}");
                let out = f.base.join("out");
                let _ = fs::remove_dir_all(&out);
                restore(&open_repo(&work), &r.snapshot, Some(&f.src), &out).unwrap();
                assert_same_tree(&f.src, &out.join("src"));
            }
            Err(e) => {
                assert!(e.to_string().contains("injected fault"), "{what}: {e}");
                assert_eq!(after, before, "{what}: a snapshot was recorded");
            }
        }
        drop(repo);
        assert_whole(&f, &work, &what);
    }
    eprintln!("backup: {injected} read faults injected at {reads} pack reads");
    assert_eq!(injected, reads);
}

#[test]
fn slow_reads_only_slow_a_restore_down() {
    let f = fixture();
    let slow: Plan = Box::new(|call: &Call<'_>| match call.op {
        Op::Read => Fault::Delay(Duration::from_millis(20)),
        _ => Fault::Pass,
    });
    let (repo, faulty) = open(&f.template, slow);
    let snapshot = repo.snapshots().unwrap().pop().unwrap().1;
    let out = f.base.join("out");
    let report = restore(&repo, &snapshot, Some(&f.src), &out).unwrap();
    assert!(report.errors.is_empty() && faulty.injected() > 0);
    // The fixture's source has changed since: compare with a fault-free restore.
    let plain = f.base.join("plain");
    restore(&open_repo(&f.template), &snapshot, Some(&f.src), &plain).unwrap();
    assert_same_tree(&plain.join("src"), &out.join("src"));
}
