//! File content for a restore, written by worker threads.
//!
//! The tree walk queues each regular file as parts of about [`PART_BYTES`],
//! gathered into jobs of a few files. A worker reads the blobs a job needs
//! sorted by pack and offset, adjacent blobs in one read of at most
//! [`READ_BYTES`], writes each straight to its offsets in the target file, and
//! starts the writeback of what it wrote. The last part of a file to finish
//! applies its metadata. Memory stays bounded: queued jobs hold only blob
//! locations, and each worker holds one read at a time; from remote storage,
//! reads are served from tiles of packs (see `tiles`), of which two more
//! than the workers are kept.

use super::meta::{Handle, Meta};
use super::tiles::{TileReader, WIDTH};
use super::{Place, RestoreReport};
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::index::BlobLocation;
use crate::progress::{self, Progress};
use crate::repository::Repository;
use bytes::Bytes;
use cairn_format::pack::open_blob_into;
use cairn_format::tree::FileData;
use cairn_format::{BlobId, BlobKind, PackId};
use std::collections::HashMap;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

/// A large file is split into parts of about this size, restored in parallel.
const PART_BYTES: u64 = 8 << 20;
/// A job is handed to the workers once its parts hold this much content...
const JOB_BYTES: u64 = 8 << 20;
/// ...or this many parts (each holds its file open).
const JOB_PARTS: usize = 32;
/// The most one read from a pack covers (a single larger blob is read whole).
const READ_BYTES: u64 = 8 << 20;
/// Jobs waiting for a worker.
const QUEUED_JOBS: usize = 2;
/// More workers than this only add open files and memory.
const MAX_WORKERS: usize = 16;
/// Parts that wrote this much start their writeback at once, so that the
/// final flush has less left to do.
const WRITEBACK_BYTES: u64 = 1 << 20;
/// A job's blobs in one pack are read ahead as one span when the gaps
/// between them come to at most their size and this much.
const READ_GAP: u64 = 1 << 20;
/// Runs of zeros this long, aligned in the file, are left as holes.
const BLOCK: u64 = 4096;

/// What to do with a file's content.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A new, empty file of the right length: write every chunk, leaving
    /// blocks of zeros as holes.
    Create,
    /// As `Create`, for a new file that replaced an existing entry.
    Replace,
    /// An existing file: write the chunks whose content differs.
    Fix,
    /// An existing file believed unchanged: only verify it.
    Check,
}

/// One chunk of a file: its blob, where it is stored, and where it goes.
pub(super) struct Chunk {
    id: BlobId,
    loc: BlobLocation,
    offset: u64,
    /// For a bundled file, the part of the blob that is the file.
    slice: Option<Slice>,
}

/// A bundled file in its bundle: where it starts, its length and content ID.
#[derive(Clone, Copy)]
struct Slice {
    start: u64,
    len: u64,
    id: BlobId,
}

impl Chunk {
    /// Bytes of the file the chunk holds.
    fn len(&self) -> u64 {
        self.slice.map_or(u64::from(self.loc.raw_length), |s| s.len)
    }

    /// The ID of the content the chunk puts in the file.
    fn content_id(&self) -> BlobId {
        self.slice.map_or(self.id, |s| s.id)
    }
}

