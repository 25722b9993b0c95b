//! Ownership, extended attributes, mode and times of restored entries, set
//! through a handle on the entry itself, never through a path.

use super::handles::{check, fstat, Stat};
use crate::error::{Error, Result};
use cairn_format::tree::Xattr;
use cairn_format::Timestamp;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

/// Metadata for a restored entry.
pub(super) struct Meta {
    /// Local user and group IDs, when restoring as root.
    pub(super) owner: Option<(u32, u32)>,
    pub(super) xattrs: Vec<Xattr>,
    /// Permission, set-ID and sticky bits.
    pub(super) mode: u32,
    pub(super) mtime: Timestamp,
}

/// An entry to give metadata to.
#[derive(Clone, Copy)]
pub(super) enum Handle<'a> {
    /// An open file or directory.
    Open(BorrowedFd<'a>),
    /// An `O_PATH` handle on a symlink, FIFO or device node, which is not
    /// opened for reading. It is reached through `/proc/self/fd`, whose link
    /// leads to the entry itself (a symlink is not followed from there).
    Entry(BorrowedFd<'a>),
}

/// What applying a [`Meta`] would change.
struct Changes {
    owner: bool,
    xattrs: bool,
    mode: bool,
    times: bool,
}

impl Meta {
    /// True when [`Meta::apply`] would change nothing.
    pub(super) fn matches(&self, h: Handle<'_>) -> io::Result<bool> {
        let c = self.changes(h, &h.stat()?);
        Ok(!(c.owner || c.xattrs || c.mode || c.times))
    }

    /// Applies ownership, extended attributes, mode and times, each only
    /// where it differs, in that order (chown clears set-ID bits). `path`
    /// names the entry in errors.
    pub(super) fn apply(&self, h: Handle<'_>, path: &Path) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("cannot set {what} of {}", path.display()), e);
        let current = h.stat().map_err(|e| io("metadata", e))?;
        let c = self.changes(h, &current);
        if let (true, Some((uid, gid))) = (c.owner, self.owner) {
            h.chown(uid, gid).map_err(|e| io("owner", e))?;
        }
        if c.xattrs {
            for x in &self.xattrs {
                h.set_xattr(x).map_err(|e| io("extended attributes", e))?;
            }
        }
        if c.mode || (c.owner && !current.is_symlink()) {
            h.chmod(self.mode).map_err(|e| io("mode", e))?;
        }
        if c.times {
            h.set_times(self.mtime).map_err(|e| io("times", e))?;
        }
        Ok(())
    }

    fn changes(&self, h: Handle<'_>, current: &Stat) -> Changes {
        Changes {
            owner: self.owner.is_some_and(|o| o != current.owner()),
            xattrs: !self.xattrs.is_empty() && h.xattrs().ok().as_ref() != Some(&self.xattrs),
            // A symlink's mode is not its own to set.
            mode: !current.is_symlink() && current.permissions() != self.mode,
            times: current.mtime() != (self.mtime.secs, self.mtime.nanos),
        }
    }
}

impl Handle<'_> {
    fn stat(self) -> io::Result<Stat> {
        match self {
            Handle::Open(fd) | Handle::Entry(fd) => fstat(fd),
        }
    }

    fn chown(self, uid: u32, gid: u32) -> io::Result<()> {
        // SAFETY (both): the descriptor is open; the empty path is NUL-terminated.
        check(match self {
            Handle::Open(fd) => unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) },
            Handle::Entry(fd) => unsafe {
                let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
                libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, flags)
            },
        })
    }

    fn chmod(self, mode: u32) -> io::Result<()> {
        // SAFETY (both): the descriptor is open; the path is NUL-terminated.
        check(match self {
            Handle::Open(fd) => unsafe { libc::fchmod(fd.as_raw_fd(), mode) },
            Handle::Entry(fd) => unsafe { libc::chmod(proc_path(fd).as_ptr(), mode) },
        })
    }

    /// Sets the access and modification times to `t`.
    fn set_times(self, t: Timestamp) -> io::Result<()> {
        let ts = libc::timespec {
            tv_sec: t.secs as libc::time_t,
            tv_nsec: i64::from(t.nanos) as _,
        };
        let times = [ts, ts];
        // SAFETY (both): the descriptor is open, the path NUL-terminated,
        // `times` holds two timespecs.
        check(match self {
            Handle::Open(fd) => unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) },
            Handle::Entry(fd) => unsafe {
                libc::utimensat(libc::AT_FDCWD, proc_path(fd).as_ptr(), times.as_ptr(), 0)
            },
        })
    }

    fn xattrs(self) -> io::Result<Vec<Xattr>> {
        use crate::source::xattrs_with;
        match self {
            // SAFETY (all four): the descriptor is open, the strings are
            // NUL-terminated and each buffer is valid for its length.
            Handle::Open(fd) => xattrs_with(
                |buf| unsafe {
                    libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                },
                |name, buf| unsafe {
                    let (fd, name) = (fd.as_raw_fd(), name.as_ptr());
                    libc::fgetxattr(fd, name, buf.as_mut_ptr().cast(), buf.len())
                },
            ),
            Handle::Entry(fd) => {
                let p = proc_path(fd);
                xattrs_with(
                    |buf| unsafe {
                        libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                    },
                    |name, buf| unsafe {
                        let (p, name) = (p.as_ptr(), name.as_ptr());
                        libc::getxattr(p, name, buf.as_mut_ptr().cast(), buf.len())
                    },
                )
            }
        }
    }

    /// Sets one extended attribute. Attributes the file system or this user
    /// cannot hold are skipped.
    fn set_xattr(self, x: &Xattr) -> io::Result<()> {
        let name = CString::new(x.name.clone()).map_err(io::Error::other)?;
        let (value, len) = (x.value.as_ptr().cast(), x.value.len());
        // SAFETY (both): the descriptor is open, the strings NUL-terminated,
        // the value valid for its length.
        let rc = match self {
            Handle::Open(fd) => unsafe {
                libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value, len, 0)
            },
            Handle::Entry(fd) => unsafe {
                libc::setxattr(proc_path(fd).as_ptr(), name.as_ptr(), value, len, 0)
            },
        };
        match check(rc) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) => Ok(()),
            other => other,
        }
    }
}

/// The `/proc` path that leads to what `fd` refers to.
fn proc_path(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}
