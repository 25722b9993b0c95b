//! This process's session in a repository: the lock records that announce
//! it, written when it begins, refreshed every [`REFRESH`] while it runs
//! and once more when it ends (see [`crate::session`] for how other
//! processes read them).

use crate::backend::{store_file, Backend, FileKind};
use crate::error::{Error, Result};
use cairn_format::crypto::{random_array, MasterKeys};
use cairn_format::lock::{LockRecord, Operation, SessionState};
use cairn_format::{MarkId, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a running session writes a fresh record.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A session with no record this recent counts as gone, on any host.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// A record dated further ahead of this host's clock than this cannot come
/// from a host whose clock agrees with ours, as the protocol assumes: it is
/// forged or its clock is broken, and its session counts as gone.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(10 * 60);

/// What the refresh thread and the session share.
struct State {
    record: Mutex<LockRecord>,
    /// Wall-clock time of the last record stored: other hosts judge by it.
    stored: Mutex<Timestamp>,
    /// Set for good once two records were further apart than a prune on
    /// another host waits: such a prune may have gone ahead meanwhile.
    lapsed: AtomicBool,
    /// The records stored, oldest first: removed once the session ended.
    records: Mutex<Vec<[u8; 32]>>,
}

/// Records further apart than this may let another host take the session
/// for gone.
const LAPSE: Duration = Duration::from_secs(STALE_AFTER.as_secs() - REFRESH.as_secs());

/// Seconds from `from` to `to` on the wall clock (negative if it went back).
fn seconds_between(from: Timestamp, to: Timestamp) -> i64 {
    to.secs.saturating_sub(from.secs)
}

/// This process's session in one repository.
pub struct Session {
    backend: Arc<dyn Backend>,
    keys: Arc<MasterKeys>,
    state: Arc<State>,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl Session {
    /// Starts a session: writes its first record, then refreshes it in the background.
    pub(crate) fn begin(
        backend: Arc<dyn Backend>,
        keys: Arc<MasterKeys>,
        operation: Operation,
    ) -> Result<Session> {
        let now = Timestamp::now();
        let record = LockRecord {
            version: 1,
            session: random_array(),
            operation,
            hostname: crate::sysinfo::hostname(),
            pid: std::process::id(),
            username: crate::sysinfo::username(),
            started: now,
            written: now,
            state: SessionState::Running,
            seen_marks: Vec::new(),
        };
        let first = store_file(&*backend, FileKind::Lock, &record.seal(&keys))?;
        let state = Arc::new(State {
            record: Mutex::new(record),
            stored: Mutex::new(now),
            lapsed: AtomicBool::new(false),
            records: Mutex::new(vec![first]),
        });
        let (stop, stopped) = channel::<()>();
        let refresher = {
            let (backend, keys, state) = (backend.clone(), keys.clone(), state.clone());
            std::thread::spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH) {
                    // A failed refresh shows in `check_fresh`.
                    let _ = write(&*backend, &keys, &state, |_| {});
                }
            })
        };
        Ok(Session {
            backend,
            keys,
            state,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    /// This session's random identifier.
    pub fn id(&self) -> [u8; 16] {
        self.state.record.lock().expect("not poisoned").session
    }

    /// Records that the session has read these prune marks (and so uses
    /// nothing they condemn).
    pub(crate) fn saw_marks(&self, marks: Vec<MarkId>) -> Result<()> {
        write(&*self.backend, &self.keys, &self.state, |r| {
            r.seen_marks = marks
        })
    }

    /// Fails if, at any time in this session, no record was stored for so
    /// long that a prune on another host may have taken the session for
    /// gone (the wall clock counts, so time suspended counts too); work done
    /// under it must then not be committed.
    pub fn check_fresh(&self) -> Result<()> {
        let since = seconds_between(
            *self.state.stored.lock().expect("not poisoned"),
            Timestamp::now(),
        );
        if self.state.lapsed.load(Ordering::SeqCst) || since >= LAPSE.as_secs() as i64 {
            return Err(Error::Invalid(
                "this operation went too long without refreshing its lock records: the repository may have changed under it, so nothing more is committed".into(),
            ));
        }
        Ok(())
    }

    /// Ends the session with a final record.
    pub fn end(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let Some(stop) = self.stop.take() else {
            return Ok(());
        };
        drop(stop);
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        write(&*self.backend, &self.keys, &self.state, |r| {
            r.state = SessionState::Ended
        })?;
        // The records have served their purpose: remove them, the final one
        // last, so that `locks/` does not grow with every backup. Best
        // effort: storage that only lets this key create files keeps them
        // for a prune or `unlock` to remove. A prune that listed the
        // session running and now misses it keeps waiting (SPEC.md §15.1).
        // The earlier ones go at once, so distant storage costs one round
        // trip for them, not one each.
        let records = std::mem::take(&mut *self.state.records.lock().expect("not poisoned"));
        let Some((last, earlier)) = records.split_last() else {
            return Ok(());
        };
        let remove = |id: &[u8; 32]| match self.backend.remove(FileKind::Lock, &hex::encode(id)) {
            Ok(()) | Err(Error::Missing(_)) => true,
            Err(_) => false,
        };
        let removed = std::thread::scope(|s| {
            let removals: Vec<_> = earlier.iter().map(|id| s.spawn(|| remove(id))).collect();
            removals.into_iter().all(|r| r.join().unwrap_or(false))
        });
        if removed {
            remove(last);
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Best effort: if the end cannot be recorded the session turns stale.
        let _ = self.finish();
    }
}

/// Stores a fresh record after `change`.
fn write(
    backend: &dyn Backend,
    keys: &MasterKeys,
    state: &State,
    change: impl FnOnce(&mut LockRecord),
) -> Result<()> {
    let now = Timestamp::now();
    let sealed = {
        let mut record = state.record.lock().expect("not poisoned");
        change(&mut record);
        record.written = now;
        record.seal(keys)
    };
    let id = store_file(backend, FileKind::Lock, &sealed)?;
    state.records.lock().expect("not poisoned").push(id);
    let mut stored = state.stored.lock().expect("not poisoned");
    if seconds_between(*stored, now) >= LAPSE.as_secs() as i64 {
        state.lapsed.store(true, Ordering::SeqCst);
    }
    *stored = now;
    Ok(())
}
