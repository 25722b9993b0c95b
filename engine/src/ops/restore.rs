//! Writing a snapshot, or part of it, back to the file system.
//!
//! Every entry name was validated when its tree was decoded (no `/`, `..` or
//! NUL). The walk holds each directory it restores into open, opened from
//! its parent's handle without following a symlink, and does everything
//! relative to that handle (see `handles`): it examines entries without
//! following them, creates exclusively, removes what is in the way (a
//! directory by walking it the same way) instead of following it, lists and
//! removes extra entries for `delete` through it, and sets metadata on a
//! handle of the entry itself (see `meta`), never through a path. Only the
//! target itself is opened by path. So a user who owns a directory being
//! restored into, and swaps a component for a symlink while the restore
//! runs, makes that entry fail (it is reported, the rest goes on); no write
//! is redirected outside the target. An existing file with other hard links
//! is replaced by a new file renamed over it, never changed in place (its
//! content or its metadata), as that would change the other links too,
//! wherever they are.
//!
//! Existing files are compared chunk by chunk against the snapshot (by blob
//! ID) and only differing chunks are written; metadata is set only where it
//! differs, so restoring onto an identical tree writes nothing.
//!
//! The tree walk runs on the calling thread: it creates directories, links and
//! special files, and queues file content for worker threads (see `content`).
//! Directory metadata is applied last, deepest first, once everything inside
//! is written, each directory reopened from its parent and checked to be the
//! one restored (see `dirs`). The restore is durable when it returns: one
//! `syncfs` of the target's file system flushes it all, instead of a sync
//! per file.

mod content;
mod dirs;
mod handles;
mod meta;
mod place;
mod tiles;

use crate::browse;
use crate::error::{Error, Result};
use crate::filter::PatternSet;
use crate::nesting;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::sysinfo::NameCache;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{FileData, Node, NodeKind};
use cairn_format::BlobId;
use content::{Chunk, Mode, Queue, Target, Writer};
use dirs::Dirs;
use handles::{fstat, Dir, Stat};
use meta::{Handle, Meta};
use place::{DirAt, Link, Named, Place};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
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
    /// Clear the set-user-ID and set-group-ID bits of every restored mode.
    pub no_setid: bool,
    /// Create no block or character device nodes (they are counted in
    /// [`RestoreReport::devices_skipped`]).
    pub no_devices: bool,
    /// Counts the files and bytes to write, and those written.
    pub progress: Option<Arc<Progress>>,
}

