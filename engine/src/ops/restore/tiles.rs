//! Reads of remote packs for a restore, in tiles wider than a job asks for.
//!
//! Each pack is cut into tiles of [`WIDTH`] bytes at fixed offsets; the last
//! ends where the last blob the index lists in the pack ends, so no request
//! is spent on a pack's size. A read is served from the tiles it spans. A
//! tile is fetched once, by whoever wants it first, and kept for the jobs
//! that come next; others wanting it meanwhile wait for it rather than ask
//! again. Two ways keep the workers from waiting on the network: once a tile
//! serves its second read the reads look sequential, and its reader fetches
//! the next tile of the pack before going on; and the tree walk says which
//! tiles each job it queues will read ([`TileReader::expect`]), which fetching
//! threads read while the job waits for a worker. A tile that cannot be
//! read is forgotten, and its readers read alone, to get their own errors.
//! Bytes served from a tile are authenticated like any others by the caller.
//! The buffer of a tile no longer used holds the next one fetched: fresh
//! memory for each cost a page fault every 4 KiB.

use crate::backend::{Backend, FileKind};
use crate::error::Result;
use bytes::Bytes;
use cairn_format::PackId;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Bytes of a tile; reads longer than this go alone.
pub(super) const WIDTH: u64 = 4 << 20;

/// Bytes of one pack from `start` to `end`, once read (`None` if the read failed).
struct Tile {
    pack: String,
    start: u64,
    end: u64,
    bytes: Slot,
    /// Reads served so far.
    uses: AtomicU32,
}

/// The bytes of a tile once read (`None` inside if the read failed), for
/// which readers wait.
#[derive(Default)]
struct Slot {
    filled: Mutex<Option<Option<Bytes>>>,
    ready: Condvar,
}

impl Slot {
    fn set(&self, bytes: Option<Bytes>) {
        *self.filled.lock().expect("not poisoned") = Some(bytes);
        self.ready.notify_all();
    }

    /// `f` of the bytes, once they are set.
    fn wait<T>(&self, f: impl FnOnce(Option<&Bytes>) -> T) -> T {
        let filled = self.filled.lock().expect("not poisoned");
        let filled = self
            .ready
            .wait_while(filled, |f| f.is_none())
            .expect("not poisoned");
        f(filled.as_ref().and_then(|b| b.as_ref()))
    }
}

/// Tiled reads of packs from `backend`, keeping the latest `keep` tiles.
pub(super) struct TileReader<'r> {
    backend: &'r dyn Backend,
    keep: usize,
    /// How far into each pack (by hex ID) a tile may reach: where the last
    /// blob the index lists in it ends. Nothing beyond is ever wanted.
    ends: HashMap<String, u64>,
    tiles: Mutex<TileSet>,
    spare: Arc<Spare>,
}

/// Buffers of tiles no longer used, at most `keep` of them.
struct Spare {
    keep: usize,
    buffers: Mutex<Vec<Vec<u8>>>,
}

/// The bytes of a tile, whose buffer goes back to the spares when the
/// last slice of it is dropped.
struct Lent {
    bytes: Vec<u8>,
    spare: Arc<Spare>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut buffers = self.spare.buffers.lock().expect("not poisoned");
        if buffers.len() < self.spare.keep {
            buffers.push(std::mem::take(&mut self.bytes));
        }
    }
}

/// How many of the tiles made last are remembered.
const MADE: usize = 256;

#[derive(Default)]
struct TileSet {
    /// The tiles kept, newest last.
    kept: VecDeque<Arc<Tile>>,
    /// The [`MADE`] tiles made last, by pack and number, so that one
    /// announced late (after it was used and dropped) is not fetched again.
    made: VecDeque<(String, u64)>,
}

impl<'r> TileReader<'r> {
    pub(super) fn new(backend: &'r dyn Backend, keep: usize, ends: &HashMap<PackId, u64>) -> Self {
        TileReader {
            backend,
            keep,
            ends: ends.iter().map(|(p, end)| (p.to_hex(), *end)).collect(),
            tiles: Mutex::default(),
            spare: Arc::new(Spare {
                keep,
                buffers: Mutex::default(),
            }),
        }
    }

