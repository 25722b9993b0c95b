//! Lock records written by a holder of the repository's keys (forged, dated
//! in the future, or unreadable) neither lose a running backup's data nor
//! block prune for longer than the clock rules allow (SPEC.md §15).

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::prune::{prune, PruneOptions, PruneReport};
use cairn_engine::restore::restore;
use cairn_engine::session::{self, Liveness};
use cairn_engine::{Error, Repository};
use cairn_format::crypto::{random_array, MasterKeys};
use cairn_format::lock::{LockRecord, Operation, SessionState};
use cairn_format::{SnapshotId, Timestamp};
use cairn_tests::faults::{Fault, Faulty, Op};
use cairn_tests::*;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// 2100-01-01T00:00:00Z.
const YEAR_2100: i64 = 4_102_444_800;

/// Stores `record` sealed with `keys`, as a session would; returns its file.
fn store_record(repo: &Path, keys: &MasterKeys, record: &LockRecord) -> PathBuf {
    let sealed = record.seal(keys);
    let path = repo
        .join("locks")
        .join(blake3::hash(&sealed).to_hex().as_str());
    fs::write(&path, sealed).unwrap();
    path
}

/// Every lock record that opens with `keys`.
fn records(repo: &Path, keys: &MasterKeys) -> Vec<LockRecord> {
    walk_files(&repo.join("locks"))
        .iter()
        .filter_map(|f| LockRecord::open(&fs::read(f).unwrap(), keys).ok())
        .collect()
}

/// A running record of a new session of `operation` by this host, written at `at`.
fn running(operation: Operation, pid: u32, at: i64) -> LockRecord {
    let t = Timestamp { secs: at, nanos: 0 };
    LockRecord {
        version: 1,
        session: random_array(),
        operation,
        hostname: cairn_engine::sysinfo::hostname(),
        pid,
        username: "mallory".into(),
        started: t,
        written: t,
        state: SessionState::Running,
        seen_marks: Vec::new(),
    }
}

fn open_keys_only(path: &Path) -> Repository {
    Repository::open_keys(LocalBackend::new(path), PASSWORD.as_bytes()).unwrap()
}

fn prune_now(path: &Path) -> cairn_engine::Result<PruneReport> {
    prune(&mut open_keys_only(path), &PruneOptions::default())
}

fn restores_as(repo: &Repository, id: &SnapshotId, dir: &Path, out: &Path) {
    let _ = fs::remove_dir_all(out);
    restore(repo, &repo.load_snapshot(id).unwrap(), None, out).unwrap();
    assert_same_tree(dir, &out.join(dir.strip_prefix("/").unwrap()));
}

/// What a prune run from another thread returned.
type PruneSlot = Arc<Mutex<Option<cairn_engine::Result<PruneReport>>>>;

/// The repository at `path`, on storage where, just before the second pack
/// file is created and once the first is in place, every running session is
/// forged as ended, `meanwhile` runs, and then a prune, whose result lands in
/// the slot returned.
fn open_pruned_at_second_pack(
    path: &Path,
    meanwhile: impl Fn(&Path) + Send + Sync + 'static,
) -> (Repository, PruneSlot) {
    let slot = PruneSlot::default();
    let (at, pruned) = (path.to_path_buf(), slot.clone());
    // The packs created so far, and the first one's file.
    let packs = Mutex::new((0, PathBuf::new()));
    let plan = Box::new(move |call: &cairn_tests::faults::Call<'_>| {
        let is_pack = call.op == Op::Create && call.kind == cairn_engine::backend::FileKind::Pack;
        if !is_pack {
            return Fault::Pass;
        }
        let (n, first) = {
            let mut packs = packs.lock().unwrap();
            if packs.0 == 0 {
                packs.1 = at.join("data").join(&call.name[..2]).join(call.name);
            }
            packs.0 += 1;
            (packs.0 - 1, packs.1.clone())
        };
        if n == 1 {
            // Packs are stored by several threads: the first may still be
            // on its way.
            wait_for(&first);
            forge_ends(&at);
            meanwhile(&at);
            *pruned.lock().unwrap() = Some(prune_now(&at));
        }
        Fault::Pass
    });
    let repo = Repository::open_keys(
        Faulty::new(LocalBackend::new(path), plan),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    (repo, slot)
}

