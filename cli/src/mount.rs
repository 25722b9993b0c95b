//! A read-only FUSE view of a repository (`cairn mount`):
//!
//! ```text
//! snapshots/<time>/...       each snapshot's files, by its time (local)
//! hosts/<host>/<time>        links to the snapshots of each host, and `latest`
//! tags/<tag>/<time>          links to the snapshots with each tag, and `latest`
//! latest                     a link to the newest snapshot
//! ```
//!
//! Two snapshots of the same second are told apart by their short IDs. A
//! directory's tree is read when it is first looked into; a file's blobs
//! when they are read, through a cache bounded in bytes.

use crate::output::local_time;
use cairn_engine::read_at::{BlobCache, FileLayout};
use cairn_engine::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::{BlobId, SnapshotId, Timestamp};
use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEntry, ReplyOpen, Request,
};
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the kernel may keep what it was told: nothing here changes.
const TTL: Duration = Duration::from_secs(3600);
/// Bytes of blobs kept for reads.
const CACHE_BYTES: usize = 64 << 20;

/// What an inode is.
enum Content {
    /// A directory whose entries are known, sorted by name.
    Dir(Vec<(Vec<u8>, u64)>),
    /// A snapshot's directory whose tree is not read yet.
    Tree(BlobId),
    /// A file of a snapshot, its layout once it has been opened.
    File(Box<Node>, Option<FileLayout>),
    /// A symbolic link.
    Link(Vec<u8>),
    /// Anything else of a snapshot (FIFO, socket, device): attributes only.
    Other,
}

struct Inode {
    attr: FileAttr,
    content: Content,
}

/// The view: inodes, numbered from 1 (the root) in the order they are made.
pub struct View {
    repo: Repository,
    inodes: Vec<Inode>,
    cache: BlobCache,
}

/// `t` as a system time for fuser. Before 1970, fuser hands the kernel the
/// whole seconds before 1970 negated and the nanoseconds as they are, so
/// the time is built to come out as `t`'s seconds and nanoseconds.
fn system_time(t: Timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.nanos.min(999_999_999)));
    match u64::try_from(t.secs) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs) + nanos,
        Err(_) => UNIX_EPOCH - (Duration::from_secs(t.secs.unsigned_abs()) + nanos),
    }
}

