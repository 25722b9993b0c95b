//! Writing a snapshot, or part of it, back to the file system.
//!
//! Every entry name was validated when its tree was decoded (no `/`, `..` or
//! NUL), and entries in the way are removed rather than followed, so a restore
//! never writes outside its target. Existing files are compared chunk by chunk
//! against the snapshot (by blob ID) and only differing chunks are written;
//! metadata is set only where it differs, so restoring onto an identical tree
//! writes nothing.
//!
//! The tree walk runs on the calling thread: it creates directories, links and
//! special files, and queues file content for worker threads (see `content`).
//! Directory metadata is applied last, deepest first, once everything inside
//! is written. The restore is durable when it returns: one `syncfs` of the
//! target's file system flushes it all, instead of a sync per file.

mod content;

use crate::browse;
use crate::error::{Error, Result};
use crate::filter::PatternSet;
use crate::nesting;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::sysinfo::NameCache;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{FileData, Node, NodeKind, Xattr};
use cairn_format::{BlobId, Timestamp};
use content::{Mode, Queue, Target, Writer};
use filetime::FileTime;
use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to do with a file that already exists at the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Compare its content with the snapshot and rewrite what differs.
    #[default]
    Always,
    /// Keep it without reading when its size and modification time match the
    /// snapshot; otherwise as `Always`.
    IfChanged,
    /// Never touch it.
    Never,
}

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore only paths matching these patterns (and what is below them);
    /// patterns as for backup excludes, matched against paths in the snapshot.
    pub include: Vec<String>,
    /// Like `include`, ignoring case.
    pub iinclude: Vec<String>,
    /// Leave out paths matching these patterns.
    pub exclude: Vec<String>,
    /// Like `exclude`, ignoring case.
    pub iexclude: Vec<String>,
    /// What to do with existing files.
    pub overwrite: Overwrite,
    /// Remove entries of restored directories that are not in the snapshot.
    pub delete: bool,
    /// Read every restored file back and check it against the snapshot.
    pub verify: bool,
    /// Counts the files and bytes to write, and those written.
    pub progress: Option<Arc<Progress>>,
}

/// Counts of what was restored, and what could not be.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Regular files written or updated.
    pub files: u64,
    /// Existing files found identical to the snapshot (or kept by `Never`).
    pub files_unchanged: u64,
    /// Directories created or reused.
    pub dirs: u64,
    /// Symlinks and special files created.
    pub others: u64,
    /// Bytes of file content the restored files hold.
    pub bytes: u64,
    /// Bytes of file content actually written.
    pub bytes_written: u64,
    /// Entries removed because they are not in the snapshot (`delete`).
    pub deleted: u64,
    /// Files read back and found correct (`verify`).
    pub verified: u64,
    /// Entries that could not be restored, with the reason.
    pub errors: Vec<(PathBuf, Error)>,
}

/// Restores `snapshot` (or only `subpath` inside it) into `target` with the default options.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    target: &Path,
) -> Result<RestoreReport> {
    restore_with(repo, snapshot, subpath, target, &RestoreOptions::default())
}

impl RestoreReport {
    /// Adds the counts and errors of `other`.
    fn absorb(&mut self, other: RestoreReport) {
        let RestoreReport {
            files,
            files_unchanged,
            dirs,
            others,
            bytes,
            bytes_written,
            deleted,
            verified,
            errors,
        } = other;
        self.files += files;
        self.files_unchanged += files_unchanged;
        self.dirs += dirs;
        self.others += others;
        self.bytes += bytes;
        self.bytes_written += bytes_written;
        self.deleted += deleted;
        self.verified += verified;
        self.errors.extend(errors);
    }
}

