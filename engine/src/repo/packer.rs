//! The write end of the backup pipeline.
//!
//! The caller's thread hashes each blob and drops the ones already stored;
//! the rest are gathered into batches of about [`BATCH_BYTES`], so that many
//! small files do not each cost a hand-over between threads. Sealing threads
//! compress and encrypt batches; one packing thread puts the sealed blobs
//! into packs in the order they were saved, whatever the thread timing, and
//! stores each full pack. Where storage offers it ([`Backend::stage`]), a
//! pack's bytes go to its file as they come, so packs being filled or
//! stored take no memory; elsewhere a pack is held whole until stored. Trees go into packs of their own, which a
//! repository's cache keeps whole (see [`crate::cache`]). At most [`IN_FLIGHT`] batches are between `save`
//! and their pack, so memory stays bounded however much is backed up.

use crate::backend::{Backend, FileKind, Staged};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::repository::{holds_trees_only, Repository};
use bytes::Bytes;
use cairn_format::crypto::MasterKeys;
use cairn_format::id::storage_hash;
use cairn_format::index::IndexPack;
use cairn_format::pack::{seal_blob, PackEntry, PackHeader};
use cairn_format::{BlobId, BlobKind, PackId};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most batches saved but not yet in a pack.
pub const IN_FLIGHT: usize = 8;
/// A batch is handed to the sealing threads once it holds this many bytes
/// (or at the end), so a batch holds at most this plus one blob.
pub const BATCH_BYTES: usize = 1 << 20;

/// Counts of what a [`PackWriter`] added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Data blobs added.
    pub data_blobs: u64,
    /// Tree blobs added.
    pub tree_blobs: u64,
    /// Plaintext bytes added.
    pub bytes: u64,
    /// Sealed bytes added.
    pub bytes_stored: u64,
    /// Pack files written.
    pub packs: u64,
}

/// What a finished writer stored: the packs (for the index file) and the counts.
pub type Written = (Vec<IndexPack>, WriteStats);

/// Blobs to seal, numbered in the order of their batches.
#[derive(Default)]
struct Batch {
    seq: u64,
    blobs: Vec<(BlobKind, BlobId, Vec<u8>)>,
    bytes: usize,
}

/// A sealed batch on its way into packs.
struct SealedBatch {
    seq: u64,
    blobs: Vec<Sealed>,
}

/// A sealed blob.
struct Sealed {
    kind: BlobKind,
    id: BlobId,
    raw_length: u32,
    bytes: Vec<u8>,
}

/// State the threads share with the writer.
#[derive(Default)]
struct Shared {
    /// The first error of the packing thread; blobs after it are dropped.
    failed: Mutex<Option<Error>>,
    /// Set when the writer is dropped without `finish`: nothing more is stored.
    abandoned: AtomicBool,
}

/// Saves blobs into new packs, skipping blobs the repository already has.
pub struct PackWriter<'r> {
    repo: &'r Repository,
    /// Whether blobs the index lists are skipped (false when repacking).
    skip_indexed: bool,
    /// The packs holding the blobs skipped because the index lists them:
    /// what the caller's result uses besides the packs written.
    reused: Mutex<HashSet<PackId>>,
    pending: HashSet<(BlobKind, BlobId)>,
    batch: Batch,
    jobs: Option<SyncSender<Batch>>,
    /// One token per batch in flight; the packing thread takes them back.
    tokens: SyncSender<()>,
    sealers: Vec<JoinHandle<()>>,
    packer: Option<JoinHandle<Written>>,
    shared: Arc<Shared>,
}

impl<'r> PackWriter<'r> {
    /// A writer adding to `repo`, sealing on one thread per available core.
    pub fn new(repo: &'r Repository) -> Self {
        Self::with_dedup(repo, true)
    }

    /// A writer that stores each blob it is given once, even when the index
    /// lists it: for copying blobs out of packs that are to be deleted.
    pub fn for_copies(repo: &'r Repository) -> Self {
        Self::with_dedup(repo, false)
    }

