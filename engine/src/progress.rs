//! Counters that long operations advance as they work, for a display to poll.
//!
//! An operation given a [`Progress`] adds to it with relaxed atomic additions
//! (a few per file or chunk, so the cost does not show); a display thread
//! reads [`Progress::counts`] a few times a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// How far an operation has come, and how far it has to go. Every count only grows.
#[derive(Debug, Default)]
pub struct Progress {
    items: AtomicU64,
    bytes: AtomicU64,
    total_items: AtomicU64,
    total_bytes: AtomicU64,
    total_known: AtomicBool,
}

/// A reading of a [`Progress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items (files, or packs for a check) done.
    pub items: u64,
    /// Bytes done.
    pub bytes: u64,
    /// Items expected so far.
    pub total_items: u64,
    /// Bytes expected so far.
    pub total_bytes: u64,
    /// True once the totals are final.
    pub total_known: bool,
}

impl Progress {
    /// Records `items` and `bytes` as done.
    pub fn done(&self, items: u64, bytes: u64) {
        if items > 0 {
            self.items.fetch_add(items, Relaxed);
        }
        if bytes > 0 {
            self.bytes.fetch_add(bytes, Relaxed);
        }
    }

    /// Adds `items` and `bytes` to the work expected.
    pub fn expect(&self, items: u64, bytes: u64) {
        self.total_items.fetch_add(items, Relaxed);
        self.total_bytes.fetch_add(bytes, Relaxed);
    }

    /// Marks the totals as final.
    pub fn total_complete(&self) {
        self.total_known.store(true, Relaxed);
    }

    /// The counts now.
    pub fn counts(&self) -> Counts {
        Counts {
            items: self.items.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            total_items: self.total_items.load(Relaxed),
            total_bytes: self.total_bytes.load(Relaxed),
            total_known: self.total_known.load(Relaxed),
        }
    }
}

/// Records work done on an optional [`Progress`].
pub(crate) fn done(progress: &Option<std::sync::Arc<Progress>>, items: u64, bytes: u64) {
    if let Some(p) = progress {
        p.done(items, bytes);
    }
}
