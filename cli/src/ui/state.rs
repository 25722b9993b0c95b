//! What the dashboard shows, read from the repositories and kept between
//! requests: each repository open with its snapshot list, and the policy's
//! status, each read again once older than the refresh interval.

use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};
use cairn_recovery::status::{assess, Status};
use cairn_recovery::Policy;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Opens a repository, each call anew.
pub type Opener = Box<dyn Fn() -> anyhow::Result<Repository> + Send + Sync>;

/// A repository as read: open, with its snapshots, oldest first.
pub struct Read {
    pub repo: Arc<Repository>,
    pub snapshots: Vec<(SnapshotId, Snapshot)>,
}

impl Read {
    /// The snapshot with this full ID.
    pub fn snapshot(&self, id: &str) -> Option<&(SnapshotId, Snapshot)> {
        self.snapshots.iter().find(|(s, _)| s.to_hex() == id)
    }
}

/// The status of the policy's sources, or why it could not be assessed.
pub type Assessed = Arc<Result<Status, String>>;

/// One repository the dashboard shows, and when it was last read.
pub struct Repo {
    open: Opener,
    read: Mutex<Option<(Instant, Arc<Read>)>>,
}

/// The dashboard's data: the repositories by name, and the policy they
/// come from, if any.
pub struct Ui {
    pub repos: BTreeMap<String, Repo>,
    pub policy: Option<(PathBuf, Policy)>,
    refresh: Duration,
    status: Mutex<Option<(Instant, Assessed)>>,
}

impl Ui {
    /// A dashboard of `repos`, from `policy` when there is one, reading
    /// each again when what it holds is older than `refresh`.
    pub fn new(
        repos: Vec<(String, Opener)>,
        policy: Option<(PathBuf, Policy)>,
        refresh: Duration,
    ) -> Ui {
        let repos = repos
            .into_iter()
            .map(|(name, open)| {
                let repo = Repo {
                    open,
                    read: Mutex::new(None),
                };
                (name, repo)
            })
            .collect();
        Ui {
            repos,
            policy,
            refresh,
            status: Mutex::new(None),
        }
    }

    /// Repository `name` as read at most `refresh` ago; `None` when the
    /// dashboard has no repository of that name.
    pub fn read(&self, name: &str) -> Option<Result<Arc<Read>, String>> {
        let repo = self.repos.get(name)?;
        let mut read = repo.read.lock().unwrap_or_else(PoisonError::into_inner);
        match read.as_ref() {
            Some((at, r)) if at.elapsed() < self.refresh => return Some(Ok(r.clone())),
            _ => {}
        }
        let fresh = reread(&repo.open, read.as_ref().map(|(_, r)| r.as_ref()));
        Some(fresh.map(|r| read.insert((Instant::now(), Arc::new(r))).1.clone()))
    }

    /// Repository `name` opened anew, for an action that changes it.
    pub fn open(&self, name: &str) -> Result<Repository, String> {
        let repo = self
            .repos
            .get(name)
            .ok_or_else(|| format!("no repository {name}"))?;
        (repo.open)().map_err(|e| crate::one_line(&e))
    }

    /// Has the next page read everything again: after an action changed
    /// the repositories.
    pub fn read_again(&self) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = None;
        for repo in self.repos.values() {
            let mut read = repo.read.lock().unwrap_or_else(PoisonError::into_inner);
            match (read.as_mut(), Instant::now().checked_sub(self.refresh)) {
                (Some((at, _)), Some(stale)) => *at = stale,
                _ => *read = None,
            }
        }
    }

    /// The status of the policy's sources (as `cairn status --json` gives
    /// it), assessed at most `refresh` ago; `None` without a policy.
    pub fn status(&self) -> Option<Assessed> {
        let (_, policy) = self.policy.as_ref()?;
        let mut cached = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some((at, s)) if at.elapsed() < self.refresh => return Some(s.clone()),
            _ => {}
        }
        let status = assess(policy, &[], Timestamp::now(), |name, _| {
            self.read(name)
                .unwrap_or_else(|| Err(format!("no repository {name}")))
                .map(|r| r.repo.clone())
        });
        Some(cached.insert((Instant::now(), Arc::new(status))).1.clone())
    }
}

/// Reads a repository again: its snapshots with the open repository of
/// `last`, opened anew when it has snapshots `last` did not (their data may
/// be in index files written since).
fn reread(open: &Opener, last: Option<&Read>) -> Result<Read, String> {
    let one_line = |e: anyhow::Error| crate::one_line(&e);
    if let Some(last) = last {
        let snapshots = last.repo.snapshots().map_err(|e| e.to_string())?;
        let known: HashSet<&SnapshotId> = last.snapshots.iter().map(|(id, _)| id).collect();
        if snapshots.iter().all(|(id, _)| known.contains(id)) {
            return Ok(Read {
                repo: last.repo.clone(),
                snapshots,
            });
        }
    }
    let repo = open().map_err(one_line)?;
    let snapshots = repo.snapshots().map_err(|e| e.to_string())?;
    Ok(Read {
        repo: Arc::new(repo),
        snapshots,
    })
}
