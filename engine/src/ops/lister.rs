//! Lists directories ahead of a backup's walk, on a thread of its own.
//!
//! Reading a directory and taking the lstat of each entry is most of the
//! work of a backup that finds little changed; the walk's own work
//! (comparing with the parent snapshot, encoding and hashing trees) goes on
//! meanwhile on the other core. The walk asks for the subdirectories it is
//! about to enter; the thread lists the one asked for last first, so it
//! follows the walk's depth-first order, and stays at most [`AHEAD`]
//! listings ahead of it. A listing older than [`FRESH`] is made again: a
//! snapshot is never much older than the walk that makes it.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Listings made and not yet taken, at most.
const AHEAD: usize = 16;
/// Listings made ahead are used for this long.
const FRESH: Duration = Duration::from_secs(1);

/// A directory's entries sorted by name, each with its lstat, and the
/// errors met while reading it.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub entries: Vec<(Vec<u8>, std::io::Result<Metadata>)>,
    pub errors: Vec<std::io::Error>,
}

/// Lists `dir`: each entry's lstat is taken relative to the open directory
/// (`fstatat`), which spares the kernel a walk of the whole path.
pub(crate) fn list(dir: &Path) -> Listing {
    let mut listing = Listing::default();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                match entry {
                    Ok(e) => listing
                        .entries
                        .push((e.file_name().as_bytes().to_vec(), e.metadata())),
                    Err(e) => listing.errors.push(e),
                }
            }
        }
        Err(e) => listing.errors.push(e),
    }
    listing.entries.sort_by(|a, b| a.0.cmp(&b.0));
    listing
}

#[derive(Default)]
struct State {
    /// Directories to list, the last first; those no longer in `queued`
    /// are passed over (taken or forgotten meanwhile).
    wanted: Vec<PathBuf>,
    /// The directories of `wanted` still to list.
    queued: HashSet<PathBuf>,
    /// The directory being listed.
    listing: Option<PathBuf>,
    /// Set when the directory being listed is forgotten meanwhile.
    dropped: bool,
    /// Listings made and not yet taken, with when each was made.
    done: HashMap<PathBuf, (Instant, Listing)>,
    closed: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The listing thread, and what the walk shares with it.
pub(crate) struct Lister {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

/// The state; whoever panicked holding it left it whole (no step of theirs
/// leaves it half-changed), and a walk that panics still stops the thread.
fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lister {
    /// Starts the listing thread.
    pub(crate) fn start() -> Lister {
        let shared: Shared = Arc::default();
        let thread = {
            let shared = shared.clone();
            std::thread::spawn(move || run(&shared))
        };
        Lister {
            shared,
            thread: Some(thread),
        }
    }

    /// Asks for `dirs` to be listed ahead of the walk, the first soonest.
    pub(crate) fn ahead<'a>(&self, dirs: impl DoubleEndedIterator<Item = &'a Path>) {
        let mut state = lock(&self.shared);
        for dir in dirs.rev() {
            let new = !state.queued.contains(dir)
                && !state.done.contains_key(dir)
                && state.listing.as_deref() != Some(dir);
            if new {
                state.queued.insert(dir.to_path_buf());
                state.wanted.push(dir.to_path_buf());
            }
        }
        self.shared.1.notify_all();
    }

    /// The listing of `dir`: the one made ahead (waiting while it is being
    /// made), or one made now.
    pub(crate) fn take(&self, dir: &Path) -> Listing {
        let mut state = lock(&self.shared);
        loop {
            if let Some((made, listing)) = state.done.remove(dir) {
                self.shared.1.notify_all();
                if made.elapsed() < FRESH {
                    return listing;
                }
                drop(state);
                return list(dir);
            }
            if state.listing.as_deref() != Some(dir) {
                state.queued.remove(dir);
                drop(state);
                return list(dir);
            }
            state = self
                .shared
                .1
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Forgets `dirs`, asked for and not taken (the walk did not enter
    /// them): their listings are dropped, or not made.
    pub(crate) fn forget<'a>(&self, dirs: impl Iterator<Item = &'a Path>) {
        let mut state = lock(&self.shared);
        for dir in dirs {
            state.queued.remove(dir);
            state.done.remove(dir);
            if state.listing.as_deref() == Some(dir) {
                state.dropped = true;
            }
        }
        self.shared.1.notify_all();
    }
}

impl Drop for Lister {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The listing thread: lists the directory asked for last, while fewer
/// than [`AHEAD`] listings wait to be taken.
fn run(shared: &Shared) {
    let mut state = lock(shared);
    loop {
        if state.closed {
            return;
        }
        let next = match state.done.len() < AHEAD {
            true => state.wanted.pop(),
            false => None,
        };
        let Some(dir) = next else {
            state = shared.1.wait(state).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        if !state.queued.remove(&dir) {
            continue;
        }
        state.listing = Some(dir.clone());
        drop(state);
        let listing = list(&dir);
        state = lock(shared);
        state.listing = None;
        if std::mem::take(&mut state.dropped) {
            shared.1.notify_all();
            continue;
        }
        state.done.insert(dir, (Instant::now(), listing));
        shared.1.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(listing: &Listing) -> Vec<(Vec<u8>, bool)> {
        listing
            .entries
            .iter()
            .map(|(n, m)| (n.clone(), m.as_ref().unwrap().is_dir()))
            .collect()
    }

    #[test]
    fn listings_made_ahead_are_those_made_now_in_any_order_and_forgotten_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut dirs = Vec::new();
        for i in 0..40 {
            let d = dir.path().join(format!("d{i:02}"));
            std::fs::create_dir(&d).unwrap();
            for j in 0..(i % 5) {
                std::fs::write(d.join(format!("f{j}")), b"x").unwrap();
            }
            std::fs::create_dir(d.join("sub")).unwrap();
            dirs.push(d);
        }
        let lister = Lister::start();
        lister.ahead(dirs.iter().map(PathBuf::as_path));
        // Taken out of the order asked for, and one never asked for.
        for d in dirs.iter().rev().step_by(2) {
            let taken = lister.take(d);
            assert!(taken.errors.is_empty());
            assert_eq!(names(&taken), names(&list(d)), "{d:?}");
            assert_eq!(
                taken.entries.len(),
                1 + dirs.iter().position(|x| x == d).unwrap() % 5
            );
        }
        assert_eq!(names(&lister.take(dir.path())).len(), 40);
        lister.forget(dirs.iter().map(PathBuf::as_path));
        {
            let state = lock(&lister.shared);
            assert!(state.queued.is_empty() && state.done.is_empty());
        }
        // A directory that cannot be read gives its error, ahead or not.
        let gone = dir.path().join("gone");
        lister.ahead([gone.as_path()].into_iter());
        assert_eq!(lister.take(&gone).errors.len(), 1);
        assert_eq!(list(&gone).errors.len(), 1);
    }

    #[test]
    fn a_listing_made_long_before_it_is_taken_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let lister = Lister::start();
        lister.ahead([dir.path()].into_iter());
        while !lock(&lister.shared).done.contains_key(dir.path()) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::write(dir.path().join("new"), b"x").unwrap();
        std::thread::sleep(FRESH + Duration::from_millis(50));
        assert_eq!(
            names(&lister.take(dir.path())),
            vec![(b"new".to_vec(), false)]
        );
    }
}