/// Waits until `file` exists, for 60 s at most.
fn wait_for(file: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never came",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Forges an "ended" record for every session that has not ended.
fn forge_ends(path: &Path) {
    let keys = master_keys(path);
    let all = records(path, &keys);
    let ended: HashSet<[u8; 16]> = all
        .iter()
        .filter(|r| r.state == SessionState::Ended)
        .map(|r| r.session)
        .collect();
    for r in all.iter().filter(|r| !ended.contains(&r.session)) {
        let forged = LockRecord {
            state: SessionState::Ended,
            written: Timestamp::now(),
            ..r.clone()
        };
        store_record(path, &keys, &forged);
    }
}

/// A backup whose session a forged "ended" record makes look over, with a
/// prune run while it is paused between two of its packs: the prune deletes
/// the pack its unchanged file reuses from the parent and the packs it has
/// written so far. The backup then refuses to commit, naming a vanished
/// pack; the repository stays clean and the next backup is whole.
#[test]
fn a_forged_ended_record_never_makes_a_backup_commit_lost_data() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let path = base.join("repo");
    let mut repo = init_small_pack_repo(&path);
    let (other, src) = (base.join("other"), base.join("src"));
    for d in [&other, &src] {
        fs::create_dir(d).unwrap();
    }
    write_noise_file(&other.join("kept.bin"), 200_000, 1);
    let earlier = backup_dir(&mut repo, &other);
    // Sorted first, so the parent's copy is reused before any pack is written.
    write_noise_file(&src.join("a-unchanged.bin"), 300_000, 2);
    let parent = backup_dir(&mut repo, &src);
    // Three packs of 1 MiB at least.
    write_noise_file(&src.join("b-new.bin"), 3 << 20, 3);
    drop(repo);

    // The parent is forgotten meanwhile: nothing else uses its pack.
    let forget = move |path: &Path| open_keys_only(path).remove_snapshot(&parent.id).unwrap();
    let (mut repo, pruned) = open_pruned_at_second_pack(&path, forget);
    let result = backup(
        &mut repo,
        std::slice::from_ref(&src),
        &BackupOptions::default(),
    );
    drop(repo);

    let report = pruned.lock().unwrap().take().expect("the prune ran");
    let report = report.unwrap();
    assert!(
        report.waiting.is_empty() && report.packs_deleted >= 2,
        "the forged record let the prune delete: {report:?}"
    );
    let msg = match result {
        Err(e) => e.to_string(),
        Ok(r) => panic!("a backup using deleted packs recorded snapshot {}", r.id),
    };
    assert!(
        msg.contains("has vanished from storage") && msg.contains("a prune probably deleted it"),
        "{msg}"
    );
    let vanished = msg.split_whitespace().nth(1).unwrap();
    assert!(walk_files(&path.join("data"))
        .iter()
        .all(|p| !p.ends_with(vanished)));

    // No snapshot was recorded, nothing indexed names a vanished pack, and
    // the earlier snapshot is whole.
    let repo = open_repo(&path);
    let ids: Vec<SnapshotId> = repo.snapshots().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(ids, vec![earlier.id]);
    let checked = check_all(&repo);
    assert!(checked.is_clean(), "{:?}", checked.errors);
    restores_as(&repo, &earlier.id, &other, &base.join("out"));

    // The next backup stores everything again and restores byte-identical.
    let mut repo = open_repo(&path);
    let next = backup_dir(&mut repo, &src);
    let checked = check_all(&open_repo(&path));
    assert!(checked.is_clean(), "{:?}", checked.errors);
    restores_as(&open_repo(&path), &next.id, &src, &base.join("out"));
}

