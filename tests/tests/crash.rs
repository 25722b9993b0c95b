//! Crash consistency: backup, forget with prune, and a password change run
//! in a child process that is killed with SIGKILL just before, and just
//! after, each file it creates or removes; just before each system call by
//! which it changes files (by way of strace, so inside each create and
//! removal too); and backups and prunes killed at random moments (the seed
//! is printed). The same system calls are also made to fail, one at a time,
//! with a full disk or an I/O error. After every kill the repository checks
//! clean reading all data (leftovers that no index lists are allowed: the
//! next prune removes them), every snapshot restores byte-identical, the
//! password works, and the next backup and prune succeed.
//!
//! `CAIRN_CRASH_RANDOM=N` runs N random kills instead of the default few.

use cairn_engine::backend::LocalBackend;
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::check::{check, CheckOptions};
use cairn_engine::prune::{prune, PruneOptions};
use cairn_engine::restore::restore;
use cairn_engine::{audit, journal, rotate, session, wal, Repository};
use cairn_format::SnapshotId;
use cairn_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

type Content = BTreeMap<PathBuf, [u8; 32]>;

/// A source tree that changes a little from version to version.
fn write_version(src: &Path, v: u64) {
    fs::create_dir_all(src.join("docs")).unwrap();
    for i in 0..6u64 {
        fs::write(
            src.join(format!("docs/note-{i}.txt")),
            compressible_text(3000, v * 10 + i % 3),
        )
        .unwrap();
    }
    write_noise_file(&src.join("big.bin"), 1_500_000 + v * 1000, v);
    write_noise_file(&src.join("stable.bin"), 600_000, 99);
}

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    src: PathBuf,
    template: PathBuf,
    /// What each snapshot of the template restores to.
    snapshots: BTreeMap<SnapshotId, Content>,
    /// The template's oldest snapshot, which `prune` forgets first.
    oldest: SnapshotId,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let src = base.join("src");
    let template = base.join("template");
    let mut repo = init_small_pack_repo(&template);
    let mut snapshots = BTreeMap::new();
    let mut oldest = None;
    for v in 0..3 {
        write_version(&src, v);
        let r = backup_dir(&mut repo, &src);
        snapshots.insert(r.id, relative_fingerprint(&src));
        oldest = oldest.or(Some(r.id));
    }
    // What a key rotation's rewrite seals again besides packs and snapshots.
    for command in ["backup", "forget"] {
        audit::record(&repo, cairn_format::Timestamp::now(), command, &[], "ok").unwrap();
    }
    let failure = cairn_format::journal::Failure {
        source: "db".into(),
        repository: "here".into(),
        step: "copy".into(),
        message: "connection refused".into(),
    };
    journal::record(
        &repo,
        cairn_format::Timestamp::now(),
        cairn_format::journal::Event::Failure(failure),
    )
    .unwrap();
    wal::archive(&repo, "main", "000000010000000000000001", b"log").unwrap();
    write_version(&src, 3);
    Fixture {
        _tmp: tmp,
        base,
        src,
        template,
        snapshots,
        oldest: oldest.unwrap(),
    }
}

fn child(operation: &str, repo: &Path, src: &Path, kill: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash_child"));
    cmd.arg(operation).arg(repo).arg(src).arg(kill);
    cmd
}

/// The creates, removes and replacements `operation` makes when nothing kills it.
fn calls(f: &Fixture, operation: &str) -> (u64, u64, u64) {
    let work = f.base.join("count");
    copy_repo(&f.template, &work);
    let out = child(operation, &work, &f.src, "none").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    let count = |i: usize| words[i].parse().unwrap();
    (count(1), count(3), count(5))
}

/// Opens the repository after a kill with whichever password works.
fn reopen(work: &Path) -> Repository {
    Repository::open(LocalBackend::new(work), PASSWORD.as_bytes())
        .or_else(|_| Repository::open(LocalBackend::new(work), b"new password"))
        .expect("one of the passwords opens the repository")
}