    fn with_dedup(repo: &'r Repository, skip_indexed: bool) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let shared = Arc::new(Shared::default());
        let (jobs, job_rx) = sync_channel::<Batch>(IN_FLIGHT);
        let (sealed_tx, sealed_rx) = sync_channel::<SealedBatch>(IN_FLIGHT);
        let (tokens, token_rx) = sync_channel::<()>(IN_FLIGHT);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let level = repo.config().compression.zstd_level();
        let sealers = (0..threads)
            .map(|_| {
                let (job_rx, sealed_tx) = (job_rx.clone(), sealed_tx.clone());
                let keys = repo.shared_keys();
                std::thread::spawn(move || seal_batches(&job_rx, &sealed_tx, &keys, level))
            })
            .collect();
        let (spent, spare) = sync_channel::<Vec<u8>>(1);
        let packing = Packing {
            backend: repo.shared_backend(),
            uploads: Uploads::start(
                repo.shared_backend(),
                repo.shared_cache(),
                shared.clone(),
                spent,
            ),
            spare,
            keys: repo.shared_keys(),
            pack_size: repo.config().pack_size,
            shared: shared.clone(),
            open: Default::default(),
            stats: WriteStats::default(),
        };
        let packer = std::thread::spawn(move || packing.run(sealed_rx, token_rx));
        PackWriter {
            repo,
            skip_indexed,
            reused: Mutex::default(),
            pending: HashSet::new(),
            batch: Batch::default(),
            jobs: Some(jobs),
            tokens,
            sealers,
            packer: Some(packer),
            shared,
        }
    }

    /// The repository written to.
    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    /// True when the blob is in the repository or was saved by this writer.
    /// A blob found in the index counts as used: its pack is among
    /// [`PackWriter::reused_packs`].
    pub fn is_stored(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.is_indexed(kind, id) || self.pending.contains(&(kind, *id))
    }

    /// True when the index lists the blob and this writer skips such blobs;
    /// notes its pack as reused.
    fn is_indexed(&self, kind: BlobKind, id: &BlobId) -> bool {
        let found = self
            .skip_indexed
            .then(|| self.repo.stored_pack(kind, id))
            .flatten();
        let Some(pack) = found else {
            return false;
        };
        self.reused.lock().expect("not poisoned").insert(pack);
        true
    }

    /// The packs holding blobs this writer found in the index instead of
    /// storing them (a superset of those the caller came to use): they must
    /// still exist when the caller commits (see [`crate::backup`]).
    pub fn reused_packs(&self) -> HashSet<PackId> {
        self.reused.lock().expect("not poisoned").clone()
    }

    /// Stores `plaintext` as a blob of `kind` unless it is already stored;
    /// returns its ID. The blob reaches storage later; an error in storing it
    /// is returned by a later call or by [`PackWriter::finish`].
    pub fn save(&mut self, kind: BlobKind, plaintext: Vec<u8>) -> Result<BlobId> {
        if plaintext.len() > kind.max_len() {
            return Err(Error::Invalid(format!(
                "a {} of {} bytes exceeds the format's limit of {} bytes",
                kind.object_type().name(),
                plaintext.len(),
                kind.max_len()
            )));
        }
        let id = self.repo.keys().blob_id(&plaintext);
        if self.is_indexed(kind, &id) || !self.pending.insert((kind, id)) {
            return Ok(id);
        }
        self.batch.bytes += plaintext.len();
        self.batch.blobs.push((kind, id, plaintext));
        if self.batch.bytes >= BATCH_BYTES {
            self.send_batch()?;
        }
        Ok(id)
    }

    /// Hands the batch being gathered to the sealing threads.
    fn send_batch(&mut self) -> Result<()> {
        self.check()?;
        if self.batch.blobs.is_empty() {
            return Ok(());
        }
        let next = Batch {
            seq: self.batch.seq + 1,
            ..Batch::default()
        };
        let batch = std::mem::replace(&mut self.batch, next);
        let sent = self.tokens.send(()).is_ok()
            && self.jobs.as_ref().is_some_and(|j| j.send(batch).is_ok());
        if !sent {
            self.check()?;
            return Err(Error::Invalid("the packing thread stopped".into()));
        }
        Ok(())
    }

