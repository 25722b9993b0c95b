//! The temporary files local storage writes before linking them to their
//! names (SPEC §2.3), written past the page cache where that pays.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Files of at least this many bytes are written past the page cache.
pub(super) const DIRECT_MIN: usize = 1 << 20;
/// The alignment and the unit of writes past the page cache.
pub(super) const DIRECT_ALIGN: usize = 4096;
/// Bytes gathered in an aligned buffer per write past the page cache.
pub(super) const DIRECT_CHUNK: usize = 1 << 20;

/// A new temporary file, removed if dropped before [`TempFile::finish`].
///
/// Large files (packs) are written past the page cache (`O_DIRECT`): a
/// backup never reads them back, so caching them would only evict what the
/// machine uses, and copying them into fresh cache pages costs more CPU
/// than the copy into a reused aligned buffer. Where the file system
/// refuses it, they are written as other files are.
pub(super) struct TempFile {
    file: File,
    path: PathBuf,
    /// Bytes waiting to be written past the page cache, in whole chunks;
    /// `None` once the file is written through the page cache.
    direct: Option<Aligned>,
    finished: bool,
}

/// A buffer of [`DIRECT_CHUNK`] bytes at an address aligned for `O_DIRECT`.
struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    filled: usize,
}

impl Aligned {
    fn new() -> Aligned {
        let bytes = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN);
        Aligned {
            bytes,
            start,
            filled: 0,
        }
    }

    fn filled(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.filled]
    }

    /// Copies in as much of `bytes` as fits; returns how much that was.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(DIRECT_CHUNK - self.filled);
        let at = self.start + self.filled;
        self.bytes[at..at + n].copy_from_slice(&bytes[..n]);
        self.filled += n;
        n
    }
}

impl TempFile {
    /// Creates a new temporary file in `dir` (mode 0600, never an existing
    /// one), to be written past the page cache if `direct`.
    pub(super) fn create(dir: &Path, direct: bool) -> std::io::Result<TempFile> {
        let path = dir.join(format!(
            ".tmp-{}",
            hex::encode(cairn_format::crypto::random_array::<8>())
        ));
        let create = |flags| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(flags)
                .open(&path)
        };
        let (file, direct) = match direct {
            true => match create(libc::O_DIRECT) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Linux creates the file before it refuses O_DIRECT.
                    let _ = fs::remove_file(&path);
                    (create(0)?, false)
                }
                opened => (opened?, true),
            },
            false => (create(0)?, false),
        };
        Ok(TempFile {
            file,
            path,
            direct: direct.then(Aligned::new),
            finished: false,
        })
    }

    /// Where the file is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes`.
    pub(super) fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while let Some(aligned) = self.direct.as_mut() {
            bytes = &bytes[aligned.fill(bytes)..];
            if bytes.is_empty() {
                return Ok(());
            }
            self.drain(false)?;
        }
        self.file.write_all(bytes)
    }

    /// Writes what the aligned buffer holds: whole blocks past the page
    /// cache, and, when `last` or when the file system refuses a direct
    /// write, the rest through the page cache from then on.
    fn drain(&mut self, last: bool) -> std::io::Result<()> {
        let Some(aligned) = self.direct.as_mut() else {
            return Ok(());
        };
        let pending = aligned.filled();
        let whole = pending.len() / DIRECT_ALIGN * DIRECT_ALIGN;
        let mut done = 0;
        let mut refused = false;
        while done < whole {
            match self.file.write(&pending[done..whole]) {
                Ok(w) if w > 0 && w % DIRECT_ALIGN == 0 => done += w,
                Ok(w) => {
                    done += w;
                    refused = true;
                    break;
                }
                // A file system that takes O_DIRECT at open but not this write.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    refused = true;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !(last || refused) {
            aligned.filled = 0;
            return Ok(());
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor `self.file` keeps open; it reads no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.file.write_all(&pending[done..])?;
        self.direct = None;
        Ok(())
    }

    /// Writes what is left and syncs the file; returns its path.
    pub(super) fn finish(mut self) -> std::io::Result<PathBuf> {
        self.drain(true)?;
        self.file.sync_all()?;
        self.finished = true;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to a new temporary file in `dir`, durably; returns its path.
pub(super) fn write_temporary(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let mut file = TempFile::create(dir, bytes.len() >= DIRECT_MIN)?;
    file.write(bytes)?;
    file.finish()
}