/// Everything a kill of `operation` must leave true; `what` names the kill
/// point.
fn verify(f: &Fixture, work: &Path, what: &str, operation: &str) {
    let mut repo = reopen(work);
    // Every snapshot made before is still there: only `prune` forgets one,
    // and a key rotation's rewrite gives them new IDs (checked by content below).
    let rotated = operation == "rotate";
    let listed: Vec<SnapshotId> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for id in f.snapshots.keys() {
        let forgotten = operation == "prune" && *id == f.oldest;
        assert!(
            forgotten || rotated || listed.contains(id),
            "{what}: snapshot {id} is gone"
        );
    }
    // The killed process is gone: its records are stale, and unlock removes them.
    let unlocked = session::unlock(&repo, false).unwrap();
    assert!(
        unlocked.running.is_empty(),
        "{what}: {:?}",
        unlocked.running
    );
    let report = check_all(&repo);
    assert!(report.is_clean(), "{what}: {:?}", report.errors);
    let expected_new = relative_fingerprint(&f.src);
    let mut restored = Vec::new();
    for (id, snapshot) in repo.snapshots().unwrap() {
        let out = f.base.join("out");
        let _ = fs::remove_dir_all(&out);
        restore(&repo, &snapshot, Some(&f.src), &out).unwrap();
        let content = relative_fingerprint(&out.join("src"));
        match f.snapshots.get(&id) {
            Some(expected) => assert_eq!(&content, expected, "{what}: snapshot {id}"),
            None if rotated => assert!(
                f.snapshots.values().any(|c| *c == content),
                "{what}: snapshot {id} restores to something never backed up"
            ),
            None => assert_eq!(content, expected_new, "{what}: snapshot {id}"),
        }
        restored.push(content);
    }
    if rotated {
        for content in f.snapshots.values() {
            assert!(restored.contains(content), "{what}: a snapshot is gone");
        }
        // The rewrite, run again, finishes what the killed one began.
        let r = rotate::rewrite(&mut repo, PASSWORD.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: the rewrite run again failed: {e}"));
        assert!(r.remaining.is_empty(), "{what}: {:?}", r.remaining);
        let audited = audit::verify(&repo).unwrap();
        assert!(audited.is_intact(), "{what}: {audited:?}");
    }
    backup(
        &mut repo,
        std::slice::from_ref(&f.src),
        &BackupOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{what}: the next backup failed: {e}"));
    let r = prune(&mut repo, &PruneOptions::default()).unwrap();
    assert!(r.waiting.is_empty(), "{what}: {:?}", r.waiting);
    let report = check(&repo, &CheckOptions::default()).unwrap();
    assert!(
        report.is_clean() && report.marked_packs.is_empty() && report.unused_packs.is_empty(),
        "{what}: {report:?} PRUNE {r:?} FILES {:?}",
        walk_files(work)
    );
}

/// Runs the command `run` makes for a fresh copy of the template
/// repository and verifies what it left. True when it was killed; unless
/// `may_finish`, it must be.
fn kill_and_verify(
    f: &Fixture,
    operation: &str,
    what: &str,
    may_finish: bool,
    run: impl FnOnce(&Path) -> Command,
) -> bool {
    let work = f.base.join("work");
    copy_repo(&f.template, &work);
    let status = run(&work)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let killed = status.signal() == Some(libc::SIGKILL);
    assert!(
        killed || (may_finish && status.success()),
        "{what}: {status}"
    );
    verify(f, &work, what, operation);
    killed
}

/// Kills `operation` before and after each of its creates and removes;
/// returns how many kills there were. Blobs go to one of two packs at
/// random, so a run may write a pack or two fewer than the run that was
/// counted, and then finish before its last kill points.
fn kill_at_every_write(operation: &str) -> u64 {
    let f = fixture();
    let (creates, removes, replaces) = calls(&f, operation);
    let mut points = 0;
    for (op, count) in [
        ("create", creates),
        ("remove", removes),
        ("replace", replaces),
    ] {
        for n in 0..count {
            for moment in ["before", "after"] {
                let kill = format!("{op}:{n}:{moment}");
                let what = format!("{operation} killed {kill}");
                let killed = kill_and_verify(&f, operation, &what, true, |work| {
                    child(operation, work, &f.src, &kill)
                });
                points += u64::from(killed);
            }
        }
    }
    eprintln!(
        "{operation}: killed at {points} points ({creates} creates, {removes} removes, {replaces} replacements)"
    );
    points
}

#[test]
fn a_backup_killed_at_any_write_leaves_a_valid_repository() {
    assert!(kill_at_every_write("backup") >= 10);
}

#[test]
fn forget_and_prune_killed_at_any_write_leave_a_valid_repository() {
    assert!(kill_at_every_write("prune") >= 10);
}

#[test]
fn a_key_rotation_and_rewrite_killed_at_any_write_loses_no_snapshot() {
    assert!(kill_at_every_write("rotate") >= 10);
}

#[test]
fn a_password_change_killed_at_any_write_leaves_a_password_that_opens() {
    assert_eq!(kill_at_every_write("passwd"), 4);
}

/// The system calls by which a process changes files.
const STORAGE_CALLS: &str = "write,pwrite64,fsync,fdatasync,link,linkat,unlink,unlinkat,\
                             rename,renameat,renameat2,mkdir,mkdirat,ftruncate";

/// `operation` run under strace with `options` (strace must be installed).
fn traced(options: &[&str], operation: &str, repo: &Path, src: &Path) -> Command {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq"])
        .args(options)
        .arg(env!("CARGO_BIN_EXE_crash_child"))
        .arg(operation)
        .arg(repo)
        .arg(src)
        .arg("none");
    cmd
}

/// For each system call in [`STORAGE_CALLS`] that `operation` makes, the
/// most times any one of its threads makes it (strace counts per thread).
fn storage_calls(f: &Fixture, operation: &str) -> BTreeMap<String, u64> {
    let work = f.base.join("count");
    copy_repo(&f.template, &work);
    let log = f.base.join("strace.log");
    let trace = format!("trace={STORAGE_CALLS}");
    let options = ["-o", log.to_str().unwrap(), "-e", &trace];
    let status = traced(&options, operation, &work, &f.src)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace runs (apt-get install strace)");
    assert!(status.success(), "{operation} under strace: {status}");
    let mut per_thread: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in fs::read_to_string(&log).unwrap().lines() {
        let mut words = line.splitn(2, ' ');
        let (Some(tid), Some(call)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some((name, _)) = call.trim_start().split_once('(') {
            *per_thread
                .entry((name.to_string(), tid.to_string()))
                .or_default() += 1;
        }
    }
    let mut most = BTreeMap::new();
    for ((name, _), n) in per_thread {
        let m = most.entry(name).or_insert(0);
        *m = n.max(*m);
    }
    most
}

/// Kills `operation` just before each storage system call it makes (strace
/// delivers SIGKILL on entry): inside each create, between writing the
/// temporary file, syncing it, linking it to its name, removing the
/// temporary name and syncing the directory, and likewise inside removals.
/// strace counts calls per thread: where several threads make a call, the
/// kill lands before the n-th one of whichever thread gets there first.
/// Some calls happen only in some runs (a pack's fan-out directory is made
/// when it is missing, and pack names are random), so a run may finish
/// before its kill point; returns the number of runs killed.
fn kill_at_every_storage_call(operation: &str) -> u64 {
    let f = fixture();
    let calls = storage_calls(&f, operation);
    let (mut points, mut killed) = (0, 0);
    for (name, most) in &calls {
        for n in 1..=*most {
            let trace = format!("trace={name}");
            let inject = format!("inject={name}:signal=SIGKILL:when={n}");
            let options = ["-o", "/dev/null", "-e", &trace, "-e", &inject];
            let what = format!("{operation} killed before {name} #{n}");
            let run = |work: &Path| traced(&options, operation, work, &f.src);
            killed += u64::from(kill_and_verify(&f, operation, &what, true, run));
            points += 1;
        }
    }
    eprintln!("{operation}: killed before {killed} of {points} system calls {calls:?}");
    killed
}

#[test]
fn a_backup_killed_at_any_storage_system_call_leaves_a_valid_repository() {
    assert!(kill_at_every_storage_call("backup") >= 20);
}

#[test]
fn forget_and_prune_killed_at_any_storage_system_call_leave_a_valid_repository() {
    assert!(kill_at_every_storage_call("prune") >= 20);
}

#[test]
fn a_password_change_killed_at_any_storage_system_call_leaves_a_password_that_opens() {
    assert!(kill_at_every_storage_call("passwd") >= 5);
}

/// The calls of a strace log (`-f`), each on one line: a call that another
/// thread's interrupted (`<unfinished ...>`, later `<... NAME resumed>`) is
/// joined, in the place where it ended.
fn strace_calls(log: &str) -> Vec<String> {
    let mut pending: BTreeMap<&str, &str> = BTreeMap::new();
    let mut calls = Vec::new();
    for line in log.lines() {
        let (tid, rest) = line.split_once(' ').unwrap_or((line, ""));
        if let Some(start) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(tid, start);
        } else if let Some((_, end)) = rest.split_once(" resumed>") {
            calls.push(format!("{tid} {}{end}", pending.remove(tid).unwrap_or("")));
        } else {
            calls.push(line.to_string());
        }
    }
    calls
}

/// The error each storage system call fails with: a full disk for what
/// allocates space, an I/O error for the rest.
fn errno_for(call: &str) -> &'static str {
    match call {
        "write" | "pwrite64" | "mkdir" | "mkdirat" | "ftruncate" => "ENOSPC",
        _ => "EIO",
    }
}

/// Fails each storage system call `operation` makes in turn (strace turns
/// it into an error without running it): the operation either finishes
/// (the failed call was one whose failure is harmless, such as removing a
/// temporary name) or fails with one line naming the error; a backup
/// records a snapshot only if the snapshot file was linked in before the
/// failure (so after everything it refers to was synced), or if the failure
/// was the removal of a temporary name; and the repository is left valid.
/// Returns the number of errors injected.
fn fail_every_storage_call(operation: &str) -> u64 {
    let f = fixture();
    let calls = storage_calls(&f, operation);
    let log = f.base.join("failed.log");
    let mut injected = 0;
    for (name, most) in &calls {
        let errno = errno_for(name);
        for n in 1..=*most {
            let work = f.base.join("work");
            copy_repo(&f.template, &work);
            let before = reopen(&work).snapshots().unwrap().len();
            let trace = format!("trace={name},linkat");
            let inject = format!("inject={name}:error={errno}:when={n}");
            let options = ["-o", log.to_str().unwrap(), "-e", &trace, "-e", &inject];
            let out = traced(&options, operation, &work, &f.src).output().unwrap();
            let what = format!("{operation} with {name} #{n} failing with {errno}");
            let raw = fs::read_to_string(&log).unwrap();
            // strace counts calls per thread: a write of the main thread's
            // error message may be one that fails, and the message is cut.
            let message_lost = raw
                .lines()
                .any(|l| l.contains("write(2,") && l.contains("(INJECTED)"));
            let log = strace_calls(&raw);
            let Some(failed_at) = log.iter().position(|l| l.contains("(INJECTED)")) else {
                // This run made fewer such calls than the counted one.
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            };
            injected += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => {}
                Some(1) => assert!(
                    (stderr.lines().count() == 1 && stderr.contains("os error")) || message_lost,
                    "{what}: {stderr}"
                ),
                _ => panic!("{what}: {} {stderr}", out.status),
            }
            if operation == "backup" && reopen(&work).snapshots().unwrap().len() > before {
                let failed = &log[failed_at];
                let cleanup = failed.contains("unlink(") && failed.contains("/.tmp-");
                let linked = log.iter().position(|l| {
                    l.contains("linkat(") && l.contains("/snapshots/") && l.ends_with("= 0")
                });
                assert!(
                    cleanup || linked.is_some_and(|at| at < failed_at),
                    "{what}: a snapshot was recorded though the failure came first: {log:#?}"
                );
            }
            verify(&f, &work, &what, operation);
        }
    }
    eprintln!("{operation}: {injected} system call errors injected {calls:?}");
    injected
}