/// A running prune record dated in 2100, by a live process of this host,
/// does not stop prune, and plain `unlock` removes it. A same-host backup
/// record by process 1 (always running) silent for 31 minutes does not hold
/// deletions back either.
#[test]
fn records_dated_in_the_future_or_long_silent_block_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let path = base.join("repo");
    let mut repo = init_small_pack_repo(&path);
    let src = base.join("src");
    fs::create_dir(&src).unwrap();
    write_noise_file(&src.join("x.bin"), 500_000, 4);
    let first = backup_dir(&mut repo, &src);
    write_noise_file(&src.join("x.bin"), 500_000, 5);
    let second = backup_dir(&mut repo, &src);
    repo.remove_snapshot(&first.id).unwrap();

    let keys = master_keys(&path);
    let future = running(Operation::Prune, std::process::id(), YEAR_2100);
    let future_file = store_record(&path, &keys, &future);
    let now = Timestamp::now().secs;
    let silent = running(Operation::Backup, 1, now - 31 * 60);
    let silent_file = store_record(&path, &keys, &silent);

    let report = prune_now(&path).unwrap();
    assert!(
        report.waiting.is_empty() && report.packs_deleted >= 1,
        "{report:?}"
    );
    let stale = |record: &LockRecord| {
        report
            .stale_sessions
            .iter()
            .find(|s| s.latest.session == record.session)
            .map(|s| s.liveness.clone())
    };
    assert!(
        matches!(stale(&future), Some(Liveness::Stale(why)) if why.contains("in the future")),
        "{:?}",
        report.stale_sessions
    );
    assert_eq!(
        stale(&silent),
        Some(Liveness::Stale("last written 31 minutes ago".into()))
    );
    let done = session::unlock(&open_keys_only(&path), false).unwrap();
    assert_eq!(done.sessions.len(), 2, "{:?}", done.sessions);
    assert!(!future_file.exists() && !silent_file.exists());
    let repo = open_repo(&path);
    let checked = check_all(&repo);
    assert!(checked.is_clean(), "{:?}", checked.errors);
    restores_as(&repo, &second.id, &src, &base.join("out"));
}

/// A lock record that cannot be read stops prune, naming it, only while its
/// file is younger than STALE_AFTER (or dated in the future within the
/// skew allowed); older, prune runs and plain `unlock` removes it.
#[test]
fn an_unreadable_lock_record_blocks_prune_only_while_recent() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repo");
    let mut repo = init_small_pack_repo(&path);
    let src = tmp.path().canonicalize().unwrap().join("src");
    fs::create_dir(&src).unwrap();
    write_noise_file(&src.join("x.bin"), 100_000, 6);
    backup_dir(&mut repo, &src);
    let junk = Noise::new(7).bytes(300);
    let name = blake3::hash(&junk).to_hex().to_string();
    let file = path.join("locks").join(&name);
    fs::write(&file, &junk).unwrap();
    // Its storage time, `ago` seconds before now (after, if negative).
    let set_age = |ago: i64| {
        let (now, by) = (SystemTime::now(), Duration::from_secs(ago.unsigned_abs()));
        let t = if ago >= 0 { now - by } else { now + by };
        filetime::set_file_mtime(&file, t.into()).unwrap();
    };

    for recent in [0, 29 * 60, -9 * 60] {
        set_age(recent);
        match prune_now(&path) {
            Err(Error::Invalid(msg)) => assert!(
                msg.contains(&name) && msg.contains("--remove-unreadable"),
                "{msg}"
            ),
            other => panic!("a record {recent} s old: {other:?}"),
        }
        let done = session::unlock(&open_keys_only(&path), false).unwrap();
        assert_eq!(done.unreadable_left.len(), 1);
        assert!(file.exists());
    }
    for old in [31 * 60, -(YEAR_2100 - Timestamp::now().secs)] {
        set_age(old);
        let report = prune_now(&path).unwrap();
        let ignored: Vec<String> = report
            .stale_unreadable
            .iter()
            .map(|u| u.id.to_hex())
            .collect();
        assert_eq!(ignored, vec![name.clone()], "a record {old} s old");
    }
    let done = session::unlock(&open_keys_only(&path), false).unwrap();
    assert_eq!(done.unreadable.len(), 1);
    assert!(!file.exists());
}

