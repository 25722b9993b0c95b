//! Sessions: how running operations announce themselves without blocking anyone.
//!
//! A session (a backup, prune, repair or snapshot rewrite) creates lock records in `locks/` and never
//! changes or removes one, so it needs only permission to create files. It
//! writes a record when it starts, another once it has read the prune marks
//! (naming them), one every [`REFRESH`] while it runs, and one when it ends.
//! A prune reads them to learn which operations could still use what a mark
//! condemns (SPEC.md §15). Nothing ever waits for a lock: a session whose
//! process is gone (same host), that has not written a record for
//! [`STALE_AFTER`], or whose record is dated more than [`MAX_CLOCK_SKEW`]
//! ahead counts as ended, and `unlock` removes it. A record that cannot be
//! read is judged by its file's storage time the same way.

use crate::backend::{unique_prefix, FileKind};
use crate::error::{Error, Result};
pub use crate::repo::lease::{Session, MAX_CLOCK_SKEW, REFRESH, STALE_AFTER};
use crate::repository::Repository;
use cairn_format::lock::{LockRecord, Operation, SessionState};
use cairn_format::{LockId, MarkId, PackId, Timestamp};
use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether a session may still be working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It may still be running.
    Running,
    /// It wrote its final record.
    Ended,
    /// It is gone without a final record; the reason says how that is known.
    Stale(String),
}

/// One session as its lock records describe it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Its newest record.
    pub latest: LockRecord,
    /// Every mark any of its records names.
    pub seen_marks: Vec<MarkId>,
    /// Its record files.
    pub records: Vec<LockId>,
    /// Whether it may still be running.
    pub liveness: Liveness,
}

impl SessionInfo {
    /// The session's ID in hex, as `cairn unlock --session` takes it.
    pub fn id_hex(&self) -> String {
        hex::encode(self.latest.session)
    }

    /// True when the session has ended or is known to be gone.
    pub fn is_over(&self) -> bool {
        self.liveness != Liveness::Running
    }

    /// True when the session read `mark` before it read the index.
    pub fn has_seen(&self, mark: &MarkId) -> bool {
        self.seen_marks.contains(mark)
    }
}

/// A lock record that cannot be read.
#[derive(Debug)]
pub struct Unreadable {
    /// The record file.
    pub id: LockId,
    /// Why.
    pub error: Error,
    /// What the file's storage time says: `Running` while it may be the
    /// newest record of a running session, `Stale` once it is too old (or
    /// dated too far ahead) for that.
    pub liveness: Liveness,
}

impl Unreadable {
    /// True when it cannot be a running session's newest record.
    pub fn is_over(&self) -> bool {
        self.liveness != Liveness::Running
    }
}

/// Every session with records in the repository, and the records that
/// cannot be read.
pub fn sessions(repo: &Repository) -> Result<(Vec<SessionInfo>, Vec<Unreadable>)> {
    let mut by_session: BTreeMap<[u8; 16], Vec<(LockId, LockRecord)>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    let now = Timestamp::now();
    for name in repo.backend().list(FileKind::Lock)? {
        let id = LockId::from_hex(&name).expect("backends list only hex IDs");
        let record = repo.read_verified(FileKind::Lock, &name).and_then(|b| {
            LockRecord::open(&b, repo.keys())
                .map_err(|e| Error::format(format!("lock record {name}"), e))
        });
        match record {
            Ok(r) => by_session.entry(r.session).or_default().push((id, r)),
            // Removed by its owner's prune or by unlock since the listing.
            Err(Error::Missing(_)) => {}
            Err(error) => {
                let liveness = match repo.backend().modified(FileKind::Lock, &name) {
                    Ok(t) => stale_by_clock(epoch_secs(t), now)
                        .map_or(Liveness::Running, Liveness::Stale),
                    Err(Error::Missing(_)) => continue,
                    // Its time cannot be read either: it may be recent.
                    Err(_) => Liveness::Running,
                };
                unreadable.push(Unreadable {
                    id,
                    error,
                    liveness,
                })
            }
        }
    }
    let host = crate::sysinfo::hostname();
    let sessions = by_session
        .into_values()
        .map(|mut records| {
            records.sort_by_key(|(_, r)| (r.state == SessionState::Ended, r.written));
            let mut seen_marks: Vec<MarkId> = records
                .iter()
                .flat_map(|(_, r)| r.seen_marks.iter().copied())
                .collect();
            seen_marks.sort();
            seen_marks.dedup();
            let latest = records.last().expect("a session has a record").1.clone();
            SessionInfo {
                liveness: liveness(&latest, &host, now),
                latest,
                seen_marks,
                records: records.into_iter().map(|(id, _)| id).collect(),
            }
        })
        .collect();
    Ok((sessions, unreadable))
}