#[test]
fn a_backup_whose_system_calls_fail_records_no_snapshot_before_its_data_is_synced() {
    assert!(fail_every_storage_call("backup") >= 20);
}

#[test]
fn forget_and_prune_whose_system_calls_fail_leave_a_valid_repository() {
    assert!(fail_every_storage_call("prune") >= 20);
}

#[test]
fn backups_and_prunes_killed_at_random_moments_leave_a_valid_repository() {
    let f = fixture();
    let runs: u64 = std::env::var("CAIRN_CRASH_RANDOM")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    let seed = std::env::var("CAIRN_CRASH_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()));
    eprintln!("random kills: seed {seed} (CAIRN_CRASH_SEED to repeat), {runs} runs each");
    let mut noise = Noise::new(seed);
    let work = f.base.join("work");
    for operation in ["backup", "prune"] {
        // Kill moments spread over most of how long the operation takes here.
        copy_repo(&f.template, &work);
        let started = std::time::Instant::now();
        let status = child(operation, &work, &f.src, "none")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{operation}: {status}");
        let span = (started.elapsed().as_millis() as u64 * 9 / 10).max(1);
        let mut killed = 0;
        for run in 0..runs {
            copy_repo(&f.template, &work);
            let delay = u64::from_le_bytes(noise.bytes(8).try_into().unwrap()) % span;
            let mut c = child(operation, &work, &f.src, "none")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay));
            let _ = c.kill();
            let status = c.wait().unwrap();
            killed += u64::from(status.signal() == Some(libc::SIGKILL));
            let what = format!("run {run}: {operation} killed after {delay} ms (seed {seed})");
            verify(&f, &work, &what, operation);
        }
        eprintln!("random kills: {killed} of {runs} {operation} runs killed before they finished");
        assert!(killed > 0, "no {operation} run was killed (seed {seed})");
    }
}

