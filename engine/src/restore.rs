//! Writing a snapshot, or one path of it, back to the file system.
//!
//! Every entry name was validated when its tree was decoded (no `/`, `..` or
//! NUL), and existing entries in the way are removed rather than followed, so
//! a restore never writes outside its target.

use crate::browse;
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::sysinfo::NameCache;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Xattr};
use cairn_format::{BlobId, BlobKind, Timestamp};
use filetime::FileTime;
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Counts of what was restored, and what could not be.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Regular files written.
    pub files: u64,
    /// Directories created or reused.
    pub dirs: u64,
    /// Symlinks and special files created.
    pub others: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Entries that could not be restored, with the reason.
    pub errors: Vec<(PathBuf, Error)>,
}

/// Restores `snapshot` (or only `subpath` inside it) into `target`.
///
/// A damaged or missing blob fails only the files that need it: they are
/// listed in [`RestoreReport::errors`] and everything else is restored.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    target: &Path,
) -> Result<RestoreReport> {
    let mut r = Restorer {
        names: NameCache::default(),
        hard_links: HashMap::new(),
        repo,
        report: RestoreReport::default(),
        as_root: crate::sysinfo::ids().0 == 0,
    };
    let start = match subpath {
        Some(p) => browse::find_node(repo, &snapshot.tree, p)?,
        None => None,
    };
    fs::create_dir_all(target)
        .map_err(|e| Error::io(format!("cannot create target {}", target.display()), e))?;
    match start {
        Some(node) => r.entry(&node, &target.join(OsStr::from_bytes(&node.name))),
        None => r.dir_contents(&snapshot.tree, target),
    }
    Ok(r.report)
}

struct Restorer<'r> {
    names: NameCache,
    /// First restored path of each multiply-linked file, by recorded (device, inode).
    hard_links: HashMap<(u64, u64), PathBuf>,
    repo: &'r Repository,
    report: RestoreReport,
    as_root: bool,
}

