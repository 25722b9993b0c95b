//! Repeating storage requests that failed for a passing reason.
//!
//! [`Retrying`] wraps any backend. A call that fails with a transient error
//! ([`Error::is_transient`]: a timeout, a dropped connection, a busy server,
//! a truncated answer) is made again after a growing, randomized pause, a
//! bounded number of times; any other failure is returned at once. Every
//! call of the [`Backend`] interface can be repeated safely: creates are
//! create-only and files are named by their content, so a create whose
//! answer was lost finds its own file on the next attempt.

use super::{Backend, FileKind, Staged};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How often and how patiently a failed request is repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The longest pause before the second attempt; it doubles for each
    /// attempt after.
    pub first_pause: Duration,
    /// The longest any pause can be.
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    /// Eight attempts, pausing up to 0.25, 0.5, 1, 2, 4, 8 and 16 s between
    /// them: a server that is back within half a minute loses no work.
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_pause: Duration::from_millis(250),
            max_pause: Duration::from_secs(16),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt` (2 for the first repeat): a
    /// random share of the doubling bound, so that many clients that
    /// failed together do not come back together.
    fn pause(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(20);
        let bound = self
            .first_pause
            .saturating_mul(1 << doublings)
            .min(self.max_pause);
        let random = RandomState::new().build_hasher().finish();
        bound.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A backend whose transient failures are repeated under a [`RetryPolicy`],
/// and counted.
pub struct Retrying<B> {
    inner: B,
    policy: RetryPolicy,
    retries: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

impl<B: Backend> Retrying<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, policy: RetryPolicy) -> Self {
        Retrying {
            inner,
            policy,
            retries: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        }
    }

    /// The requests repeated so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The most recent transient failure, for a summary.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().unwrap().clone()
    }

    /// Runs `request` until it succeeds, fails permanently or has used every
    /// attempt; `repeated` tells it whether an earlier attempt failed.
    fn run<T>(&self, mut request: impl FnMut(bool) -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            match request(attempt > 1) {
                Err(e) if e.is_transient() && attempt < self.policy.attempts => {
                    *self.last_failure.lock().unwrap() = Some(e.to_string());
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(self.policy.pause(attempt));
                }
                other => return other,
            }
        }
    }
}

impl<B: Backend> Retrying<B> {
    /// The outcome of an attempt to create `name` with `bytes`. The config
    /// is the one file not named by its content: a repeated attempt finding
    /// it may be finding what an earlier attempt, whose answer was lost,
    /// stored.
    fn settle(
        &self,
        created: Result<()>,
        repeated: bool,
        kind: FileKind,
        name: &str,
        bytes: &[u8],
    ) -> Result<()> {
        match created {
            Err(Error::RepositoryExists(at)) if repeated => {
                match self.inner.read(kind, name)? == bytes {
                    true => Ok(()),
                    false => Err(Error::RepositoryExists(at)),
                }
            }
            other => other,
        }
    }
}

impl<B: Backend> Backend for Retrying<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create_repository(&self) -> Result<()> {
        self.run(|_| self.inner.create_repository())
    }

    fn exists(&self) -> Result<bool> {
        self.run(|_| self.inner.exists())
    }

    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        self.run(|repeated| {
            let created = self.inner.create(kind, name, bytes);
            self.settle(created, repeated, kind, name, bytes)
        })
    }

    fn create_owned(&self, kind: FileKind, name: &str, bytes: Bytes) -> Result<()> {
        self.run(|repeated| {
            let created = self.inner.create_owned(kind, name, bytes.clone());
            self.settle(created, repeated, kind, name, &bytes)
        })
    }

    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        // Replacing again with the same bytes is the same replacement.
        self.run(|_| self.inner.replace(kind, name, bytes))
    }

    fn retain_for(&self, days: u32) -> Result<()> {
        self.run(|_| self.inner.retain_for(days))
    }

    fn retained_until(&self, kind: FileKind, name: &str) -> Result<Option<SystemTime>> {
        self.run(|_| self.inner.retained_until(kind, name))
    }

    fn can_retain(&self) -> bool {
        self.inner.can_retain()
    }

    fn keep(&self, kind: FileKind, names: &[String]) -> Result<()> {
        self.run(|_| self.inner.keep(kind, names))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.run(|_| self.inner.read(kind, name))
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.run(|_| self.inner.read_at(kind, name, offset, length))
    }

    fn read_at_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.run(|_| self.inner.read_at_into(kind, name, offset, length, out))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.run(|_| self.inner.size(kind, name))
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        self.run(|_| self.inner.modified(kind, name))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        self.run(|_| self.inner.list(kind))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.run(|repeated| match self.inner.remove(kind, name) {
            // An attempt whose answer was lost may have removed it.
            Err(Error::Missing(_)) if repeated => Ok(()),
            other => other,
        })
    }

    fn requests_in_flight(&self) -> usize {
        self.inner.requests_in_flight()
    }

    fn will_read(&self, kind: FileKind, name: &str, offset: u64, length: u64) {
        self.inner.will_read(kind, name, offset, length)
    }

    /// Not repeated: storage that stages files is local, whose failures
    /// repeating does not mend.
    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>> {
        self.inner.stage(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use std::sync::atomic::AtomicU32;

    /// Fails the first `failures` calls of every kind with `error`.
    struct Flaky {
        inner: LocalBackend,
        _dir: tempfile::TempDir,
        failures: u32,
        calls: AtomicU32,
        error: fn() -> Error,
    }

    impl Flaky {
        fn gate(&self) -> Result<()> {
            match self.calls.fetch_add(1, Ordering::Relaxed) < self.failures {
                true => Err((self.error)()),
                false => Ok(()),
            }
        }
    }

    impl Backend for Flaky {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn create_repository(&self) -> Result<()> {
            self.inner.create_repository()
        }
        fn exists(&self) -> Result<bool> {
            self.inner.exists()
        }
        fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
            // The file is stored, but the answer is lost.
            self.inner.create(kind, name, bytes)?;
            self.gate()
        }
        fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
            // Replaced, but the answer is lost.
            self.inner.replace(kind, name, bytes)?;
            self.gate()
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
            self.gate()?;
            self.inner.read(kind, name)
        }
        fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
            self.gate()?;
            self.inner.read_at(kind, name, offset, len)
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.inner.size(kind, name)
        }
        fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
            self.inner.modified(kind, name)
        }
        fn list(&self, kind: FileKind) -> Result<Vec<String>> {
            self.inner.list(kind)
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
            // Removed, but the answer is lost.
            self.inner.remove(kind, name)?;
            self.gate()
        }
    }

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_pause: Duration::from_millis(1),
            max_pause: Duration::from_millis(4),
        }
    }

    fn flaky(failures: u32, error: fn() -> Error) -> Flaky {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalBackend::new(dir.path().join("repo"));
        inner.create_repository().unwrap();
        Flaky {
            inner,
            _dir: dir,
            failures,
            calls: AtomicU32::new(0),
            error,
        }
    }

    fn busy() -> Error {
        Error::Transient("503 Service Unavailable".into())
    }

    #[test]
    fn transient_failures_are_repeated_and_counted() {
        let b = Retrying::new(flaky(3, busy), quick(4));
        let id = "ab".repeat(32);
        b.create(FileKind::Key, &id, b"key").unwrap();
        assert_eq!(b.retries(), 3);
        assert_eq!(b.read(FileKind::Key, &id).unwrap(), b"key");
        assert_eq!(b.last_failure().unwrap(), "503 Service Unavailable");
        // A removal whose answer was lost is not taken for a missing file.
        let b = Retrying::new(flaky(1, busy), quick(4));
        b.inner.inner.create(FileKind::Key, &id, b"key").unwrap();
        b.remove(FileKind::Key, &id).unwrap();
        assert_eq!(b.retries(), 1);
        assert!(matches!(
            b.remove(FileKind::Key, &id),
            Err(Error::Missing(_))
        ));
    }

    #[test]
    fn a_config_stored_by_a_lost_attempt_is_this_create() {
        let b = Retrying::new(flaky(1, busy), quick(4));
        b.create(FileKind::Config, "config", b"mine").unwrap();
        assert_eq!(b.retries(), 1);
        let e = b.create(FileKind::Config, "config", b"other").unwrap_err();
        assert!(matches!(e, Error::RepositoryExists(_)), "{e}");
        // The same for bytes given away.
        let b = Retrying::new(flaky(1, busy), quick(4));
        let mine = Bytes::from_static(b"mine");
        b.create_owned(FileKind::Config, "config", mine).unwrap();
        assert_eq!(b.retries(), 1);
        let other = Bytes::from_static(b"other");
        let e = b
            .create_owned(FileKind::Config, "config", other)
            .unwrap_err();
        assert!(matches!(e, Error::RepositoryExists(_)), "{e}");
    }

    #[test]
    fn bytes_given_away_survive_repeated_attempts() {
        let b = Retrying::new(flaky(2, busy), quick(4));
        let id = "cd".repeat(32);
        let pack = Bytes::from(vec![9u8; 1000]);
        b.create_owned(FileKind::Pack, &id, pack).unwrap();
        assert_eq!(b.retries(), 2);
        assert_eq!(b.read(FileKind::Pack, &id).unwrap(), vec![9u8; 1000]);
    }

    #[test]
    fn attempts_are_bounded_and_permanent_failures_not_repeated() {
        let b = Retrying::new(flaky(10, busy), quick(3));
        let e = b.read(FileKind::Config, "config").unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!((b.retries(), b.inner.calls.load(Ordering::Relaxed)), (2, 3));
        let refused = || Error::StorageRefused("denied".into());
        let b = Retrying::new(flaky(10, refused), quick(3));
        assert!(b.read(FileKind::Config, "config").is_err());
        assert_eq!((b.retries(), b.inner.calls.load(Ordering::Relaxed)), (0, 1));
    }

    #[test]
    fn pauses_grow_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        for attempt in 2..12 {
            let bound = Duration::from_millis(250 << (attempt - 2)).min(p.max_pause);
            let pauses: Vec<Duration> = (0..50).map(|_| p.pause(attempt)).collect();
            assert!(pauses.iter().all(|d| *d <= bound), "{attempt}: {pauses:?}");
            assert!(pauses.iter().any(|d| *d != pauses[0]), "no jitter");
        }
    }
}