    /// `len` bytes of `pack` at `offset`: a slice of the tile that holds
    /// them, or a copy joining two.
    pub(super) fn read(&self, pack: &str, offset: u64, len: u64) -> Result<Bytes> {
        let alone = || {
            let read = self.backend.read_at(FileKind::Pack, pack, offset, len);
            read.map(Bytes::from)
        };
        let end = offset.saturating_add(len);
        match self.ends.get(pack) {
            Some(&size) if len > 0 && len <= WIDTH && end <= size => {
                let mut parts = Vec::new();
                for number in offset / WIDTH..=(end - 1) / WIDTH {
                    let (tile, mine) = self.tile(pack, number, size, false);
                    if mine {
                        self.fetch(&tile);
                    }
                    let (from, to) = (offset.max(tile.start), end.min(tile.end));
                    let range = (from - tile.start) as usize..(to - tile.start) as usize;
                    match tile.bytes.wait(|bytes| bytes.map(|b| b.slice(range))) {
                        Some(part) => parts.push(part),
                        None => return alone(),
                    }
                    if tile.uses.fetch_add(1, Ordering::Relaxed) == 1 && tile.end < size {
                        self.expect(pack, tile.end);
                    }
                }
                Ok(match parts.len() {
                    1 => parts.swap_remove(0),
                    _ => Bytes::from(parts.concat()),
                })
            }
            _ => alone(),
        }
    }

    /// Fetches the tile of `pack` holding `offset` now, unless it was
    /// made before (kept, on its way, or already used and dropped).
    pub(super) fn expect(&self, pack: &str, offset: u64) {
        let Some(&size) = self.ends.get(pack) else {
            return;
        };
        if offset < size {
            let (tile, mine) = self.tile(pack, offset / WIDTH, size, true);
            if mine {
                self.fetch(&tile);
            }
        }
    }

    /// The kept tile `number` of `pack`, or else a new one, kept but not
    /// yet read (then the second value is true: the caller must fetch it).
    /// With `once`, a tile made before is not made again: the caller gets
    /// a tile that is not its to fetch, and need not wait for it.
    fn tile(&self, pack: &str, number: u64, size: u64, once: bool) -> (Arc<Tile>, bool) {
        let mut tiles = self.tiles.lock().expect("not poisoned");
        let start = number * WIDTH;
        let found = tiles
            .kept
            .iter()
            .find(|t| t.pack == pack && t.start == start);
        if let Some(t) = found {
            return (t.clone(), false);
        }
        let made = tiles.made.iter().any(|(p, n)| p == pack && *n == number);
        if !made {
            if tiles.made.len() == MADE {
                tiles.made.pop_front();
            }
            tiles.made.push_back((pack.to_string(), number));
        }
        let t = Arc::new(Tile {
            pack: pack.to_string(),
            start,
            end: start.saturating_add(WIDTH).min(size),
            bytes: Slot::default(),
            uses: AtomicU32::new(0),
        });
        if once && made {
            return (t, false);
        }
        tiles.kept.push_back(t.clone());
        if tiles.kept.len() > self.keep {
            tiles.kept.pop_front();
        }
        (t, true)
    }