/// Restores `snapshot` (or only `subpath` inside it) into `target`.
///
/// A damaged or missing blob fails only the files that need it: they are
/// listed in [`RestoreReport::errors`], not left half-written, and everything
/// else is restored.
pub fn restore_with(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    let include = PatternSet::new(&opts.include, &opts.iinclude)?;
    let exclude = PatternSet::exclusions(&opts.exclude, &opts.iexclude)?;
    // The level of the tree that lists the start node (SPEC §12.5).
    let (start, start_path, start_level) = match subpath {
        Some(p) => {
            let names = browse::path_names(p)?;
            let mut path = Vec::new();
            for name in &names {
                path.push(b'/');
                path.extend_from_slice(name);
            }
            let level = names.len().saturating_sub(1);
            (browse::find_node(repo, &snapshot.tree, p)?, path, level)
        }
        None => (None, b"/".to_vec(), 0),
    };
    let wanted = if include.is_empty() {
        None
    } else {
        let tree = match &start {
            Some(Node {
                kind: NodeKind::Dir { subtree },
                ..
            }) => Some(*subtree),
            Some(_) => None,
            None => Some(snapshot.tree),
        };
        Some(wanted_dirs(repo, tree, &start_path, &include)?)
    };
    fs::create_dir_all(target)
        .map_err(|e| Error::io(format!("cannot create target {}", target.display()), e))?;
    let writer = Writer::new(repo, opts.verify, opts.progress.clone());
    let (walked, written) = writer.with_workers(|queue| {
        let mut r = Restorer {
            repo,
            opts,
            include,
            exclude,
            wanted,
            report: RestoreReport::default(),
            as_root: crate::sysinfo::ids().0 == 0,
            names: NameCache::default(),
            hard_links: HashMap::new(),
            linked: Vec::new(),
            dirs: Vec::new(),
            queue,
        };
        match start {
            Some(node) => r.entry(
                &node,
                &target.join(OsStr::from_bytes(&node.name)),
                &start_path,
                false,
                start_level,
            ),
            None => r.dir_contents(&snapshot.tree, target, b"/", false, 0),
        }
        r.queue.finish();
        if let Some(p) = &opts.progress {
            p.total_complete();
        }
        (r.report, r.linked, r.dirs)
    });
    let (mut report, linked, dirs) = walked;
    report.absorb(written);
    // A link made to a file that then failed would hold what is left of it.
    for (link, first) in linked {
        if fs::symlink_metadata(&first).is_err() {
            let _ = fs::remove_file(&link);
            let why = format!("{} could not be restored", first.display());
            report.errors.push((link, Error::Invalid(why)));
        }
    }
    // Deepest first: setting a directory's metadata does not touch its parent.
    for (path, meta) in dirs {
        if let Err(e) = meta.apply(&path) {
            report.errors.push((path, e));
        }
    }
    if let Err(e) = syncfs(target) {
        let context = format!("cannot flush {} to storage", target.display());
        report
            .errors
            .push((target.to_path_buf(), Error::io(context, e)));
    }
    Ok(report)
}

/// Paths of the directories that hold an entry matching `include`: they are
/// created so the matches have somewhere to go.
fn wanted_dirs(
    repo: &Repository,
    tree: Option<BlobId>,
    prefix: &[u8],
    include: &PatternSet,
) -> Result<HashSet<Vec<u8>>> {
    let mut wanted = HashSet::new();
    if include.is_match(OsStr::from_bytes(prefix)) {
        wanted.insert(prefix.to_vec());
    }
    let Some(tree) = tree else { return Ok(wanted) };
    browse::walk(repo, &tree, prefix, &mut |path, _| {
        if include.is_match(OsStr::from_bytes(path)) {
            for (i, &b) in path.iter().enumerate() {
                if b == b'/' {
                    wanted.insert(path[..i.max(1)].to_vec());
                }
            }
        }
    })?;
    Ok(wanted)
}

struct Restorer<'r> {
    repo: &'r Repository,
    queue: Queue<'r>,
    opts: &'r RestoreOptions,
    include: PatternSet,
    exclude: PatternSet,
    /// With include patterns: directories on the way to a match.
    wanted: Option<HashSet<Vec<u8>>>,
    report: RestoreReport,
    as_root: bool,
    names: NameCache,
    /// First restored path of each multiply-linked file, by recorded (device, inode).
    hard_links: HashMap<(u64, u64), PathBuf>,
    /// Links made in this run, with the path they link to.
    linked: Vec<(PathBuf, PathBuf)>,
    /// Restored directories, deepest first, with the metadata to give them last.
    dirs: Vec<(PathBuf, Meta)>,
}

/// How an entry is selected.
#[derive(PartialEq)]
enum Selection {
    /// Not restored.
    Skip,
    /// Restored with everything below it.
    Whole,
    /// A directory restored only for the matches below it.
    Passage,
}

