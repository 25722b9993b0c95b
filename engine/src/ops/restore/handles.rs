//! Directories held open while a restore writes into them, and the
//! operations it makes on their entries, each relative to such a handle.
//!
//! An entry is named by one component in an open directory, and a symlink
//! there is never followed: no path below the target is resolved twice, so
//! a component that another user swaps for a symlink during the restore
//! cannot redirect a write (the operation fails instead).

use crate::nesting;
use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// What `stat` says of an entry.
#[derive(Clone, Copy)]
pub(super) struct Stat(libc::stat);

impl Stat {
    /// The type bits of the mode (`S_IFREG`, `S_IFDIR`, ...).
    pub(super) fn kind(&self) -> libc::mode_t {
        self.0.st_mode & libc::S_IFMT
    }

    pub(super) fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    pub(super) fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }

    pub(super) fn is_symlink(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }

    /// Permission, set-ID and sticky bits.
    pub(super) fn permissions(&self) -> u32 {
        self.0.st_mode & 0o7777
    }

    pub(super) fn owner(&self) -> (u32, u32) {
        (self.0.st_uid, self.0.st_gid)
    }

    pub(super) fn len(&self) -> u64 {
        self.0.st_size as u64
    }

    /// Modification time: seconds and nanoseconds.
    pub(super) fn mtime(&self) -> (i64, u32) {
        (self.0.st_mtime, self.0.st_mtime_nsec as u32)
    }

    /// Hard links to it.
    pub(super) fn links(&self) -> u64 {
        // `nlink_t` is narrower on some architectures.
        #[allow(clippy::useless_conversion)]
        u64::from(self.0.st_nlink)
    }

    pub(super) fn rdev(&self) -> u64 {
        self.0.st_rdev
    }

    /// Device and inode: which file it is.
    pub(super) fn id(&self) -> (u64, u64) {
        (self.0.st_dev, self.0.st_ino)
    }
}

