//! Reading the source file system: metadata into tree nodes, and files opened for backup.

use crate::sysinfo::NameCache;
use cairn_format::tree::{Node, NodeKind, Xattr};
use cairn_format::Timestamp;
use std::ffi::{CStr, CString};
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The kind of entry at a path, before its content is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Anything else, recorded with its metadata only.
    Special,
}

/// Classifies an `lstat` result.
pub fn entry_type(meta: &Metadata) -> EntryType {
    let ft = meta.file_type();
    if ft.is_file() {
        EntryType::File
    } else if ft.is_dir() {
        EntryType::Dir
    } else if ft.is_symlink() {
        EntryType::Symlink
    } else {
        EntryType::Special
    }
}

/// The node for an entry whose `lstat` is `meta`; `kind` carries the content.
pub fn node(name: Vec<u8>, meta: &Metadata, kind: NodeKind, names: &mut NameCache) -> Node {
    Node {
        name,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        user: names.user(meta.uid()),
        group: names.group(meta.gid()),
        mtime: Timestamp {
            secs: meta.mtime(),
            nanos: meta.mtime_nsec() as u32,
        },
        ctime: Timestamp {
            secs: meta.ctime(),
            nanos: meta.ctime_nsec() as u32,
        },
        size: meta.len(),
        inode: meta.ino(),
        device: meta.dev(),
        links: meta.nlink(),
        xattrs: Vec::new(),
    }
}

/// Modification time of an `lstat` result.
pub fn mtime(meta: &Metadata) -> Timestamp {
    Timestamp {
        secs: meta.mtime(),
        nanos: meta.mtime_nsec() as u32,
    }
}

/// Status change time of an `lstat` result.
pub fn ctime(meta: &Metadata) -> Timestamp {
    Timestamp {
        secs: meta.ctime(),
        nanos: meta.ctime_nsec() as u32,
    }
}

/// The kind of a special file (FIFO, socket, device), never opened.
pub fn special_kind(meta: &Metadata) -> NodeKind {
    let ft = meta.file_type();
    if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::CharDevice { rdev: meta.rdev() }
    } else if ft.is_block_device() {
        NodeKind::BlockDevice { rdev: meta.rdev() }
    } else {
        NodeKind::Socket
    }
}

/// Opens a file for reading without updating its access time where allowed,
/// and without following a symlink swapped in since it was listed.
pub fn open_for_backup(path: &Path) -> io::Result<File> {
    let open = |flags| {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_NOFOLLOW)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    }
}

/// The extended attributes of `path` (not following a symlink), sorted by
/// name; empty where the file system has none or does not support them.
pub fn read_xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    let c = cpath(path)?;
    xattrs_with(
        // SAFETY: `c` is NUL-terminated; the buffer is valid for its length.
        |buf| unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) },
        // SAFETY: both strings are NUL-terminated; the buffer is valid for its length.
        |name, buf| unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        },
    )
}

/// Extended attributes sorted by name, read with `list` (names into a
/// buffer) and `get` (one value into a buffer), each returning a length or
/// -1 as the `listxattr` and `getxattr` calls do.
pub(crate) fn xattrs_with(
    list: impl Fn(&mut [u8]) -> isize,
    get: impl Fn(&CStr, &mut [u8]) -> isize,
) -> io::Result<Vec<Xattr>> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        let n = list(&mut names);
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(io::Error::other)?;
        let mut value = vec![0u8; 256];
        loop {
            let n = get(&cname, &mut value);
            if n >= 0 {
                value.truncate(n as usize);
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => value.resize(value.len() * 4, 0),
                // Removed since it was listed.
                Some(libc::ENODATA) => {
                    value.clear();
                    break;
                }
                _ => return Err(e),
            }
        }
        out.push(Xattr {
            name: name.to_vec(),
            value,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `path` as a C string.
pub fn cpath(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}