    /// The packing thread's error, if it had one.
    fn check(&self) -> Result<()> {
        match self.shared.failed.lock().expect("not poisoned").take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits for every saved blob to be stored (the last pack written) and
    /// returns the packs written, for the index file, with the counts.
    pub fn finish(mut self) -> Result<Written> {
        self.send_batch()?;
        let done = self.stop();
        self.check()?;
        done.ok_or_else(|| Error::Invalid("the packing thread stopped".into()))
    }

    /// Closes the job queue and waits for the threads.
    fn stop(&mut self) -> Option<Written> {
        self.jobs = None;
        for s in self.sealers.drain(..) {
            let _ = s.join();
        }
        self.packer.take().and_then(|p| p.join().ok())
    }
}

impl Drop for PackWriter<'_> {
    /// A writer dropped without `finish` (a backup that failed) stores no
    /// more packs.
    fn drop(&mut self) {
        self.shared.abandoned.store(true, Ordering::SeqCst);
        self.stop();
    }
}

fn seal_batches(
    jobs: &Mutex<Receiver<Batch>>,
    out: &SyncSender<SealedBatch>,
    keys: &MasterKeys,
    level: Option<i32>,
) {
    loop {
        let batch = match jobs.lock().expect("not poisoned").recv() {
            Ok(batch) => batch,
            Err(_) => return,
        };
        let blobs = batch
            .blobs
            .into_iter()
            .map(|(kind, id, plaintext)| Sealed {
                kind,
                id,
                raw_length: plaintext.len() as u32,
                bytes: seal_blob(keys, kind, &id, &plaintext, level),
            })
            .collect();
        let sealed = SealedBatch {
            seq: batch.seq,
            blobs,
        };
        if out.send(sealed).is_err() {
            return;
        }
    }
}

/// Packs written at once, each on its own thread, beside the one being
/// filled, unless the backend asks for more
/// ([`Backend::requests_in_flight`]): a slow or distant storage is not paid
/// once per pack in turn, and memory holds at most that many packs more.
/// Local storage needs no more: a pack is written past the page cache in
/// about the time the next one takes to fill.
const UPLOADS: usize = 2;

/// A sealed pack with its number in the order packs were filled, and its
/// entries.
type Upload = (u64, Sealing, Vec<PackEntry>);

/// A pack's bytes: in memory, or already in a staged file (see
/// [`Backend::stage`]) with the pack's ID.
enum Sealing {
    Memory(Vec<u8>),
    Staged(Box<dyn Staged>, [u8; 32]),
}

/// Packs being stored by [`UPLOADS`] threads or more; only the packs whose create
/// succeeded are returned, in the order they were filled, so nothing
/// unstored is ever indexed and the result does not depend on timing.
struct Uploads {
    queue: Option<SyncSender<Upload>>,
    sent: u64,
    workers: Vec<JoinHandle<Vec<(u64, IndexPack)>>>,
}

impl Uploads {
    /// Threads storing packs in `backend`, and a copy of each pack of trees
    /// in `cache`; the buffer of each pack stored goes to `spent`, for a
    /// later pack (fresh memory costs a page fault per page).
    fn start(
        backend: Arc<dyn Backend>,
        cache: Option<Arc<Cache>>,
        shared: Arc<Shared>,
        spent: SyncSender<Vec<u8>>,
    ) -> Uploads {
        // No queue beyond the threads: the packing thread waits for one.
        let (queue, packs) = sync_channel::<Upload>(0);
        let packs = Arc::new(Mutex::new(packs));
        let workers = (0..UPLOADS.max(backend.requests_in_flight()))
            .map(|_| {
                let (backend, shared, packs) = (backend.clone(), shared.clone(), packs.clone());
                let (cache, spent) = (cache.clone(), spent.clone());
                std::thread::spawn(move || {
                    let mut stored = Vec::new();
                    loop {
                        let next = packs.lock().expect("not poisoned").recv();
                        let Ok((seq, sealing, blobs)) = next else {
                            return stored;
                        };
                        if shared.stopped() {
                            continue;
                        }
                        match store(&*backend, cache.as_deref(), &spent, sealing, blobs) {
                            Ok(pack) => stored.push((seq, pack)),
                            Err(e) => shared.fail(e),
                        }
                    }
                })
            })
            .collect();
        Uploads {
            queue: Some(queue),
            sent: 0,
            workers,
        }
    }