/// Whether the session whose newest record is `latest` may still run.
fn liveness(latest: &LockRecord, host: &str, now: Timestamp) -> Liveness {
    if latest.state == SessionState::Ended {
        return Liveness::Ended;
    }
    // The clock judges on every host, this one included: a live session
    // writes a record every REFRESH and commits nothing after a lapse, so
    // only a gone or forged one is silent for long or dated ahead.
    let last = latest.started.secs.max(latest.written.secs);
    if let Some(why) = stale_by_clock(last, now) {
        return Liveness::Stale(why);
    }
    if latest.hostname == host {
        return match process_started(latest.pid) {
            None => Liveness::Stale(format!("process {} is gone", latest.pid)),
            // The number was given to another process since.
            Some(t) if t > latest.started.secs.saturating_add(2) => Liveness::Stale(format!(
                "process {} is gone (its number belongs to a newer process)",
                latest.pid
            )),
            Some(_) => Liveness::Running,
        };
    }
    Liveness::Running
}

/// Why something last written at `last` (seconds since the epoch) can no
/// longer be a running session's newest record by the clock alone: written
/// more than [`STALE_AFTER`] before `now`, or dated more than
/// [`MAX_CLOCK_SKEW`] after it. `None` while it may be.
fn stale_by_clock(last: i64, now: Timestamp) -> Option<String> {
    let age = now.secs.saturating_sub(last);
    if age < -(MAX_CLOCK_SKEW.as_secs() as i64) {
        Some(format!(
            "dated {} minutes in the future",
            age.unsigned_abs() / 60
        ))
    } else if age > STALE_AFTER.as_secs() as i64 {
        Some(format!("last written {} minutes ago", age / 60))
    } else {
        None
    }
}

/// Whole seconds from the epoch to `t` (negative before it).
fn epoch_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// When the process with this ID on this host started (seconds since the
/// epoch), or `None` if there is no such process. Where the start time
/// cannot be read, an existing process counts as started at the epoch.
fn process_started(pid: u32) -> Option<i64> {
    let pid = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return None;
    }
    Some(start_time(pid).unwrap_or(0))
}

/// A process's start from /proc: field 22 of its `stat` (clock ticks after
/// boot) and the boot time in /proc/stat.
fn start_time(pid: libc::pid_t) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: i64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| boot + ticks / hz as i64)
}

/// Fails unless every one of `packs` is on storage (one listing), naming
/// one that is not. An operation that is about to commit work using these
/// packs (those it wrote and those it deduplicated against) calls it: a
/// prune deletes them only if it took the operation's session for over,
/// which a forged or removed lock record can make it do (SPEC.md §15.5).
pub(crate) fn confirm_packs(repo: &Repository, packs: &HashSet<PackId>, what: &str) -> Result<()> {
    let stored: HashSet<String> = repo.backend().list(FileKind::Pack)?.into_iter().collect();
    let mut missing: Vec<&PackId> = packs
        .iter()
        .filter(|p| !stored.contains(&p.to_hex()))
        .collect();
    missing.sort();
    match missing.first() {
        Some(p) => Err(Error::Invalid(format!(
            "pack {} that this {what} uses has vanished from storage: a prune probably deleted it while the {what} ran; nothing was committed, run the {what} again",
            p.to_hex()
        ))),
        None => Ok(()),
    }
}