    /// Reads the bytes of `tile`; one that cannot be read is forgotten.
    fn fetch(&self, tile: &Arc<Tile>) {
        let spare = self.spare.buffers.lock().expect("not poisoned").pop();
        let mut bytes = spare.unwrap_or_default();
        let len = tile.end - tile.start;
        let read =
            self.backend
                .read_at_into(FileKind::Pack, &tile.pack, tile.start, len, &mut bytes);
        if read.is_err() {
            let mut tiles = self.tiles.lock().expect("not poisoned");
            tiles.kept.retain(|t| !Arc::ptr_eq(t, tile));
        }
        tile.bytes.set(read.ok().map(|()| {
            Bytes::from_owner(Lent {
                bytes,
                spare: self.spare.clone(),
            })
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gated::{Call, Gated};
    use crate::backend::LocalBackend;
    use std::sync::atomic::AtomicU64;

    /// Runs `f` with a stored pack of `len` patterned bytes (its name and
    /// bytes), a backend that counts ranged reads, and the pack's end.
    fn with_pack(
        len: usize,
        f: impl FnOnce(&str, &[u8], &dyn Backend, &AtomicU64, &HashMap<PackId, u64>),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalBackend::new(dir.path().join("repo"));
        inner.create_repository().unwrap();
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let id = PackId(cairn_format::id::storage_hash(&bytes));
        inner.create(FileKind::Pack, &id.to_hex(), &bytes).unwrap();
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
        let ends = HashMap::from([(id, len as u64)]);
        f(&id.to_hex(), &bytes, &backend, &reads, &ends);
    }

    #[test]
    fn reads_in_one_tile_cost_one_request_and_return_the_right_bytes() {
        with_pack(
            WIDTH as usize + 5000,
            |name, bytes, backend, reads, ends| {
                let tiles = TileReader::new(backend, 2, ends);
                let mut at = 100u64;
                while at + 1000 <= WIDTH + 100 {
                    let got = tiles.read(name, at, 1000).unwrap();
                    assert_eq!(got, bytes[at as usize..at as usize + 1000]);
                    at += 1000;
                }
                // The first tile, and at its second read the next one, fetched
                // ahead (the rest of the pack, cut at its end).
                assert_eq!(reads.load(Ordering::SeqCst), 2);
                let tail = bytes.len() as u64 - 10;
                assert_eq!(tiles.read(name, tail, 10).unwrap(), bytes[tail as usize..]);
                assert_eq!(reads.load(Ordering::SeqCst), 2);
                // A read alone is not followed by one ahead.
                let lone = TileReader::new(backend, 2, ends);
                assert_eq!(lone.read(name, 0, 10).unwrap(), bytes[..10]);
                assert_eq!(reads.load(Ordering::SeqCst), 3);
                // Past the end of the pack: read alone, which reports it.
                assert!(tiles.read(name, tail, 11).is_err());
            },
        );
    }

    #[test]
    fn a_read_across_a_tile_boundary_joins_both_tiles() {
        with_pack(2 * WIDTH as usize, |name, bytes, backend, reads, ends| {
            let tiles = TileReader::new(backend, 4, ends);
            let at = WIDTH - 300;
            assert_eq!(
                tiles.read(name, at, 1000).unwrap(),
                bytes[at as usize..][..1000]
            );
            assert_eq!(reads.load(Ordering::SeqCst), 2);
            // Both tiles are kept: reads on either side cost nothing.
            assert_eq!(tiles.read(name, 5, 10).unwrap(), bytes[5..15]);
            assert_eq!(
                tiles.read(name, WIDTH + 5, 10).unwrap(),
                bytes[WIDTH as usize + 5..][..10]
            );
            assert_eq!(reads.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn an_expected_tile_is_fetched_once_and_serves_the_reads_that_follow() {
        with_pack(3 * WIDTH as usize, |name, bytes, backend, reads, ends| {
            let tiles = TileReader::new(backend, 1, ends);
            tiles.expect(name, WIDTH + 7);
            tiles.expect(name, WIDTH);
            assert_eq!(reads.load(Ordering::SeqCst), 1);
            assert_eq!(
                tiles.read(name, WIDTH + 7, 3).unwrap(),
                bytes[WIDTH as usize + 7..][..3]
            );
            assert_eq!(reads.load(Ordering::SeqCst), 1);
            // Pushed out by another tile, it is not expected again (an
            // announcement come late), but it is read again when wanted.
            tiles.expect(name, 0);
            tiles.expect(name, WIDTH);
            assert_eq!(reads.load(Ordering::SeqCst), 2);
            assert_eq!(
                tiles.read(name, WIDTH, 3).unwrap(),
                bytes[WIDTH as usize..][..3]
            );
            assert_eq!(reads.load(Ordering::SeqCst), 3);
            // Nothing is expected past the end, or of a pack not indexed.
            tiles.expect(name, 3 * WIDTH);
            tiles.expect(&"0".repeat(64), 0);
            assert_eq!(reads.load(Ordering::SeqCst), 3);
        });
    }
}