/// Looks up where each blob of a file of `size` bytes stored as `data` is;
/// returns the chunks and the length of the file they make, which must be
/// `size`.
pub(super) fn locate(
    repo: &Repository,
    data: FileData<'_>,
    size: u64,
) -> Result<(Vec<Chunk>, u64)> {
    let mut offset = 0;
    let mut chunks = Vec::with_capacity(data.blobs.len());
    for id in data.blobs {
        let loc = repo
            .locate(BlobKind::Data, id)
            .ok_or_else(|| Error::Missing(format!("data blob {id}")))?;
        let slice = data.id.map(|file_id| Slice {
            start: data.offset,
            len: size,
            id: file_id,
        });
        // Checked before anything is read or compared: the file's size
        // decides how much is allocated for it.
        let within = |s: &Slice| {
            s.start
                .checked_add(s.len)
                .is_some_and(|end| end <= u64::from(loc.raw_length))
        };
        if slice.as_ref().is_some_and(|s| !within(s)) {
            return Err(Error::Invalid(format!("it lies outside its bundle {id}")));
        }
        let chunk = Chunk {
            id: *id,
            loc,
            offset,
            slice,
        };
        offset += chunk.len();
        chunks.push(chunk);
    }
    if offset != size {
        return Err(Error::Invalid(format!(
            "its data holds {offset} bytes where its entry says {size}"
        )));
    }
    Ok((chunks, offset))
}

/// A file whose content is being restored.
pub(super) struct Target {
    place: Place,
    file: fs::File,
    mode: Mode,
    /// The length the snapshot records.
    size: u64,
    meta: Meta,
    parts_left: AtomicUsize,
    written: AtomicU64,
    /// The first failure of any part.
    error: Mutex<Option<Error>>,
}

impl Target {
    /// A file opened (or created) at `place`, to be restored as `mode` says.
    pub(super) fn new(place: Place, file: fs::File, mode: Mode, size: u64, meta: Meta) -> Self {
        Target {
            place,
            file,
            mode,
            size,
            meta,
            parts_left: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            error: Mutex::new(None),
        }
    }

    /// Starts writing `chunks` to storage without waiting for it.
    fn start_writeback(&self, chunks: &[Chunk]) {
        let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
            return;
        };
        let end = last.offset + last.len();
        // SAFETY: the descriptor is open; the call only reads its arguments.
        // Failure changes nothing: the final flush writes everything anyway.
        unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                first.offset as i64,
                (end - first.offset) as i64,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
    }

    /// Writes a chunk at `offset`: new files sparse, existing ones whole.
    /// Returns the bytes written.
    fn write(&self, data: &[u8], offset: u64) -> Result<u64> {
        let result = match self.mode {
            Mode::Create | Mode::Replace => write_sparse(&self.file, data, offset),
            _ => self
                .file
                .write_all_at(data, offset)
                .map(|()| data.len() as u64),
        };
        result.map_err(|e| self.place.io("write", e))
    }
}

/// Consecutive chunks of one file.
struct Part {
    target: Arc<Target>,
    chunks: Vec<Chunk>,
}

/// What the workers share.
pub(super) struct Writer<'r> {
    repo: &'r Repository,
    verify: bool,
    progress: Option<Arc<Progress>>,
    /// Tiled reads, for remote storage.
    tiles: Option<TileReader<'r>>,
}

/// One worker per core, or as many as the backend wants requests in flight.
fn workers(repo: &Repository) -> usize {
    thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(repo.backend().requests_in_flight())
        .min(MAX_WORKERS)
}

impl<'r> Writer<'r> {
    /// Writes content from `repo`; with `verify`, reads every file back.
    /// Parts and files done are counted on `progress`.
    pub(super) fn new(repo: &'r Repository, verify: bool, progress: Option<Arc<Progress>>) -> Self {
        // Remote storage (which wants several requests in flight) is read in
        // tiles, each kept while the workers may still want it.
        let remote = repo.backend().requests_in_flight() > 1;
        let tiles = remote.then(|| {
            let mut ends = HashMap::new();
            repo.index().pack_ends(&mut ends);
            repo.condemned_index().pack_ends(&mut ends);
            TileReader::new(repo.backend(), workers(repo) + 2, &ends)
        });
        Writer {
            repo,
            verify,
            progress,
            tiles,
        }
    }