/// `cairn unlock --session PREFIX` removes a running prune's records (the
/// operator knows it is gone), after which prune runs; plain `unlock` still
/// refuses beside it, and names the session so that the operator can.
#[test]
fn unlock_session_removes_a_running_prune_so_that_prune_can_run() {
    let (_tmp, base, repo_path) = cli_fixture();
    let src = base.join("src");
    write_noise_file(&src.join("x.bin"), 100_000, 8);
    ok_text(&cairn(
        &repo_path,
        &args(&["backup", src.to_str().unwrap()]),
        &[],
    ));
    let repo = open_keys_only(&repo_path);
    let busy = repo.start_session(Operation::Prune).unwrap();
    let backing_up = repo.start_session(Operation::Backup).unwrap();
    let id = hex_of(&busy.id());

    for command in ["prune", "unlock"] {
        let out = cairn(&repo_path, &args(&[command]), &[]);
        assert_clean_failure(&out, 1, &format!("--session {id}"));
    }
    let out = cairn(&repo_path, &args(&["unlock", "--session", "zz"]), &[]);
    assert_clean_failure(&out, 1, "no session's ID starts with \"zz\"");
    let printed = ok_text(&cairn(
        &repo_path,
        &args(&["unlock", "--session", &id[..8]]),
        &[],
    ));
    assert!(
        printed.contains(&format!("removed prune {id}")),
        "{printed}"
    );
    ok_text(&cairn(&repo_path, &args(&["prune"]), &[]));
    // Plain unlock lists the sessions left running, by ID.
    let printed = ok_text(&cairn(&repo_path, &args(&["unlock"]), &[]));
    let backup_id = hex_of(&backing_up.id());
    assert!(
        printed.contains(&format!("left backup {backup_id}")),
        "{printed}"
    );
    drop((busy, backing_up));
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A prune whose session a forged "ended" record makes look over, with a
/// second prune run while the first is copying blobs out of half-unused
/// packs: the second deletes the first's copy that is not indexed yet. The
/// first then refuses to index its copies or write its mark, and every
/// snapshot stays whole.
#[test]
fn a_forged_ended_record_never_makes_a_prune_index_a_deleted_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let path = base.join("repo");
    // Chunks of about 64 KiB, spread over the two packs being filled: every
    // 1 MiB pack holds chunks of files kept and of files dropped, so the
    // prune repacks several.
    let opts = cairn_engine::InitOptions {
        chunker: Some(cairn_format::config::ChunkerParams::fastcdc(64 * 1024)),
        pack_size: Some(1 << 20),
        ..fast_init()
    };
    let mut repo = Repository::init(LocalBackend::new(&path), PASSWORD.as_bytes(), &opts).unwrap();
    let src = base.join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..4 {
        write_noise_file(&src.join(format!("{i}a.bin")), 600_000, 2 * i);
        write_noise_file(&src.join(format!("{i}b.bin")), 600_000, 2 * i + 1);
    }
    let first = backup_dir(&mut repo, &src);
    for i in 0..4 {
        fs::remove_file(src.join(format!("{i}b.bin"))).unwrap();
    }
    let kept = backup_dir(&mut repo, &src);
    repo.remove_snapshot(&first.id).unwrap();
    drop(repo);

    let (mut repo, second) = open_pruned_at_second_pack(&path, |_| {});
    let result = prune(&mut repo, &PruneOptions::default());
    drop(repo);

    let report = second.lock().unwrap().take().expect("the second prune ran");
    let report = report.unwrap();
    assert!(report.waiting.is_empty(), "{report:?}");
    let msg = match result {
        Err(e) => e.to_string(),
        Ok(r) => panic!("the first prune went on over a deleted copy: {r:?}"),
    };
    assert!(msg.contains("has vanished from storage"), "{msg}");
    let repo = open_repo(&path);
    let checked = check_all(&repo);
    assert!(checked.is_clean(), "{:?}", checked.errors);
    restores_as(&repo, &kept.id, &src, &base.join("out"));
    // The next prune finishes the job.
    let r = prune_now(&path).unwrap();
    assert!(r.waiting.is_empty(), "{r:?}");
    let checked = check_all(&open_repo(&path));
    assert!(
        checked.is_clean() && checked.unused_packs.is_empty(),
        "{checked:?}"
    );
    restores_as(&open_repo(&path), &kept.id, &src, &base.join("out"));
}
