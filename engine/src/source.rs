//! Reading the source file system: metadata into tree nodes, and files opened for backup.

use crate::sysinfo::NameCache;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::Timestamp;
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