/// The `stat` of an open descriptor (an `O_PATH` one included).
pub(super) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: the descriptor is open; `st` is valid for writing a `stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled `st`.
    Ok(Stat(unsafe { st.assume_init() }))
}

/// An open directory.
pub(super) struct Dir(OwnedFd);

/// Tells temporary names made by this process apart.
static TEMP_NAMES: AtomicU64 = AtomicU64::new(0);

impl Dir {
    /// Opens the directory at `path`, creating it and its parents if missing.
    /// Symlinks on the way are followed: where the target is, is the user's
    /// choice.
    pub(super) fn open_target(path: &Path) -> io::Result<Dir> {
        std::fs::create_dir_all(path)?;
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(Dir(dir.into()))
    }

    pub(super) fn stat(&self) -> io::Result<Stat> {
        fstat(self.as_fd())
    }

    /// The `stat` of entry `name`, not following a symlink; `None` when
    /// there is no such entry.
    pub(super) fn stat_at(&self, name: &[u8]) -> io::Result<Option<Stat>> {
        let c = c_name(name)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the descriptor is open, `c` NUL-terminated, `st` writable.
        let rc = unsafe {
            libc::fstatat(
                self.raw(),
                c.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(rc) {
            // SAFETY: fstatat succeeded, so it filled `st`.
            Ok(()) => Ok(Some(Stat(unsafe { st.assume_init() }))),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens subdirectory `name`; fails if it is a symlink or not a directory.
    pub(super) fn open_dir(&self, name: &[u8]) -> io::Result<Dir> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        self.open_at(name, flags, 0).map(Dir)
    }

    /// Creates subdirectory `name`, private until its metadata is applied.
    pub(super) fn make_dir(&self, name: &[u8]) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: the descriptor is open and `c` NUL-terminated.
        check(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), 0o700) })
    }

    /// Creates file `name`, which must not exist, private until its
    /// metadata is applied.
    pub(super) fn create_file(&self, name: &[u8]) -> io::Result<File> {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        self.open_at(name, flags, 0o600).map(File::from)
    }

    /// Creates a file under a new temporary name; returns the name and file.
    pub(super) fn create_temp(&self) -> io::Result<(Vec<u8>, File)> {
        loop {
            let n = TEMP_NAMES.fetch_add(1, Ordering::Relaxed);
            let name = format!(".cairn-restore-{}-{n}", std::process::id()).into_bytes();
            match self.create_file(&name) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => return other.map(|file| (name, file)),
            }
        }
    }

    /// Opens the regular file `name` for reading (and writing with `write`);
    /// fails, without waiting or side effects, if it is anything else.
    pub(super) fn open_file(&self, name: &[u8], write: bool) -> io::Result<(File, Stat)> {
        let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
        // Non-blocking, so that a FIFO swapped in is not waited on (it has
        // no effect on a regular file).
        let flags = access | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = self.open_at(name, flags, 0)?;
        let st = fstat(fd.as_fd())?;
        if !st.is_file() {
            return Err(io::Error::other("it is no longer a regular file"));
        }
        Ok((File::from(fd), st))
    }

    /// A handle on entry `name` itself (a symlink included) that cannot
    /// read or write it: for setting its metadata.
    pub(super) fn open_entry(&self, name: &[u8]) -> io::Result<OwnedFd> {
        self.open_at(name, libc::O_PATH | libc::O_NOFOLLOW, 0)
    }

    pub(super) fn symlink(&self, target: &[u8], name: &[u8]) -> io::Result<()> {
        let (t, c) = (c_name(target)?, c_name(name)?);
        // SAFETY: the descriptor is open and both strings NUL-terminated.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.raw(), c.as_ptr()) })
    }

    /// Creates the FIFO or device node `name` of type `kind`.
    pub(super) fn mknod(&self, name: &[u8], kind: libc::mode_t, rdev: u64) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: the descriptor is open and `c` NUL-terminated.
        let rc =
            unsafe { libc::mknodat(self.raw(), c.as_ptr(), kind | 0o600, rdev as libc::dev_t) };
        check(rc)
    }

    /// Makes `name` a hard link to entry `from_name` of `from` (not
    /// following it if it is a symlink).
    pub(super) fn link(&self, name: &[u8], from: &Dir, from_name: &[u8]) -> io::Result<()> {
        let (c, f) = (c_name(name)?, c_name(from_name)?);
        // SAFETY: both descriptors are open and both strings NUL-terminated.
        check(unsafe { libc::linkat(from.raw(), f.as_ptr(), self.raw(), c.as_ptr(), 0) })
    }

    /// Renames entry `from` to `to`, replacing what `to` names.
    pub(super) fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (f, t) = (c_name(from)?, c_name(to)?);
        // SAFETY: the descriptor is open and both strings NUL-terminated.
        check(unsafe { libc::renameat(self.raw(), f.as_ptr(), self.raw(), t.as_ptr()) })
    }

    /// Removes entry `name` if it is not a directory.
    pub(super) fn unlink(&self, name: &[u8]) -> io::Result<()> {
        self.unlink_at(name, 0)
    }

    /// Removes entry `name` if it is still `file` (one this restore made or
    /// was writing, that failed), and leaves whatever else is there now.
    pub(super) fn unlink_if(&self, name: &[u8], file: &File) -> io::Result<()> {
        let id = fstat(file.as_fd())?.id();
        match self.stat_at(name)? {
            Some(st) if st.id() == id => self.unlink(name),
            _ => Ok(()),
        }
    }

    /// Removes entry `name` of any kind, a directory with everything in
    /// it, never following a symlink; nothing there is not an error.
    pub(super) fn remove(&self, name: &[u8]) -> io::Result<()> {
        match self.stat_at(name)? {
            Some(st) if st.is_dir() => {
                let dir = self.open_dir(name)?;
                for entry in dir.names()? {
                    nesting::grow(|| dir.remove(&entry))?;
                }
                self.unlink_at(name, libc::AT_REMOVEDIR)
            }
            Some(_) => self.unlink_at(name, 0),
            None => Ok(()),
        }
    }

    /// The names of the entries, `.` and `..` left out.
    pub(super) fn names(&self) -> io::Result<Vec<Vec<u8>>> {
        // The directory stream takes a descriptor of its own.
        let fd = self.open_at(b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        // SAFETY: the descriptor is open; on success the stream owns it.
        let stream = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        if stream.is_null() {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(fd);
        let mut names = Vec::new();
        let result = loop {
            // SAFETY: errno is thread-local; readdir reports errors only through it.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `stream` is an open directory stream.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                let e = io::Error::last_os_error();
                break if e.raw_os_error() == Some(0) {
                    Ok(())
                } else {
                    Err(e)
                };
            }
            // SAFETY: readdir returned an entry whose name is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        };
        // SAFETY: `stream` is open, and not used after this.
        unsafe { libc::closedir(stream) };
        result.map(|()| names)
    }

    /// The target of symlink `name`.
    pub(super) fn read_link(&self, name: &[u8]) -> io::Result<Vec<u8>> {
        let c = c_name(name)?;
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: the descriptor is open, `c` NUL-terminated, `buf` writable for its length.
            let n = unsafe {
                libc::readlinkat(self.raw(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if (n as usize) < buf.len() {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            buf.resize(buf.len() * 4, 0);
        }
    }

    /// Flushes the file system holding the directory to storage.
    pub(super) fn sync_fs(&self) -> io::Result<()> {
        // SAFETY: the descriptor is open.
        check(unsafe { libc::syncfs(self.raw()) })
    }

    pub(super) fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    fn raw(&self) -> libc::c_int {
        self.0.as_raw_fd()
    }

    fn open_at(&self, name: &[u8], flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        let c = c_name(name)?;
        // SAFETY: the descriptor is open and `c` NUL-terminated.
        let fd = unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                flags | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn unlink_at(&self, name: &[u8], flags: libc::c_int) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: the descriptor is open and `c` NUL-terminated.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), flags) })
    }
}

/// An entry name (or symlink target) as a C string.
fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(io::Error::other)
}

/// The result of a call that returns 0 or -1 and sets `errno`.
pub(super) fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