    /// Hands a sealed pack to a free thread, waiting for one.
    fn send(&mut self, pack: Sealing, blobs: Vec<PackEntry>) -> Result<()> {
        let queue = self.queue.as_ref().expect("uploads running");
        self.sent += 1;
        queue
            .send((self.sent, pack, blobs))
            .map_err(|_| Error::Invalid("the pack upload threads stopped".into()))
    }

    /// Waits for every upload; the packs stored.
    fn finish(mut self) -> Vec<IndexPack> {
        self.queue = None;
        let mut stored: Vec<(u64, IndexPack)> = self
            .workers
            .drain(..)
            .flat_map(|w| w.join().unwrap_or_default())
            .collect();
        stored.sort_unstable_by_key(|(seq, _)| *seq);
        stored.into_iter().map(|(_, pack)| pack).collect()
    }
}

/// Stores a sealed pack in `backend`, and a copy of a pack of trees in
/// `cache`; a buffer of a whole pack's size goes to `spent`.
fn store(
    backend: &dyn Backend,
    cache: Option<&Cache>,
    spent: &SyncSender<Vec<u8>>,
    sealing: Sealing,
    blobs: Vec<PackEntry>,
) -> Result<IndexPack> {
    let (id, bytes) = match sealing {
        Sealing::Memory(pack) => {
            let id = storage_hash(&pack);
            let pack = Bytes::from(pack);
            backend.create_owned(FileKind::Pack, &hex::encode(id), pack.clone())?;
            (id, Some(pack))
        }
        Sealing::Staged(file, id) => {
            file.commit(&hex::encode(id))?;
            (id, None)
        }
    };
    let pack = IndexPack {
        id: PackId(id),
        blobs,
    };
    let trees = holds_trees_only(&pack);
    if let Some(cache) = cache.filter(|_| trees) {
        let name = hex::encode(id);
        match &bytes {
            Some(bytes) => cache.store(FileKind::Pack, &name, bytes),
            None => cache.store(FileKind::Pack, &name, &backend.read(FileKind::Pack, &name)?),
        }
    }
    // A data pack's buffer, of a whole pack's size.
    if let Some(Ok(buffer)) = bytes.filter(|_| !trees).map(Bytes::try_into_mut) {
        let _ = spent.try_send(buffer.into());
    }
    Ok(pack)
}

impl Shared {
    fn stopped(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst) || self.failed.lock().expect("not poisoned").is_some()
    }

    /// Records `e` unless an earlier error is recorded.
    fn fail(&self, e: Error) {
        self.failed.lock().expect("not poisoned").get_or_insert(e);
    }
}

/// A pack being filled.
#[derive(Default)]
struct OpenPack {
    /// Its bytes, unless they go to `staged`.
    bytes: Vec<u8>,
    /// The file its bytes are written to as they come, where storage
    /// offers one, and their storage hash (the pack's ID) so far.
    staged: Option<(Box<dyn Staged>, blake3::Hasher)>,
    len: u64,
    entries: Vec<PackEntry>,
}