impl Restorer<'_> {
    fn dir_contents(&mut self, tree: &cairn_format::BlobId, dir: &Path) {
        match self.repo.load_tree(tree) {
            Ok(tree) => {
                for node in &tree.nodes {
                    self.entry(node, &dir.join(OsStr::from_bytes(&node.name)));
                }
            }
            Err(e) => self.report.errors.push((dir.to_path_buf(), e)),
        }
    }

    fn entry(&mut self, node: &Node, path: &Path) {
        if let Err(e) = self.try_entry(node, path) {
            self.report.errors.push((path.to_path_buf(), e));
        }
    }

    fn try_entry(&mut self, node: &Node, path: &Path) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let existing = fs::symlink_metadata(path).ok();
        let is_dir = matches!(node.kind, NodeKind::Dir { .. });
        match &existing {
            Some(m) if m.is_dir() && is_dir => {}
            Some(m) if m.is_dir() => fs::remove_dir_all(path).map_err(|e| io("replace", e))?,
            Some(_) => fs::remove_file(path).map_err(|e| io("replace", e))?,
            None => {}
        }
        match &node.kind {
            NodeKind::Dir { subtree } => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    fs::create_dir(path).map_err(|e| io("create directory", e))?;
                }
                self.report.dirs += 1;
                self.dir_contents(subtree, path);
            }
            NodeKind::File { .. } if self.link_existing(node, path)? => return Ok(()),
            NodeKind::File { content } => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| io("create", e))?;
                let written = self.write_content(&mut file, content, path);
                if let Err(e) = written {
                    // A file that cannot be restored whole is not left behind half-written.
                    drop(file);
                    let _ = fs::remove_file(path);
                    return Err(e);
                }
                self.report.files += 1;
                if node.links > 1 {
                    self.hard_links
                        .insert((node.device, node.inode), path.to_path_buf());
                }
            }
            NodeKind::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
                    .map_err(|e| io("create symlink", e))?;
                self.report.others += 1;
            }
            NodeKind::Fifo => {
                mknod(path, libc::S_IFIFO, 0).map_err(|e| io("create FIFO", e))?;
                self.report.others += 1;
            }
            NodeKind::CharDevice { rdev } | NodeKind::BlockDevice { rdev } => {
                let ty = if matches!(node.kind, NodeKind::CharDevice { .. }) {
                    libc::S_IFCHR
                } else {
                    libc::S_IFBLK
                };
                if !self.as_root {
                    return Err(Error::Invalid(format!(
                        "{}: device nodes can only be restored as root",
                        path.display()
                    )));
                }
                mknod(path, ty, *rdev).map_err(|e| io("create device node", e))?;
                self.report.others += 1;
            }
            NodeKind::Socket => return Ok(()), // a socket is re-created by its server, never restored
        }
        self.metadata(node, path)
    }

    /// Links `path` to an already restored file of the same recorded inode;
    /// false when this is the first of its links.
    fn link_existing(&mut self, node: &Node, path: &Path) -> Result<bool> {
        let key = (node.device, node.inode);
        let Some(first) = self.hard_links.get(&key).filter(|_| node.links > 1) else {
            return Ok(false);
        };
        fs::hard_link(first, path).map_err(|e| {
            Error::io(
                format!("cannot link {} to {}", path.display(), first.display()),
                e,
            )
        })?;
        self.report.files += 1;
        Ok(true)
    }

    /// Writes a file's content; blocks of zeros are skipped, not written, so
    /// sparse files stay sparse.
    fn write_content(
        &mut self,
        file: &mut fs::File,
        content: &[BlobId],
        path: &Path,
    ) -> Result<()> {
        const BLOCK: usize = 4096;
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let mut end = 0u64;
        for id in content {
            let data = self.repo.read_blob(BlobKind::Data, id)?;
            for block in data.chunks(BLOCK) {
                if block.iter().all(|&b| b == 0) {
                    file.seek(SeekFrom::Current(block.len() as i64))
                        .map_err(|e| io("seek in", e))?;
                } else {
                    file.write_all(block).map_err(|e| io("write", e))?;
                }
            }
            end += data.len() as u64;
            self.report.bytes += data.len() as u64;
        }
        // A file that ends in a hole gets its length here.
        file.set_len(end).map_err(|e| io("set the length of", e))?;
        file.sync_all().map_err(|e| io("sync", e))
    }

    /// Applies ownership (as root; by name where this system knows the name),
    /// extended attributes, mode and times, in that order (chown clears set-ID bits).
    fn metadata(&mut self, node: &Node, path: &Path) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("cannot set {what} of {}", path.display()), e);
        let symlink = matches!(node.kind, NodeKind::Symlink { .. });
        if self.as_root {
            let uid = self.names.local_uid(&node.user, node.uid);
            let gid = self.names.local_gid(&node.group, node.gid);
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| io("owner", e))?;
        }
        for x in &node.xattrs {
            set_xattr(path, x).map_err(|e| io("extended attributes", e))?;
        }
        if !symlink {
            fs::set_permissions(path, fs::Permissions::from_mode(node.mode))
                .map_err(|e| io("mode", e))?;
        }
        let mtime = file_time(node.mtime);
        filetime::set_symlink_file_times(path, mtime, mtime).map_err(|e| io("times", e))
    }
}

/// Sets one extended attribute without following a symlink. Attributes the
/// target file system or this user cannot hold are skipped.
fn set_xattr(path: &Path, x: &Xattr) -> std::io::Result<()> {
    let c = crate::source::cpath(path)?;
    let name = CString::new(x.name.clone()).map_err(std::io::Error::other)?;
    // SAFETY: both strings are NUL-terminated; the value buffer is valid for its length.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            name.as_ptr(),
            x.value.as_ptr().cast(),
            x.value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOTSUP) | Some(libc::EPERM) => Ok(()),
        _ => Err(e),
    }
}

fn file_time(t: Timestamp) -> FileTime {
    FileTime::from_unix_time(t.secs, t.nanos)
}

fn mknod(path: &Path, kind: libc::mode_t, rdev: u64) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, rdev as libc::dev_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