/// Every session but `me`, and the records that cannot be read but are too
/// old to matter. A recent record that cannot be read may belong to a
/// running session, so it is an error here: prune and repair must know.
pub(crate) fn others(
    repo: &Repository,
    me: Option<[u8; 16]>,
) -> Result<(Vec<SessionInfo>, Vec<Unreadable>)> {
    let (sessions, unreadable) = sessions(repo)?;
    if let Some(u) = unreadable.iter().find(|u| !u.is_over()) {
        return Err(Error::Invalid(format!(
            "{}; written less than {} minutes ago, it may belong to a running session: wait until it is older, or remove it with `cairn unlock --remove-unreadable`",
            u.error,
            STALE_AFTER.as_secs() / 60
        )));
    }
    let others = sessions
        .into_iter()
        .filter(|s| Some(s.latest.session) != me)
        .collect();
    Ok((others, unreadable))
}

/// Fails if one of `others` is a prune or repair that may still run: those
/// change what other maintenance relies on, so only one runs at a time.
pub fn refuse_beside_maintenance(others: &[SessionInfo]) -> Result<()> {
    let busy = others.iter().find(|s| {
        matches!(s.latest.operation, Operation::Prune | Operation::Repair) && !s.is_over()
    });
    match busy {
        Some(s) => {
            let id = s.id_hex();
            Err(Error::Invalid(format!(
                "another prune or repair is running (session {id}, host {}, pid {}, user {}); if you know it is gone, run `cairn unlock --session {id}`",
                s.latest.hostname, s.latest.pid, s.latest.username
            )))
        }
        None => Ok(()),
    }
}

/// What [`unlock`] removed.
#[derive(Debug, Default)]
pub struct Unlocked {
    /// Sessions whose records were removed: ended, or gone without ending.
    pub sessions: Vec<SessionInfo>,
    /// Records that could not be read, removed: those too old to belong to
    /// a running session, and with `unreadable` every one.
    pub unreadable: Vec<Unreadable>,
    /// Sessions that may still be running, left alone.
    pub running: Vec<SessionInfo>,
    /// Recent records that could not be read, left alone.
    pub unreadable_left: Vec<Unreadable>,
}

/// Removes the lock records of every session that is over (ended or
/// stale), the records that cannot be read and are too old to belong to a
/// running session and, with `unreadable`, the recent ones too. Refuses
/// while a prune or repair runs.
pub fn unlock(repo: &Repository, unreadable: bool) -> Result<Unlocked> {
    let (sessions, damaged) = sessions(repo)?;
    // A running prune relies on the records it has listed staying there.
    refuse_beside_maintenance(&sessions)?;
    let (over, running): (Vec<_>, Vec<_>) = sessions.into_iter().partition(|s| s.is_over());
    remove_records(repo, &over)?;
    let mut out = Unlocked {
        sessions: over,
        running,
        ..Unlocked::default()
    };
    for u in damaged {
        if unreadable || u.is_over() {
            remove_record(repo, &u.id)?;
            out.unreadable.push(u);
        } else {
            out.unreadable_left.push(u);
        }
    }
    Ok(out)
}

/// Removes every record of the one session whose ID starts with the hex
/// digits `prefix`, even if it seems to be running, and returns it: the
/// operator's way out when a session is known to be gone but does not look
/// it yet, such as a prune on a host that died. Allowed beside a running
/// prune, which counts a session whose records vanish as still running.
pub fn unlock_session(repo: &Repository, prefix: &str) -> Result<SessionInfo> {
    let (sessions, _) = sessions(repo)?;
    let ids = sessions.iter().map(SessionInfo::id_hex).collect();
    let id = match unique_prefix(ids, prefix) {
        Ok(Some(id)) => id,
        Ok(None) => {
            return Err(Error::Invalid(format!(
                "no session's ID starts with {prefix:?}: `cairn unlock` lists the sessions"
            )))
        }
        Err(n) => {
            return Err(Error::Invalid(format!(
                "session prefix {prefix:?} is ambiguous: it matches {n} sessions"
            )))
        }
    };
    let session = sessions
        .into_iter()
        .find(|s| s.id_hex() == id)
        .expect("the prefix matched one of these");
    remove_records(repo, std::slice::from_ref(&session))?;
    Ok(session)
}

/// Removes every record of these sessions.
pub(crate) fn remove_records(repo: &Repository, sessions: &[SessionInfo]) -> Result<()> {
    for id in sessions.iter().flat_map(|s| &s.records) {
        remove_record(repo, id)?;
    }
    Ok(())
}