impl OpenPack {
    /// Appends `bytes` to the pack.
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.staged {
            Some((file, hash)) => {
                file.write(bytes)?;
                hash.update(bytes);
            }
            None => self.bytes.extend_from_slice(bytes),
        }
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// The packing thread's state.
struct Packing {
    backend: Arc<dyn Backend>,
    uploads: Uploads,
    /// Buffers of packs stored, to fill again.
    spare: Receiver<Vec<u8>>,
    keys: Arc<MasterKeys>,
    pack_size: u64,
    shared: Arc<Shared>,
    /// The packs being filled: [`PACKERS`] for data blobs, then as many
    /// for trees.
    open: [OpenPack; 2 * PACKERS],
    stats: WriteStats,
}

/// Packs filled at once for each kind of blob, each blob going to one of
/// them at random: a file's blobs are spread over several packs, so a
/// pack's size is not the size of one file (SPEC §9.1).
const PACKERS: usize = 2;

/// Which of [`Packing::open`] takes the next blob of `kind`.
fn slot(kind: BlobKind) -> usize {
    let first = match kind {
        BlobKind::Data => 0,
        BlobKind::Tree => PACKERS,
    };
    first + rand::random::<usize>() % PACKERS
}

impl Packing {
    /// Puts sealed batches into packs in sequence order until the sealers are done.
    fn run(mut self, sealed: Receiver<SealedBatch>, tokens: Receiver<()>) -> Written {
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        for batch in sealed {
            waiting.insert(batch.seq, batch.blobs);
            while let Some(blobs) = waiting.remove(&next) {
                next += 1;
                let _ = tokens.try_recv();
                for blob in blobs {
                    if let Err(e) = self.add(blob) {
                        self.fail(e);
                    }
                }
            }
        }
        for slot in 0..self.open.len() {
            if let Err(e) = self.flush(slot) {
                self.fail(e);
            }
        }
        (self.uploads.finish(), self.stats)
    }

    fn stopped(&self) -> bool {
        self.shared.stopped()
    }

    fn fail(&mut self, e: Error) {
        self.shared.fail(e);
        self.open = Default::default();
    }

    fn add(&mut self, blob: Sealed) -> Result<()> {
        if self.stopped() {
            return Ok(());
        }
        let slot = slot(blob.kind);
        let pack = &mut self.open[slot];
        if pack.entries.is_empty() {
            pack.staged = self
                .backend
                .stage(FileKind::Pack)?
                .map(|file| (file, blake3::Hasher::new()));
        }
        if pack.staged.is_none() && pack.bytes.capacity() == 0 && blob.kind == BlobKind::Data {
            if let Ok(mut spare) = self.spare.try_recv() {
                spare.clear();
                pack.bytes = spare;
            }
            // One allocation per pack, not a series of doublings.
            pack.bytes
                .reserve(self.pack_size as usize + blob.bytes.len());
        }
        pack.entries.push(PackEntry {
            kind: blob.kind,
            id: blob.id,
            offset: pack.len,
            length: blob.bytes.len() as u32,
            raw_length: blob.raw_length,
        });
        pack.append(&blob.bytes)?;
        let full = pack.len >= self.pack_size;
        match blob.kind {
            BlobKind::Data => self.stats.data_blobs += 1,
            BlobKind::Tree => self.stats.tree_blobs += 1,
        }
        self.stats.bytes += u64::from(blob.raw_length);
        self.stats.bytes_stored += blob.bytes.len() as u64;
        if full {
            self.flush(slot)?;
        }
        Ok(())
    }