/// Attributes of a directory or link the view makes, at time `t`.
fn made(kind: FileType, size: u64, t: SystemTime) -> FileAttr {
    FileAttr {
        ino: 0,
        size,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind,
        perm: if kind == FileType::Directory {
            0o555
        } else {
            0o777
        },
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Attributes of a snapshot's node.
fn node_attr(node: &Node) -> FileAttr {
    let (kind, rdev) = match &node.kind {
        NodeKind::File { .. } | NodeKind::Bundled { .. } => (FileType::RegularFile, 0),
        NodeKind::Dir { .. } => (FileType::Directory, 0),
        NodeKind::Symlink { .. } => (FileType::Symlink, 0),
        NodeKind::Fifo => (FileType::NamedPipe, 0),
        NodeKind::Socket => (FileType::Socket, 0),
        NodeKind::CharDevice { rdev } => (FileType::CharDevice, *rdev as u32),
        NodeKind::BlockDevice { rdev } => (FileType::BlockDevice, *rdev as u32),
    };
    FileAttr {
        ino: 0,
        size: node.size,
        blocks: node.size.div_ceil(512),
        atime: system_time(node.mtime),
        mtime: system_time(node.mtime),
        ctime: system_time(node.ctime),
        crtime: system_time(node.mtime),
        kind,
        perm: (node.mode & 0o7777) as u16,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: node.uid,
        gid: node.gid,
        rdev,
        blksize: 4096,
        flags: 0,
    }
}

/// Inode number `ino` of `inodes` (numbered from 1).
fn numbered(inodes: &mut [Inode], ino: u64) -> Result<&mut Inode, i32> {
    let i = usize::try_from(ino).ok().and_then(|i| i.checked_sub(1));
    i.and_then(|i| inodes.get_mut(i)).ok_or(libc::ENOENT)
}

impl View {
    /// The view of `repo`'s `snapshots`.
    pub fn new(repo: Repository, mut snapshots: Vec<(SnapshotId, Snapshot)>) -> View {
        let mut view = View {
            repo,
            inodes: Vec::new(),
            cache: BlobCache::new(CACHE_BYTES),
        };
        snapshots.sort_by_key(|(_, s)| s.time);
        let newest = snapshots
            .last()
            .map_or(UNIX_EPOCH, |(_, s)| system_time(s.time));
        let root = view.add(
            made(FileType::Directory, 0, newest),
            Content::Dir(Vec::new()),
        );
        // Names by time; a second snapshot of one second gets its short ID.
        let mut names: Vec<String> = Vec::new();
        let mut taken = HashSet::new();
        for (id, s) in &snapshots {
            let time = local_time(s.time).replace(' ', "T");
            let name = match taken.insert(time.clone()) {
                true => time,
                false => format!("{time}-{}", id.short()),
            };
            names.push(name);
        }
        let mut dir = Vec::new();
        for ((_, s), name) in snapshots.iter().zip(&names) {
            let attr = made(FileType::Directory, 0, system_time(s.time));
            dir.push((
                name.clone().into_bytes(),
                view.add(attr, Content::Tree(s.tree)),
            ));
        }
        let snapshots_dir = view.dir(dir, newest);
        let mut top = vec![(b"snapshots".to_vec(), snapshots_dir)];
        let mut hosts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut tags: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (_, s)) in snapshots.iter().enumerate() {
            hosts.entry(&s.hostname).or_default().push(i);
            for tag in &s.tags {
                tags.entry(tag).or_default().push(i);
            }
        }
        for (group, members) in [("hosts", hosts), ("tags", tags)] {
            let mut entries = Vec::new();
            for (key, list) in members {
                let links: Vec<(Vec<u8>, u64)> = list
                    .iter()
                    .map(|&i| (names[i].clone(), i))
                    .chain(list.last().map(|&i| ("latest".to_string(), i)))
                    .map(|(name, i)| {
                        let target = format!("../../snapshots/{}", names[i]);
                        (name.into_bytes(), view.link(target, &snapshots[i].1))
                    })
                    .collect();
                entries.push((key.as_bytes().to_vec(), view.dir(links, newest)));
            }
            top.push((group.as_bytes().to_vec(), view.dir(entries, newest)));
        }
        if let Some(last) = names.last() {
            let link = view.link(format!("snapshots/{last}"), &snapshots.last().unwrap().1);
            top.push((b"latest".to_vec(), link));
        }
        top.sort();
        view.inodes[root as usize - 1].content = Content::Dir(top);
        view
    }

    /// Adds an inode; its number.
    fn add(&mut self, mut attr: FileAttr, content: Content) -> u64 {
        let ino = self.inodes.len() as u64 + 1;
        attr.ino = ino;
        self.inodes.push(Inode { attr, content });
        ino
    }

    /// Adds a directory of `entries`, sorted by name.
    fn dir(&mut self, mut entries: Vec<(Vec<u8>, u64)>, t: SystemTime) -> u64 {
        entries.sort();
        self.add(made(FileType::Directory, 0, t), Content::Dir(entries))
    }

    /// Adds a link to `target` for snapshot `s`.
    fn link(&mut self, target: String, s: &Snapshot) -> u64 {
        let attr = made(FileType::Symlink, target.len() as u64, system_time(s.time));
        self.add(attr, Content::Link(target.into_bytes()))
    }

    fn inode(&mut self, ino: u64) -> Result<&mut Inode, i32> {
        numbered(&mut self.inodes, ino)
    }

    /// The entries of directory `ino`, its tree read if it was not yet.
    fn entries(&mut self, ino: u64) -> Result<&[(Vec<u8>, u64)], i32> {
        let tree = match &self.inode(ino)?.content {
            Content::Dir(_) => None,
            Content::Tree(id) => Some(*id),
            _ => return Err(libc::ENOTDIR),
        };
        if let Some(id) = tree {
            let tree = self.repo.load_tree(&id).map_err(|e| self.failed(&e))?;
            let mut entries = Vec::with_capacity(tree.nodes.len());
            for node in tree.nodes {
                let attr = node_attr(&node);
                let name = node.name.clone();
                let content = match node.kind {
                    NodeKind::Dir { subtree } => Content::Tree(subtree),
                    NodeKind::Symlink { target } => Content::Link(target),
                    NodeKind::File { .. } | NodeKind::Bundled { .. } => {
                        Content::File(Box::new(node), None)
                    }
                    _ => Content::Other,
                };
                entries.push((name, self.add(attr, content)));
            }
            entries.sort();
            self.inode(ino)?.content = Content::Dir(entries);
        }
        match &self.inode(ino)?.content {
            Content::Dir(entries) => Ok(entries),
            _ => unreachable!("made a directory above"),
        }
    }

    /// `e` reported on standard error; the error number for the kernel.
    fn failed(&self, e: &cairn_engine::Error) -> i32 {
        eprintln!("cairn: {e}");
        libc::EIO
    }

    /// Hands `add` the entries of directory `ino` from `offset` on (`.` and
    /// `..` first), each with the offset of the next, until it says the
    /// reply is full.
    fn list(
        &mut self,
        ino: u64,
        offset: i64,
        mut add: impl FnMut(u64, i64, &[u8], &FileAttr) -> bool,
    ) -> Result<(), i32> {
        self.entries(ino)?;
        let Content::Dir(entries) = &self.inodes[ino as usize - 1].content else {
            unreachable!("entries made it a directory");
        };
        let dots = [(&b"."[..], ino), (&b".."[..], ino)];
        let named = entries
            .iter()
            .map(|(name, child)| (name.as_slice(), *child));
        let start = usize::try_from(offset).unwrap_or(0);
        for (i, (name, child)) in dots.into_iter().chain(named).enumerate().skip(start) {
            if add(
                child,
                (i + 1) as i64,
                name,
                &self.inodes[child as usize - 1].attr,
            ) {
                break;
            }
        }
        Ok(())
    }

    /// Up to `size` bytes of file `ino` from `offset`.
    fn read_file(&mut self, ino: u64, offset: u64, size: usize) -> Result<Vec<u8>, i32> {
        // The inode alone is borrowed: the repository and cache are read too.
        let inode = numbered(&mut self.inodes, ino)?;
        let Content::File(node, layout) = &mut inode.content else {
            return Err(libc::EISDIR);
        };
        let result = match layout {
            Some(layout) => layout.read(&self.repo, &mut self.cache, offset, size),
            None => FileLayout::of(&self.repo, node).and_then(|made| {
                layout
                    .insert(made)
                    .read(&self.repo, &mut self.cache, offset, size)
            }),
        };
        result.map_err(|e| self.failed(&e))
    }
}

impl Filesystem for View {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let name = name.as_bytes();
        let found = self.entries(parent).and_then(|entries| {
            entries
                .binary_search_by(|(n, _)| n.as_slice().cmp(name))
                .map(|i| entries[i].1)
                .map_err(|_| libc::ENOENT)
        });
        match found.and_then(|ino| Ok(self.inode(ino)?.attr)) {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.inode(ino) {
            Ok(inode) => reply.attr(&TTL, &inode.attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.inode(ino).map(|i| &i.content) {
            Ok(Content::Link(target)) => reply.data(target),
            Ok(_) => reply.error(libc::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(libc::EROFS);
        }
        match self.inode(ino).map(|i| &i.content) {
            Ok(Content::File(..)) => reply.opened(0, fuser::consts::FOPEN_KEEP_CACHE),
            Ok(_) => reply.error(libc::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(libc::EINVAL);
        };
        match self.read_file(ino, offset, size as usize) {
            Ok(bytes) => reply.data(&bytes),
            Err(e) => reply.error(e),
        }
    }

    fn init(
        &mut self,
        _req: &Request<'_>,
        config: &mut fuser::KernelConfig,
    ) -> Result<(), libc::c_int> {
        // A listing brings every entry's attributes along, so `ls -l` of a
        // large folder needs no lookup per entry; and link targets are
        // cached, so paths through `latest` resolve without asking. A
        // kernel without these works as before.
        for capability in [
            fuser::consts::FUSE_DO_READDIRPLUS,
            fuser::consts::FUSE_CACHE_SYMLINKS,
        ] {
            let _ = config.add_capabilities(capability);
        }
        Ok(())
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        match self.list(ino, offset, |child, next, name, attr| {
            reply.add(child, next, attr.kind, OsStr::from_bytes(name))
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.list(ino, offset, |child, next, name, attr| {
            reply.add(child, next, OsStr::from_bytes(name), &TTL, attr, 0)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