fn remove_record(repo: &Repository, id: &LockId) -> Result<()> {
    match repo.backend().remove(FileKind::Lock, &id.to_hex()) {
        Err(Error::Missing(_)) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32, started: i64, state: SessionState) -> LockRecord {
        let t = Timestamp {
            secs: started,
            nanos: 0,
        };
        LockRecord {
            version: 1,
            session: [1; 16],
            operation: Operation::Backup,
            hostname: "here".into(),
            pid,
            username: "u".into(),
            started: t,
            written: t,
            state,
            seen_marks: vec![],
        }
    }

    #[test]
    fn liveness_follows_the_process_its_start_and_the_clock() {
        let now = Timestamp::now();
        let me = std::process::id();
        let live = |r: &LockRecord, host: &str| liveness(r, host, now);
        assert_eq!(
            live(&record(me, now.secs, SessionState::Running), "here"),
            Liveness::Running
        );
        assert_eq!(
            live(&record(me, now.secs, SessionState::Ended), "here"),
            Liveness::Ended
        );
        // This process started after a session 25 minutes old (this test
        // runs sooner after its start): its number was reused.
        let reused = record(me, now.secs - 25 * 60, SessionState::Running);
        assert!(
            matches!(live(&reused, "here"), Liveness::Stale(why) if why.contains("newer process"))
        );
        // No process has this number (above the kernel's limit).
        let gone = record(u32::MAX / 2, now.secs, SessionState::Running);
        assert!(matches!(live(&gone, "here"), Liveness::Stale(_)));
        // On another host only time tells.
        assert_eq!(live(&reused, "elsewhere"), Liveness::Running);
        let old = record(me, now.secs - 10 * 86_400, SessionState::Running);
        assert_eq!(
            live(&old, "elsewhere"),
            Liveness::Stale("last written 14400 minutes ago".into())
        );
        let recent = record(1, now.secs - 60, SessionState::Running);
        assert_eq!(live(&recent, "elsewhere"), Liveness::Running);
    }

    #[test]
    fn silence_ends_a_session_on_this_host_too_whatever_its_process() {
        let now = Timestamp::now();
        // Process 1 always runs, and started long before this record: only
        // the silence tells that whoever wrote it is gone.
        let silent = record(1, now.secs - 31 * 60, SessionState::Running);
        assert_eq!(
            liveness(&silent, "here", now),
            Liveness::Stale("last written 31 minutes ago".into())
        );
        let recent = record(1, now.secs - 29 * 60, SessionState::Running);
        assert_eq!(liveness(&recent, "elsewhere", now), Liveness::Running);
    }

    #[test]
    fn a_record_dated_past_the_clock_skew_never_blocks() {
        let now = Timestamp::now();
        let at = |secs| Timestamp { secs, nanos: 0 };
        // 2100-01-01: stale at once, on any host, whatever its process.
        let future = record(std::process::id(), 4_102_444_800, SessionState::Running);
        for host in ["here", "elsewhere"] {
            assert!(
                matches!(liveness(&future, host, now), Liveness::Stale(why) if why.contains("in the future")),
                "{host}"
            );
        }
        // Within the skew allowed a record counts, until it has been silent
        // for STALE_AFTER: it blocks for STALE_AFTER + MAX_CLOCK_SKEW at most.
        let skew = MAX_CLOCK_SKEW.as_secs() as i64;
        let ahead = record(1, now.secs + skew - 1, SessionState::Running);
        assert_eq!(liveness(&ahead, "elsewhere", now), Liveness::Running);
        let later = at(ahead.written.secs + STALE_AFTER.as_secs() as i64);
        assert_eq!(liveness(&ahead, "elsewhere", later), Liveness::Running);
        assert!(matches!(
            liveness(&ahead, "elsewhere", at(later.secs + 61)),
            Liveness::Stale(_)
        ));
        let beyond = record(1, now.secs + skew + 60, SessionState::Running);
        assert!(matches!(
            liveness(&beyond, "elsewhere", now),
            Liveness::Stale(_)
        ));
        // Started in the future but written now: the later of the two counts.
        let mut started_ahead = record(1, now.secs, SessionState::Running);
        started_ahead.started = at(now.secs + skew + 60);
        assert!(matches!(
            liveness(&started_ahead, "elsewhere", now),
            Liveness::Stale(_)
        ));
    }
}