    /// Writes the pack being filled in `slot`, if any.
    fn flush(&mut self, slot: usize) -> Result<()> {
        if self.open[slot].entries.is_empty() || self.stopped() {
            return Ok(());
        }
        let mut pack = std::mem::take(&mut self.open[slot]);
        let mut header = Vec::new();
        PackHeader {
            version: 1,
            blobs: pack.entries.clone(),
        }
        .append_to(&mut header, &self.keys);
        pack.append(&header)?;
        let sealing = match pack.staged {
            Some((file, hash)) => Sealing::Staged(file, *hash.finalize().as_bytes()),
            None => Sealing::Memory(pack.bytes),
        };
        self.uploads.send(sealing, pack.entries)?;
        self.stats.packs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::gated::{Call, Gated};
    use crate::backend::LocalBackend;
    use crate::repository::InitOptions;
    use cairn_format::key::KdfParams;
    use std::collections::HashMap;

    fn repo(dir: &std::path::Path, allowed: u32) -> Repository {
        let opts = InitOptions {
            kdf: KdfParams::argon2id(64, 1, 1),
            pack_size: Some(1 << 20),
            ..Default::default()
        };
        // Refuses to create packs after `allowed` of them.
        let allowed = Mutex::new(allowed);
        let backend = Gated {
            inner: LocalBackend::new(dir.join("repo")),
            gate: move |call, kind| {
                if call != Call::Create || kind != FileKind::Pack {
                    return Ok(());
                }
                let mut allowed = allowed.lock().unwrap();
                if *allowed == 0 {
                    return Err(Error::io(
                        "cannot create pack",
                        std::io::Error::from_raw_os_error(libc::ENOSPC),
                    ));
                }
                *allowed -= 1;
                Ok(())
            },
        };
        Repository::init(backend, b"pw", &opts).unwrap()
    }

    /// 200 distinct blobs of 64 KiB, half-compressible: several 1 MiB packs.
    fn blobs() -> Vec<Vec<u8>> {
        (0..200u32)
            .map(|i| {
                let mut x = u64::from(i) * 0x9E37_79B9 + 1;
                (0..65_536)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 16) as u8 // compressible, and different per blob
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn blobs_are_spread_over_packs_each_in_the_order_saved_and_all_can_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = repo(dir.path(), u32::MAX);
        let blobs = blobs();
        let mut writer = PackWriter::new(&repo);
        let mut ids = Vec::new();
        for b in &blobs {
            ids.push(writer.save(BlobKind::Data, b.clone()).unwrap());
            // Saving again is deduplicated while the first is still in flight.
            assert_eq!(
                writer.save(BlobKind::Data, b.clone()).unwrap(),
                ids[ids.len() - 1]
            );
        }
        let (packs, stats) = writer.finish().unwrap();
        assert_eq!(stats.data_blobs, 200);
        assert!(stats.packs >= 4, "{} packs", stats.packs);
        assert_eq!(stats.packs as usize, packs.len());
        let position: HashMap<BlobId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut pack_of = vec![None; ids.len()];
        for (p, pack) in packs.iter().enumerate() {
            let order: Vec<usize> = pack.blobs.iter().map(|b| position[&b.id]).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
            for i in order {
                assert_eq!(pack_of[i].replace(p), None, "blob {i} stored twice");
            }
        }
        assert!(pack_of.iter().all(Option::is_some));
        // Consecutive blobs go to either of two open packs at random.
        let switches = pack_of.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches > 50, "{switches} switches between packs");
        repo.save_index(packs).unwrap();
        for (id, b) in ids.iter().zip(&blobs) {
            assert_eq!(&repo.read_blob(BlobKind::Data, id).unwrap(), b);
        }
    }

    #[test]
    fn a_failed_pack_write_is_reported_and_nothing_after_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path(), 2);
        let mut writer = PackWriter::new(&repo);
        let mut first_error = None;
        for b in blobs() {
            if let Err(e) = writer.save(BlobKind::Data, b) {
                first_error = Some(e);
                break;
            }
        }
        let error = match first_error {
            Some(e) => e,
            None => writer.finish().unwrap_err(),
        };
        assert!(error.to_string().contains("cannot create pack"), "{error}");
        let packs = repo.backend().list(FileKind::Pack).unwrap();
        assert_eq!(packs.len(), 2);
    }

    #[test]
    fn a_writer_dropped_unfinished_stores_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo(dir.path(), u32::MAX);
        let mut writer = PackWriter::new(&repo);
        for b in blobs().into_iter().take(10) {
            writer.save(BlobKind::Data, b).unwrap();
        }
        drop(writer);
        // Ten blobs are less than a pack: none was due, and none is written.
        assert!(repo.backend().list(FileKind::Pack).unwrap().is_empty());
    }
}