/// Counts of what was restored, and what could not be.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Regular files written: created, or existing ones rewritten or replaced.
    pub files: u64,
    /// Of `files`, those where an entry existed: a file whose content
    /// differed (or, for one with other hard links, whose metadata differed),
    /// or an entry of another type.
    pub files_replaced: u64,
    /// Existing files whose content was left as it is: found identical to
    /// the snapshot, or kept by [`Overwrite::Never`] with the snapshot's size
    /// and modification time.
    pub files_unchanged: u64,
    /// Existing entries kept by [`Overwrite::Never`] where the snapshot has a
    /// file, although their size or modification time (or type) differs.
    pub files_kept: u64,
    /// Directories created or reused.
    pub dirs: u64,
    /// Symlinks and special files created.
    pub others: u64,
    /// Device nodes not created because of [`RestoreOptions::no_devices`].
    pub devices_skipped: u64,
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
            files_replaced,
            files_unchanged,
            files_kept,
            dirs,
            others,
            devices_skipped,
            bytes,
            bytes_written,
            deleted,
            verified,
            errors,
        } = other;
        self.files += files;
        self.files_replaced += files_replaced;
        self.files_unchanged += files_unchanged;
        self.files_kept += files_kept;
        self.dirs += dirs;
        self.others += others;
        self.devices_skipped += devices_skipped;
        self.bytes += bytes;
        self.bytes_written += bytes_written;
        self.deleted += deleted;
        self.verified += verified;
        self.errors.extend(errors);
    }

    /// Counts a file written: one that `existed`, or a new one.
    fn written(&mut self, existed: bool) {
        self.files += 1;
        self.files_replaced += u64::from(existed);
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
    let io = |e| Error::io(format!("cannot open target {}", target.display()), e);
    let root = Arc::new(Dir::open_target(target).map_err(io)?);
    let dirs = Dirs::new(root.clone(), target).map_err(io)?;
    let top = DirAt {
        handle: root.clone(),
        record: 0,
        path: target.to_path_buf(),
    };
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
            dirs,
            hard_links: HashMap::new(),
            linked: Vec::new(),
            queue,
        };
        match start {
            Some(node) => r.entry(
                &node,
                top.entry(&node.name),
                &start_path,
                false,
                start_level,
            ),
            None => r.dir_contents(&snapshot.tree, &top, b"/", false, 0),
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
    for link in linked {
        if let Err(e) = link.check(&dirs) {
            report.errors.push((link.at.path, e));
        }
    }
    dirs.apply_meta(&mut report.errors);
    if let Err(e) = root.sync_fs() {
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
    dirs: Dirs,
    /// First restored name and node of each multiply-linked file, by
    /// recorded (device, inode).
    hard_links: HashMap<(u64, u64), (Named, Node)>,
    /// Links made in this run.
    linked: Vec<Link>,
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

    /// Restores the entries of `tree`, a tree at `level` below the root, into `dir`.
    fn dir_contents(
        &mut self,
        tree: &BlobId,
        dir: &DirAt,
        snap_dir: &[u8],
        inside: bool,
        level: usize,
    ) {
        let tree = match self.repo.load_tree(tree) {
            Ok(t) => t,
            Err(e) => return self.report.errors.push((dir.path.clone(), e)),
        };
        for node in &tree.nodes {
            let mut snap_path = snap_dir.to_vec();
            if !snap_path.ends_with(b"/") {
                snap_path.push(b'/');
            }
            snap_path.extend_from_slice(&node.name);
            self.entry(node, dir.entry(&node.name), &snap_path, inside, level);
        }
        if self.opts.delete && (inside || self.wanted.is_none()) {
            if let Err(e) = self.delete_extra(dir, &tree) {
                self.report.errors.push((dir.path.clone(), e));
            }
        }
    }

    /// Removes entries of `dir` that `tree` does not have.
    fn delete_extra(&mut self, dir: &DirAt, tree: &cairn_format::tree::Tree) -> Result<()> {
        let names = dir
            .handle
            .names()
            .map_err(|e| Error::io(format!("cannot list {}", dir.path.display()), e))?;
        for name in names {
            if tree.find(&name).is_none() {
                let extra = dir.entry(&name);
                extra.dir.remove(&name).map_err(|e| extra.io("delete", e))?;
                self.report.deleted += 1;
            }
        }
        Ok(())
    }

    /// Restores `node`, an entry of a tree at `level`, at `place`.
    fn entry(&mut self, node: &Node, place: Place, snap_path: &[u8], inside: bool, level: usize) {
        let selection = self.select(node, snap_path, inside);
        if selection == Selection::Skip {
            return;
        }
        let whole = selection == Selection::Whole;
        if let Err(e) = self.try_entry(node, &place, snap_path, whole, level) {
            self.report.errors.push((place.path, e));
        }
    }

    fn try_entry(
        &mut self,
        node: &Node,
        place: &Place,
        snap_path: &[u8],
        whole: bool,
        level: usize,
    ) -> Result<()> {
        let existing = place
            .dir
            .stat_at(&place.name)
            .map_err(|e| place.io("examine", e))?;
        match &node.kind {
            NodeKind::Dir { subtree } => {
                let dir = self.enter_dir(place, existing)?;
                self.report.dirs += 1;
                let snap_dir = || String::from_utf8_lossy(snap_path).into_owned();
                nesting::descend(level, snap_dir, |below| {
                    self.dir_contents(subtree, &dir, snap_path, whole, below);
                    Ok(())
                })?;
                let meta = self.meta(node);
                self.dirs.set_meta(dir.record, meta);
                Ok(())
            }
            kind @ (NodeKind::File { .. } | NodeKind::Bundled { .. }) => {
                self.report.bytes = self.report.bytes.saturating_add(node.size);
                let data = kind.file_data().expect("a regular file");
                self.file(node, data, place, existing)
            }
            _ => self.other(node, place, existing),
        }
    }

    /// Opens the directory at `place`, after making it if what `existing`
    /// says is there is not one; records it.
    fn enter_dir(&mut self, place: &Place, existing: Option<Stat>) -> Result<DirAt> {
        let (dir, name) = (&place.dir, &place.name);
        if existing.is_none_or(|s| !s.is_dir()) {
            if existing.is_some() {
                dir.remove(name).map_err(|e| place.io("replace", e))?;
            }
            dir.make_dir(name)
                .map_err(|e| place.io("create directory", e))?;
        }
        // Fails if it was swapped for a symlink since.
        let handle = dir
            .open_dir(name)
            .map_err(|e| place.io("open directory", e))?;
        let id = handle.stat().map_err(|e| place.io("examine", e))?.id();
        Ok(DirAt {
            handle: Arc::new(handle),
            record: self.dirs.add(place.record, name, id, &place.path),
            path: place.path.clone(),
        })
    }

    /// Restores a regular file: links it, or queues its content (the file's
    /// metadata is applied once its content is written).
    fn file(
        &mut self,
        node: &Node,
        data: FileData<'_>,
        place: &Place,
        existing: Option<Stat>,
    ) -> Result<()> {
        let key = (node.device, node.inode);
        if node.links > 1 {
            // Only a node with the same content is a link of the first: a
            // snapshot that says otherwise gets a file of its own (SPEC §12.6).
            match self.hard_links.get(&key) {
                Some((first, n)) if n.is_link_of(node) => {
                    let first = first.clone();
                    return self.link(place, existing, first);
                }
                Some(_) => {}
                None => {
                    self.hard_links.insert(key, (place.named(), node.clone()));
                }
            }
        }
        if let Some(s) = existing.filter(|_| self.opts.overwrite == Overwrite::Never) {
            match s.is_file() && same_stat(node, &s) {
                true => self.report.files_unchanged += 1,
                false => self.report.files_kept += 1,
            }
            return Ok(());
        }
        let (chunks, len) = content::locate(self.repo, data, node.size)?;
        let meta = self.meta(node);
        let (file, mode) = match existing {
            Some(s) if s.is_file() => match self.existing_file(node, &chunks, place, &meta, s)? {
                Some(opened) => opened,
                None => return Ok(()),
            },
            Some(_) => {
                place
                    .dir
                    .remove(&place.name)
                    .map_err(|e| place.io("replace", e))?;
                (place.create(len)?, Mode::Replace)
            }
            None => (place.create(len)?, Mode::Create),
        };
        if let Some(p) = &self.opts.progress {
            p.expect(1, node.size);
        }
        let target = Target::new(place.clone(), file, mode, node.size, meta);
        self.queue.add(target, chunks, &mut self.report);
        Ok(())
    }

    /// Opens the existing regular file at `place`, which was `existing`, to
    /// restore `node` (to be given `meta`) into, and says how; `None` when it
    /// is left as it is.
    fn existing_file(
        &mut self,
        node: &Node,
        chunks: &[Chunk],
        place: &Place,
        meta: &Meta,
        existing: Stat,
    ) -> Result<Option<(File, Mode)>> {
        let keep = self.opts.overwrite == Overwrite::IfChanged && same_stat(node, &existing);
        let verify = self.opts.verify;
        // Only a file without other links may be rewritten in place.
        let write = !keep && existing.links() == 1;
        let (file, s) = place
            .dir
            .open_file(&place.name, write)
            .map_err(|e| place.io("open", e))?;
        if s.id() != existing.id() || (write && s.links() > 1) {
            let why = format!("{} changed during the restore", place.path.display());
            return Err(Error::Invalid(why));
        }
        if existing.links() > 1 || s.links() > 1 {
            // Another name, maybe outside the target, links to it: nothing
            // of it is changed; if anything differs it is replaced.
            let same = (keep && !verify) || content::holds(self.repo, &file, chunks, node.size);
            let examine = |e| place.io("examine", e);
            if same && meta.matches(Handle::Open(file.as_fd())).map_err(examine)? {
                self.report.files_unchanged += 1;
                self.report.verified += u64::from(verify);
                return Ok(None);
            }
            return Ok(Some((place.replace(node.size)?, Mode::Replace)));
        }
        match (keep, verify) {
            (true, false) => {
                self.report.files_unchanged += 1;
                meta.apply(Handle::Open(file.as_fd()), &place.path)?;
                Ok(None)
            }
            (true, true) => Ok(Some((file, Mode::Check))),
            (false, _) => Ok(Some((file, Mode::Fix))),
        }
    }

    /// Makes `place` a hard link to `first`, the file restored first of
    /// those linked together.
    fn link(&mut self, place: &Place, existing: Option<Stat>, first: Named) -> Result<()> {
        let from = match first.record == place.record {
            true => place.dir.clone(),
            false => self.dirs.reopen(first.record)?,
        };
        let linking = || format!("link {} to {}", place.path.display(), first.path.display());
        let id = |s: Option<Stat>| s.map(|s| s.id());
        let first_id = from
            .stat_at(&first.name)
            .map_err(|e| place.io("examine", e))?;
        if existing.is_some() && id(existing) == id(first_id) {
            self.report.files_unchanged += 1;
            return Ok(());
        }
        if existing.is_some() && self.opts.overwrite == Overwrite::Never {
            self.report.files_kept += 1;
            return Ok(());
        }
        if existing.is_some() {
            place
                .dir
                .remove(&place.name)
                .map_err(|e| place.io("replace", e))?;
        }
        place
            .dir
            .link(&place.name, &from, &first.name)
            .map_err(|e| Error::io(format!("cannot {}", linking()), e))?;
        let made = place
            .dir
            .stat_at(&place.name)
            .map_err(|e| place.io("examine", e))?;
        if let Some(made) = made {
            self.linked.push(Link {
                at: place.named(),
                id: made.id(),
                first,
            });
        }
        self.report.written(existing.is_some());
        Ok(())
    }

    /// Restores a symlink or special file, and its metadata.
    fn other(&mut self, node: &Node, place: &Place, existing: Option<Stat>) -> Result<()> {
        let (kind, rdev) = match &node.kind {
            NodeKind::Symlink { .. } => (libc::S_IFLNK, 0),
            NodeKind::Fifo => (libc::S_IFIFO, 0),
            NodeKind::CharDevice { rdev } => (libc::S_IFCHR, *rdev),
            NodeKind::BlockDevice { rdev } => (libc::S_IFBLK, *rdev),
            // A socket is re-created by its server, never restored.
            _ => return Ok(()),
        };
        let device = matches!(kind, libc::S_IFCHR | libc::S_IFBLK);
        if device && self.opts.no_devices {
            self.report.devices_skipped += 1;
            return Ok(());
        }
        let (dir, name) = (&place.dir, &place.name);
        // An entry with other hard links would share its metadata with them.
        let same = existing.is_some_and(|s| {
            s.kind() == kind
                && s.links() == 1
                && match &node.kind {
                    NodeKind::Symlink { target } => dir.read_link(name).is_ok_and(|t| t == *target),
                    _ => s.rdev() == rdev,
                }
        });
        if !same {
            if existing.is_some() && self.opts.overwrite == Overwrite::Never {
                return Ok(());
            }
            if device && !self.as_root {
                return Err(Error::Invalid(format!(
                    "{}: device nodes can only be restored as root",
                    place.path.display()
                )));
            }
            if existing.is_some() {
                dir.remove(name).map_err(|e| place.io("replace", e))?;
            }
            match &node.kind {
                NodeKind::Symlink { target } => dir
                    .symlink(target, name)
                    .map_err(|e| place.io("create symlink", e))?,
                _ => dir
                    .mknod(name, kind, rdev)
                    .map_err(|e| place.io("create", e))?,
            }
            self.report.others += 1;
        }
        let entry = dir.open_entry(name).map_err(|e| place.io("open", e))?;
        let s = fstat(entry.as_fd()).map_err(|e| place.io("examine", e))?;
        if s.kind() != kind {
            let why = format!("{} changed during the restore", place.path.display());
            return Err(Error::Invalid(why));
        }
        self.meta(node)
            .apply(Handle::Entry(entry.as_fd()), &place.path)
    }

    /// The metadata to give the restored `node`, with its owner (only set as
    /// root) resolved by name where this system knows the name.
    fn meta(&mut self, node: &Node) -> Meta {
        // The set-user-ID and set-group-ID bits.
        let setid = if self.opts.no_setid { 0o6000 } else { 0 };
        Meta {
            owner: self.as_root.then(|| {
                (
                    self.names.local_uid(&node.user, node.uid),
                    self.names.local_gid(&node.group, node.gid),
                )
            }),
            xattrs: node.xattrs.clone(),
            mode: node.mode & !setid,
            mtime: node.mtime,
        }
    }
}

/// True when `s`, an existing file, has the size and modification time `node` records.
fn same_stat(node: &Node, s: &Stat) -> bool {
    s.len() == node.size && s.mtime() == (node.mtime.secs, node.mtime.nanos)
}
