//! Reads of remote packs for a restore, in windows wider than a job asks for.
//!
//! A restore walks the tree in the order the backup stored it, so the jobs
//! that follow one another read the same packs at increasing offsets, each a
//! little. Against remote storage, where a request costs a round trip, each
//! read becomes a window of [`WIDTH`] bytes from where it starts, kept for
//! the jobs that come next; a worker wanting bytes of a window still on its
//! way waits for it rather than asking again. Once a window serves a second
//! read, the reads look sequential, and the worker that served it fetches
//! the next window before going on, so that the others find it ready. A
//! window that cannot be read
//! is forgotten, and its readers read alone, to get their own errors. Bytes
//! served from a window are authenticated like any others by the caller.

use crate::backend::{Backend, FileKind};
use crate::error::Result;
use cairn_format::PackId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Bytes read at once from a pack; reads longer than this go alone.
pub(super) const WIDTH: u64 = 4 << 20;

/// Bytes of one pack from `start` to `end`, once read (`None` if the read failed).
struct Window {
    pack: String,
    start: u64,
    end: u64,
    bytes: Slot,
    /// Reads served so far.
    uses: AtomicU32,
}

/// The bytes of a window once read (`None` inside if the read failed), for
/// which readers wait.
#[derive(Default)]
struct Slot {
    filled: Mutex<Option<Option<Vec<u8>>>>,
    ready: Condvar,
}

impl Slot {
    fn set(&self, bytes: Option<Vec<u8>>) {
        *self.filled.lock().expect("not poisoned") = Some(bytes);
        self.ready.notify_all();
    }

    /// `f` of the bytes, once they are set.
    fn wait<T>(&self, f: impl FnOnce(Option<&[u8]>) -> T) -> T {
        let filled = self.filled.lock().expect("not poisoned");
        let filled = self
            .ready
            .wait_while(filled, |f| f.is_none())
            .expect("not poisoned");
        f(filled.as_ref().and_then(|b| b.as_deref()))
    }
}

/// Windowed reads of packs from `backend`, keeping the latest `keep` windows.
pub(super) struct Windows<'r> {
    backend: &'r dyn Backend,
    keep: usize,
    /// How far into each pack (by hex ID) a window may reach: where the
    /// last blob the index lists in it ends. Nothing beyond is ever wanted,
    /// so no request is spent on a pack's size.
    ends: HashMap<String, u64>,
    /// The windows kept, newest last.
    kept: Mutex<VecDeque<Arc<Window>>>,
}

impl<'r> Windows<'r> {
    pub(super) fn new(backend: &'r dyn Backend, keep: usize, ends: &HashMap<PackId, u64>) -> Self {
        Windows {
            backend,
            keep,
            ends: ends.iter().map(|(p, end)| (p.to_hex(), *end)).collect(),
            kept: Mutex::default(),
        }
    }

    /// `len` bytes of `pack` at `offset`.
    pub(super) fn read(&self, pack: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let alone = || self.backend.read_at(FileKind::Pack, pack, offset, len);
        let end = offset.saturating_add(len);
        if len > WIDTH {
            return alone();
        }
        let Some(&size) = self.ends.get(pack) else {
            return alone();
        };
        if end > size {
            return alone();
        }
        let (window, mine) = self.window(pack, offset, end, size);
        if mine {
            self.fetch(&window);
        }
        let at = (offset - window.start) as usize;
        let copied = window
            .bytes
            .wait(|bytes| bytes.map(|b| b[at..at + len as usize].to_vec()));
        let read = copied.map_or_else(alone, Ok);
        if window.uses.fetch_add(1, Ordering::Relaxed) == 1 && window.end < size {
            let (next, mine) = self.window(pack, window.end, window.end, size);
            if mine {
                self.fetch(&next);
            }
        }
        read
    }

    /// The kept window of `pack` holding `start..end`, or else a new one
    /// from `start`, kept but not yet read (then the second value is true:
    /// the caller must fetch it).
    fn window(&self, pack: &str, start: u64, end: u64, size: u64) -> (Arc<Window>, bool) {
        let mut kept = self.kept.lock().expect("not poisoned");
        let found = kept
            .iter()
            .find(|w| w.pack == pack && w.start <= start && end <= w.end && start < w.end);
        if let Some(w) = found {
            return (w.clone(), false);
        }
        let w = Arc::new(Window {
            pack: pack.to_string(),
            start,
            end: start.saturating_add(WIDTH).min(size),
            bytes: Slot::default(),
            uses: AtomicU32::new(0),
        });
        kept.push_back(w.clone());
        if kept.len() > self.keep {
            kept.pop_front();
        }
        (w, true)
    }

    /// Reads the bytes of `window`; one that cannot be read is forgotten.
    fn fetch(&self, window: &Arc<Window>) {
        let read = self.backend.read_at(
            FileKind::Pack,
            &window.pack,
            window.start,
            window.end - window.start,
        );
        if read.is_err() {
            let mut kept = self.kept.lock().expect("not poisoned");
            kept.retain(|w| !Arc::ptr_eq(w, window));
        }
        window.bytes.set(read.ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gated::{Call, Gated};
    use crate::backend::LocalBackend;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn reads_in_one_window_cost_one_request_and_return_the_right_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalBackend::new(dir.path().join("repo"));
        inner.create_repository().unwrap();
        let bytes: Vec<u8> = (0..(WIDTH as usize + 5000))
            .map(|i| (i % 251) as u8)
            .collect();
        let name = hex::encode(cairn_format::id::storage_hash(&bytes));
        inner.create(FileKind::Pack, &name, &bytes).unwrap();
        let reads = AtomicU64::new(0);
        let backend = Gated {
            inner,
            gate: |call, _| {
                if call == Call::ReadAt {
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            },
        };
        let id = PackId(cairn_format::id::storage_hash(&bytes));
        let ends = HashMap::from([(id, bytes.len() as u64)]);
        let windows = Windows::new(&backend, 2, &ends);
        let mut at = 100u64;
        while at + 1000 <= WIDTH + 100 {
            let got = windows.read(&name, at, 1000).unwrap();
            assert_eq!(got, bytes[at as usize..at as usize + 1000]);
            at += 1000;
        }
        // The window, and at its second read the next one, fetched ahead
        // (the rest of the pack, cut at its end).
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        let tail = bytes.len() as u64 - 10;
        assert_eq!(
            windows.read(&name, tail, 10).unwrap(),
            bytes[tail as usize..]
        );
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // A read alone is not followed by one ahead.
        let lone = Windows::new(&backend, 2, &ends);
        assert_eq!(lone.read(&name, 0, 10).unwrap(), bytes[..10]);
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        // Past the end of the pack: read alone, which reports it.
        assert!(windows.read(&name, tail, 11).is_err());
    }
}