/// A crash inside a create (§2.3) can leave its temporary file, whole or
/// partly written, beside or instead of the final one; every reader ignores
/// it and every operation goes on.
#[test]
fn temporary_files_left_inside_a_create_are_ignored() {
    let f = fixture();
    let work = f.base.join("work");
    copy_repo(&f.template, &work);
    let mut n = 0u64;
    for dir in [
        "keys",
        "index",
        "snapshots",
        "locks",
        "marks",
        "data",
        "data/00",
    ] {
        fs::create_dir_all(work.join(dir)).unwrap();
        for len in [0usize, 17, 4096] {
            n += 1;
            let name = format!(".tmp-{n:016x}");
            fs::write(work.join(dir).join(name), Noise::new(n).bytes(len)).unwrap();
        }
    }
    // A whole copy of a real file under a temporary name, as when the link
    // was made but the temporary name not yet removed.
    let pack = walk_files(&work.join("data"))
        .into_iter()
        .find(|p| !p.to_string_lossy().contains(".tmp-"))
        .unwrap();
    fs::copy(&pack, pack.with_file_name(".tmp-ffffffffffffffff")).unwrap();
    verify(&f, &work, "temporary files left behind", "none");
    assert_eq!(
        walk_files(&work)
            .iter()
            .filter(|p| p.to_string_lossy().contains("/.tmp-"))
            .count() as u64,
        n + 1
    );
}