impl Restorer<'_> {
    fn select(&self, node: &Node, snap_path: &[u8], inside: bool) -> Selection {
        let path = OsStr::from_bytes(snap_path);
        if self.exclude.is_match(path) {
            return Selection::Skip;
        }
        match &self.wanted {
            None => Selection::Whole,
            Some(_) if inside || self.include.is_match(path) => Selection::Whole,
            Some(w) if matches!(node.kind, NodeKind::Dir { .. }) && w.contains(snap_path) => {
                Selection::Passage
            }
            Some(_) => Selection::Skip,
        }
    }

    /// Restores the entries of `tree`, a tree at `level` below the root.
    fn dir_contents(
        &mut self,
        tree: &BlobId,
        dir: &Path,
        snap_dir: &[u8],
        inside: bool,
        level: usize,
    ) {
        let tree = match self.repo.load_tree(tree) {
            Ok(t) => t,
            Err(e) => return self.report.errors.push((dir.to_path_buf(), e)),
        };
        for node in &tree.nodes {
            let mut snap_path = snap_dir.to_vec();
            if !snap_path.ends_with(b"/") {
                snap_path.push(b'/');
            }
            snap_path.extend_from_slice(&node.name);
            self.entry(
                node,
                &dir.join(OsStr::from_bytes(&node.name)),
                &snap_path,
                inside,
                level,
            );
        }
        if self.opts.delete && (inside || self.wanted.is_none()) {
            if let Err(e) = self.delete_extra(dir, &tree) {
                self.report.errors.push((dir.to_path_buf(), e));
            }
        }
    }

    /// Removes entries of `dir` that `tree` does not have.
    fn delete_extra(&mut self, dir: &Path, tree: &cairn_format::tree::Tree) -> Result<()> {
        let io = |e| Error::io(format!("cannot list {}", dir.display()), e);
        for entry in fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if tree.find(name.as_bytes()).is_none() {
                let path = entry.path();
                remove_any(&path)
                    .map_err(|e| Error::io(format!("cannot delete {}", path.display()), e))?;
                self.report.deleted += 1;
            }
        }
        Ok(())
    }

    /// Restores `node`, an entry of a tree at `level`.
    fn entry(&mut self, node: &Node, path: &Path, snap_path: &[u8], inside: bool, level: usize) {
        let selection = self.select(node, snap_path, inside);
        if selection == Selection::Skip {
            return;
        }
        let whole = selection == Selection::Whole;
        if let Err(e) = self.try_entry(node, path, snap_path, whole, level) {
            self.report.errors.push((path.to_path_buf(), e));
        }
    }

    fn try_entry(
        &mut self,
        node: &Node,
        path: &Path,
        snap_path: &[u8],
        whole: bool,
        level: usize,
    ) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let existing = fs::symlink_metadata(path).ok();
        if let (Some(m), NodeKind::Dir { .. }) = (&existing, &node.kind) {
            if !m.is_dir() {
                remove_any(path).map_err(|e| io("replace", e))?;
            }
        }
        match &node.kind {
            NodeKind::Dir { subtree } => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    fs::create_dir(path).map_err(|e| io("create directory", e))?;
                }
                self.report.dirs += 1;
                let snap_dir = || String::from_utf8_lossy(snap_path).into_owned();
                nesting::descend(level, snap_dir, |below| {
                    self.dir_contents(subtree, path, snap_path, whole, below);
                    Ok(())
                })?;
                let meta = self.meta(node);
                self.dirs.push((path.to_path_buf(), meta));
                Ok(())
            }
            kind @ (NodeKind::File { .. } | NodeKind::Bundled { .. }) => {
                self.report.bytes = self.report.bytes.saturating_add(node.size);
                let data = kind.file_data().expect("a regular file");
                self.file(node, data, path, existing.as_ref())
            }
            _ => match self.other(node, path, existing.as_ref())? {
                true => self.meta(node).apply(path),
                false => Ok(()),
            },
        }
    }

    /// Restores a regular file: links it, or queues its content (the file's
    /// metadata is applied once its content is written).
    fn file(
        &mut self,
        node: &Node,
        data: FileData<'_>,
        path: &Path,
        existing: Option<&fs::Metadata>,
    ) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let key = (node.device, node.inode);
        if let Some(first) = self
            .hard_links
            .get(&key)
            .filter(|_| node.links > 1)
            .cloned()
        {
            let same = existing
                .zip(fs::metadata(&first).ok())
                .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
            if !same {
                if existing.is_some() {
                    remove_any(path).map_err(|e| io("replace", e))?;
                }
                fs::hard_link(&first, path).map_err(|e| {
                    Error::io(
                        format!("cannot link {} to {}", path.display(), first.display()),
                        e,
                    )
                })?;
                self.linked.push((path.to_path_buf(), first));
            }
            self.report.files += 1;
            return Ok(());
        }
        if node.links > 1 {
            self.hard_links.insert(key, path.to_path_buf());
        }
        let mode = match existing {
            Some(_) if self.opts.overwrite == Overwrite::Never => {
                self.report.files_unchanged += 1;
                return Ok(());
            }
            Some(m) if m.is_file() => {
                let same_stat = m.len() == node.size
                    && (m.mtime(), m.mtime_nsec() as u32) == (node.mtime.secs, node.mtime.nanos);
                match self.opts.overwrite == Overwrite::IfChanged && same_stat {
                    true if !self.opts.verify => {
                        self.report.files_unchanged += 1;
                        return self.meta(node).apply(path);
                    }
                    true => Mode::Check,
                    false => Mode::Fix,
                }
            }
            _ => Mode::Create,
        };
        let (chunks, len) = content::locate(self.repo, data, node.size)?;
        let file = match mode {
            Mode::Check => open_existing(path, false).map_err(|e| io("open", e))?,
            // Its length is set once all its content is written.
            Mode::Fix => open_existing(path, true).map_err(|e| io("open", e))?,
            Mode::Create => {
                if existing.is_some() {
                    remove_any(path).map_err(|e| io("replace", e))?;
                }
                create(path, len)?
            }
        };
        let meta = self.meta(node);
        if let Some(p) = &self.opts.progress {
            p.expect(1, node.size);
        }
        let target = Target::new(path.to_path_buf(), file, mode, node.size, meta);
        self.queue.add(target, chunks, &mut self.report);
        Ok(())
    }

    /// Restores a symlink or special file; false when there is nothing more to do for it.
    fn other(&mut self, node: &Node, path: &Path, existing: Option<&fs::Metadata>) -> Result<bool> {
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let same = existing.is_some_and(|m| {
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            match &node.kind {
                NodeKind::Symlink { target } => {
                    ft.is_symlink()
                        && fs::read_link(path)
                            .is_ok_and(|t| t.as_os_str().as_bytes() == target.as_slice())
                }
                NodeKind::Fifo => ft.is_fifo(),
                NodeKind::CharDevice { rdev } => ft.is_char_device() && m.rdev() == *rdev,
                NodeKind::BlockDevice { rdev } => ft.is_block_device() && m.rdev() == *rdev,
                _ => false,
            }
        });
        if same {
            return Ok(true);
        }
        if existing.is_some() {
            if self.opts.overwrite == Overwrite::Never {
                return Ok(false);
            }
            remove_any(path).map_err(|e| io("replace", e))?;
        }
        match &node.kind {
            NodeKind::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
                    .map_err(|e| io("create symlink", e))?
            }
            NodeKind::Fifo => mknod(path, libc::S_IFIFO, 0).map_err(|e| io("create FIFO", e))?,
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
            }
            // A socket is re-created by its server, never restored.
            _ => return Ok(false),
        }
        self.report.others += 1;
        Ok(true)
    }

    /// The metadata to give the restored `node`, with its owner (only set as
    /// root) resolved by name where this system knows the name.
    fn meta(&mut self, node: &Node) -> Meta {
        Meta {
            owner: self.as_root.then(|| {
                (
                    self.names.local_uid(&node.user, node.uid),
                    self.names.local_gid(&node.group, node.gid),
                )
            }),
            xattrs: node.xattrs.clone(),
            mode: node.mode,
            mtime: node.mtime,
            symlink: matches!(node.kind, NodeKind::Symlink { .. }),
        }
    }
}