    /// Runs `walk` on this thread with a queue that worker threads drain;
    /// returns its result and what the workers restored once all are done.
    pub(super) fn with_workers<T>(&self, walk: impl FnOnce(Queue<'_>) -> T) -> (T, RestoreReport) {
        let workers = workers(self.repo);
        let (tx, rx) = mpsc::sync_channel(QUEUED_JOBS);
        let rx = Mutex::new(rx);
        let (expect, expected) = mpsc::channel::<(String, u64)>();
        let expected = Mutex::new(expected);
        thread::scope(|s| {
            if let Some(tiles) = &self.tiles {
                // As many threads read the tiles queued jobs will want as
                // the backend wants requests in flight: at 50 ms a request,
                // 4 of them left the restore 15% slower than 8.
                for _ in 0..self.repo.backend().requests_in_flight() {
                    s.spawn(|| loop {
                        // Released at the end of this statement, not held while fetching.
                        let next = expected
                            .lock()
                            .expect("no fetcher panics holding it")
                            .recv();
                        match next {
                            Ok((pack, offset)) => tiles.expect(&pack, offset),
                            Err(_) => return,
                        }
                    });
                }
            }
            let handles: Vec<_> = (0..workers).map(|_| s.spawn(|| self.work(&rx))).collect();
            let out = walk(Queue {
                writer: self,
                tx,
                expect: self.tiles.is_some().then_some(expect),
                job: Vec::new(),
                bytes: 0,
            });
            let mut report = RestoreReport::default();
            for h in handles {
                match h.join() {
                    Ok(r) => report.absorb(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            (out, report)
        })
    }

    fn work(&self, rx: &Mutex<Receiver<Vec<Part>>>) -> RestoreReport {
        let mut report = RestoreReport::default();
        // Blobs are opened into one buffer, used again for each: a fresh
        // one for every large blob cost a page fault every 4 KiB.
        let mut plain = Vec::new();
        loop {
            // The lock is released at the end of this statement, not held during the job.
            let job = rx.lock().expect("no worker panics holding the lock").recv();
            match job {
                Ok(job) => self.run(job, &mut plain, &mut report),
                Err(_) => return report,
            }
        }
    }

    fn run(&self, job: Vec<Part>, plain: &mut Vec<u8>, report: &mut RestoreReport) {
        let mut errors: Vec<Option<Error>> = job.iter().map(|_| None).collect();
        let mut written = vec![0u64; job.len()];
        let mut buf = Vec::new();
        let wanted = self.wanted(&job, &mut buf);
        let mut start = 0;
        while start < wanted.len() {
            let (stop, end) = run_end(&job, &wanted, start);
            let run = &wanted[start..stop];
            self.fetch(&job, run, end, plain, &mut errors, &mut written);
            start = stop;
        }
        for (part, error) in job.iter().zip(&mut errors) {
            let file = &part.target.file;
            if self.verify
                && error.is_none()
                && !part
                    .chunks
                    .iter()
                    .all(|c| holds_chunk(self.repo, file, c, &mut buf))
            {
                *error = Some(Error::Invalid(format!(
                    "{}: verification failed: the restored content differs from the snapshot",
                    part.target.place.path.display()
                )));
            }
        }
        for ((part, error), written) in job.into_iter().zip(errors).zip(written) {
            let t = &part.target;
            if written >= WRITEBACK_BYTES {
                t.start_writeback(&part.chunks);
            }
            t.written.fetch_add(written, Ordering::Relaxed);
            progress::done(&self.progress, 0, part.chunks.iter().map(Chunk::len).sum());
            if let Some(e) = error {
                t.error
                    .lock()
                    .expect("no worker panics holding the lock")
                    .get_or_insert(e);
            }
            if t.parts_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.finish(t, report);
            }
        }
    }

    /// The chunks of `job` to read from the repository, as (part, chunk)
    /// indices sorted by where they are stored: all of new files, those that
    /// differ of existing ones.
    fn wanted(&self, job: &[Part], buf: &mut Vec<u8>) -> Vec<(usize, usize)> {
        let mut wanted = Vec::new();
        for (p, part) in job.iter().enumerate() {
            for (c, chunk) in part.chunks.iter().enumerate() {
                let needed = match part.target.mode {
                    Mode::Create | Mode::Replace => true,
                    Mode::Fix => !holds_chunk(self.repo, &part.target.file, chunk, buf),
                    Mode::Check => false,
                };
                if needed {
                    wanted.push((p, c));
                }
            }
        }
        wanted.sort_by_key(|&(p, c)| (job[p].chunks[c].loc.pack, job[p].chunks[c].loc.offset));
        wanted
    }

    /// Reads the adjacent blobs of `run` (sorted by offset, ending at `end`
    /// in their pack) in one piece, opens each into `plain` and writes it
    /// where it belongs.
    fn fetch(
        &self,
        job: &[Part],
        run: &[(usize, usize)],
        end: u64,
        plain: &mut Vec<u8>,
        errors: &mut [Option<Error>],
        written: &mut [u64],
    ) {
        let first = job[run[0].0].chunks[run[0].1].loc;
        let pack = first.pack.to_hex();
        // If the whole run cannot be read, each blob is tried alone below.
        let sealed = self.read(&pack, first.offset, end - first.offset);
        // Where the blob in `plain` is: the same blob is often wanted again (zeros).
        let mut last = None;
        for &(p, c) in run {
            let (target, chunk) = (&job[p].target, &job[p].chunks[c]);
            if errors[p].is_some() {
                continue;
            }
            if last != Some(chunk.loc.offset) {
                last = None;
                match self.open(&sealed, first.offset, &pack, chunk, plain) {
                    Ok(()) => last = Some(chunk.loc.offset),
                    Err(e) => {
                        errors[p] = Some(e);
                        continue;
                    }
                }
            }
            let data = &plain[..];
            let data = match chunk.slice {
                Some(s) => match self.repo.bundled_content(data, s.start, s.len, &s.id) {
                    Ok(d) => d,
                    Err(e) => {
                        errors[p] = Some(Error::Invalid(format!(
                            "{}: {e} (bundle {} in pack {})",
                            target.place.path.display(),
                            chunk.id,
                            chunk.loc.pack
                        )));
                        continue;
                    }
                },
                None => data,
            };
            match target.write(data, chunk.offset) {
                Ok(n) => written[p] += n,
                Err(e) => errors[p] = Some(e),
            }
        }
    }

    fn read(&self, pack: &str, offset: u64, len: u64) -> Result<Bytes> {
        match &self.tiles {
            Some(tiles) => tiles.read(pack, offset, len),
            None => self
                .repo
                .backend()
                .read_at(FileKind::Pack, pack, offset, len)
                .map(Bytes::from),
        }
    }

    /// Opens the blob of `chunk` into `plain` from the bytes of its run,
    /// read from `run_start`, or alone when the run could not be read.
    fn open(
        &self,
        run: &Result<Bytes>,
        run_start: u64,
        pack: &str,
        chunk: &Chunk,
        plain: &mut Vec<u8>,
    ) -> Result<()> {
        let loc = chunk.loc;
        let sealed = match run {
            Ok(bytes) => {
                let at = (loc.offset - run_start) as usize;
                bytes.slice(at..at + loc.length as usize)
            }
            Err(_) => self.read(pack, loc.offset, u64::from(loc.length))?,
        };
        open_blob_into(
            self.repo.keys(),
            BlobKind::Data,
            &chunk.id,
            &sealed,
            loc.raw_length,
            plain,
        )
        .map_err(|e| Error::format(format!("data blob {} in pack {}", chunk.id, loc.pack), e))
    }

    /// Completes a file once all its parts are done: counts it, checks its
    /// length when verifying, and applies its metadata. A file rewritten in
    /// place gets its length last. A file that failed is removed, not left
    /// half-written: a new one, or one rewritten in place once anything was
    /// written to it (an existing file nothing was written to is left as it
    /// was). It is removed only while its name still leads to it.
    fn finish(&self, t: &Target, report: &mut RestoreReport) {
        progress::done(&self.progress, 1, 0);
        let written = t.written.load(Ordering::Relaxed);
        report.bytes_written += written;
        let failed = t
            .error
            .lock()
            .expect("no worker panics holding the lock")
            .take();
        let result = match failed {
            Some(e) => {
                if matches!(t.mode, Mode::Create | Mode::Replace) || written > 0 {
                    let _ = t.place.dir.unlink_if(&t.place.name, &t.file);
                }
                Err(e)
            }
            None => {
                let resized = match t.mode {
                    Mode::Fix => self.set_length(t),
                    _ => Ok(false),
                };
                match t.mode {
                    Mode::Create => report.written(false),
                    Mode::Replace => report.written(true),
                    _ if written > 0 || resized.as_ref().is_ok_and(|r| *r) => report.written(true),
                    _ => report.files_unchanged += 1,
                }
                resized.and_then(|_| self.check_length(t)).and_then(|()| {
                    report.verified += u64::from(self.verify);
                    t.meta.apply(Handle::Open(t.file.as_fd()), &t.place.path)
                })
            }
        };
        if let Err(e) = result {
            report.errors.push((t.place.path.clone(), e));
        }
    }

    /// Gives a file rewritten in place the snapshot's length; true when it
    /// had another.
    fn set_length(&self, t: &Target) -> Result<bool> {
        let len = t.file.metadata().map_err(|e| t.place.io("stat", e))?.len();
        if len != t.size {
            t.file
                .set_len(t.size)
                .map_err(|e| t.place.io("set the length of", e))?;
        }
        Ok(len != t.size)
    }

    fn check_length(&self, t: &Target) -> Result<()> {
        if !self.verify {
            return Ok(());
        }
        let len = t.file.metadata().map_err(|e| t.place.io("stat", e))?.len();
        if len != t.size {
            return Err(Error::Invalid(format!(
                "{}: verification failed: the restored length differs from the snapshot",
                t.place.path.display()
            )));
        }
        Ok(())
    }
}

/// Where the tree walk queues file content for the workers.
pub(super) struct Queue<'w> {
    writer: &'w Writer<'w>,
    tx: SyncSender<Vec<Part>>,
    /// Where the start of each run of a queued job is announced to the
    /// fetchers of tiles, for remote storage.
    expect: Option<Sender<(String, u64)>>,
    /// The job being gathered, and the bytes of content it holds.
    job: Vec<Part>,
    bytes: u64,
}

impl Queue<'_> {
    /// Queues the content of `target`; one without content is completed at once.
    pub(super) fn add(
        &mut self,
        mut target: Target,
        chunks: Vec<Chunk>,
        report: &mut RestoreReport,
    ) {
        let mut parts = Vec::new();
        let mut part = Vec::new();
        let mut bytes = 0;
        for chunk in chunks {
            bytes += chunk.len();
            part.push(chunk);
            if bytes >= PART_BYTES {
                parts.push(std::mem::take(&mut part));
                bytes = 0;
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        if parts.is_empty() {
            return self.writer.finish(&target, report);
        }
        target.parts_left = AtomicUsize::new(parts.len());
        let target = Arc::new(target);
        for chunks in parts {
            self.bytes += chunks.iter().map(Chunk::len).sum::<u64>();
            self.job.push(Part {
                target: target.clone(),
                chunks,
            });
            if self.bytes >= JOB_BYTES || self.job.len() >= JOB_PARTS {
                self.send();
            }
        }
    }

    /// Hands the last job to the workers; they stop when it is done.
    pub(super) fn finish(mut self) {
        self.send();
    }

    fn send(&mut self) {
        if !self.job.is_empty() {
            let job = std::mem::take(&mut self.job);
            if let Some(expect) = &self.expect {
                let mut starts: Vec<(PackId, u64)> = Vec::new();
                for chunk in job.iter().flat_map(|p| &p.chunks) {
                    let (pack, at) = (chunk.loc.pack, chunk.loc.offset / WIDTH);
                    if !starts.contains(&(pack, at)) {
                        starts.push((pack, at));
                    }
                }
                for (pack, at) in starts {
                    // The fetchers stop only after the walk.
                    let _ = expect.send((pack.to_hex(), at * WIDTH));
                }
            } else {
                // Local storage reads the job's blobs from disk while it waits.
                // (start, end, bytes wanted) of each pack.
                let mut spans: HashMap<PackId, (u64, u64, u64)> = HashMap::new();
                for chunk in job.iter().flat_map(|p| &p.chunks) {
                    let (start, len) = (chunk.loc.offset, u64::from(chunk.loc.length));
                    let span = spans.entry(chunk.loc.pack).or_insert((start, start, 0));
                    *span = (span.0.min(start), span.1.max(start + len), span.2 + len);
                }
                let backend = self.writer.repo.backend();
                for (pack, (start, end, wanted)) in spans {
                    // Not blobs scattered over a pack: the gaps would be read too.
                    if end - start <= 2 * wanted + READ_GAP {
                        backend.will_read(FileKind::Pack, &pack.to_hex(), start, end - start);
                    }
                }
            }
            self.tx.send(job).expect("restore workers stopped early");
            self.bytes = 0;
        }
    }
}

/// True when `file` holds exactly the content of `chunks`, a file of `size` bytes.
pub(super) fn holds(repo: &Repository, file: &fs::File, chunks: &[Chunk], size: u64) -> bool {
    let mut buf = Vec::new();
    file.metadata().is_ok_and(|m| m.len() == size)
        && chunks.iter().all(|c| holds_chunk(repo, file, c, &mut buf))
}

/// True when `file` holds `chunk`'s content at its offset.
fn holds_chunk(repo: &Repository, file: &fs::File, chunk: &Chunk, buf: &mut Vec<u8>) -> bool {
    buf.resize(chunk.len() as usize, 0);
    file.read_exact_at(buf, chunk.offset).is_ok() && repo.blob_id(buf) == chunk.content_id()
}

/// The run of blobs adjacent in one pack that starts at `wanted[start]`, to
/// be read at once: the index after it, and its end in the pack.
fn run_end(job: &[Part], wanted: &[(usize, usize)], start: usize) -> (usize, u64) {
    let loc = |i: usize| job[wanted[i].0].chunks[wanted[i].1].loc;
    let first = loc(start);
    let mut end = first.offset + u64::from(first.length);
    let mut stop = start + 1;
    while stop < wanted.len() {
        let next = loc(stop);
        let next_end = (next.offset + u64::from(next.length)).max(end);
        // Sorted by offset: `next` is adjacent, or the same blob again.
        if next.pack != first.pack || next.offset > end || next_end - first.offset > READ_BYTES {
            break;
        }
        end = next_end;
        stop += 1;
    }
    (stop, end)
}

/// Writes `data` at `offset`, leaving aligned blocks of zeros unwritten so
/// they stay holes; returns the bytes written.
fn write_sparse(file: &fs::File, data: &[u8], offset: u64) -> std::io::Result<u64> {
    let mut written = 0;
    // Start of the non-zero bytes not yet written.
    let mut pending: Option<usize> = None;
    let mut pos = 0;
    while pos < data.len() {
        let block_end = ((offset + pos as u64) / BLOCK + 1) * BLOCK - offset;
        let end = (block_end as usize).min(data.len());
        let zero = data[pos..end].iter().all(|&b| b == 0);
        match (zero, pending) {
            (false, None) => pending = Some(pos),
            (true, Some(from)) => {
                file.write_all_at(&data[from..pos], offset + from as u64)?;
                written += (pos - from) as u64;
                pending = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(from) = pending {
        file.write_all_at(&data[from..], offset + from as u64)?;
        written += (data.len() - from) as u64;
    }
    Ok(written)
}