/// Metadata for a restored entry.
struct Meta {
    /// Local user and group IDs, when restoring as root.
    owner: Option<(u32, u32)>,
    xattrs: Vec<Xattr>,
    mode: u32,
    mtime: Timestamp,
    symlink: bool,
}

impl Meta {
    /// Applies ownership, extended attributes, mode and times, each only
    /// where it differs, in that order (chown clears set-ID bits).
    fn apply(&self, path: &Path) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("cannot set {what} of {}", path.display()), e);
        let current = fs::symlink_metadata(path).map_err(|e| io("metadata", e))?;
        let mut chowned = false;
        if let Some((uid, gid)) = self.owner {
            if (current.uid(), current.gid()) != (uid, gid) {
                std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                    .map_err(|e| io("owner", e))?;
                chowned = true;
            }
        }
        if !self.xattrs.is_empty()
            && crate::source::read_xattrs(path).ok().as_ref() != Some(&self.xattrs)
        {
            for x in &self.xattrs {
                set_xattr(path, x).map_err(|e| io("extended attributes", e))?;
            }
        }
        if !self.symlink && (chowned || current.mode() & 0o7777 != self.mode) {
            fs::set_permissions(path, fs::Permissions::from_mode(self.mode))
                .map_err(|e| io("mode", e))?;
        }
        if (current.mtime(), current.mtime_nsec() as u32) != (self.mtime.secs, self.mtime.nanos) {
            let mtime = file_time(self.mtime);
            filetime::set_symlink_file_times(path, mtime, mtime).map_err(|e| io("times", e))?;
        }
        Ok(())
    }
}

/// Opens an existing regular file without following a symlink.
fn open_existing(path: &Path, write: bool) -> std::io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates a new, private file of `len` bytes, all a hole until written.
fn create(path: &Path, len: u64) -> Result<fs::File> {
    let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("create", e))?;
    if let Err(e) = file.set_len(len) {
        let _ = fs::remove_file(path);
        return Err(io("set the length of", e));
    }
    Ok(file)
}

/// Flushes the file system holding `dir` to storage.
fn syncfs(dir: &Path) -> std::io::Result<()> {
    let dir = fs::File::open(dir)?;
    // SAFETY: the descriptor stays open for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes a file, symlink or whole directory, never following a symlink.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
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
    let c = crate::source::cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, rdev as libc::dev_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
