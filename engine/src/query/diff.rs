//! Comparing two snapshots' trees.
//!
//! Both trees are sorted by name, so they are walked side by side; a
//! subdirectory whose tree ID is the same on both sides is identical and is not
//! loaded at all.

use crate::browse;
use crate::error::Result;
use crate::nesting;
use crate::repository::Repository;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::BlobId;
use std::cmp::Ordering;
use std::mem::discriminant;

/// How an entry differs between the two trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Only in the second tree.
    Added,
    /// Only in the first tree.
    Removed,
    /// Same type, different content: file blobs, symlink target or device number.
    Modified,
    /// Same content, different mode, owner, group, modification time or
    /// extended attributes.
    MetadataOnly,
    /// The entry is of another type (a file became a symlink, ...).
    TypeChanged,
}

impl ChangeKind {
    /// The one-character marker used in listings: `+ - M U T`.
    pub fn marker(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => 'M',
            ChangeKind::MetadataOnly => 'U',
            ChangeKind::TypeChanged => 'T',
        }
    }

    /// The kind as a lower-case word, for machine-readable output.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
            ChangeKind::MetadataOnly => "metadata",
            ChangeKind::TypeChanged => "type_changed",
        }
    }
}

/// One entry that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the snapshots, starting with `/`.
    pub path: Vec<u8>,
    /// How it differs.
    pub kind: ChangeKind,
    /// Size in the first tree; `None` when absent there or not a regular file.
    pub size_before: Option<u64>,
    /// Size in the second tree; `None` when absent there or not a regular file.
    pub size_after: Option<u64>,
}

/// Counts and byte totals of a list of changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffSummary {
    /// Entries added.
    pub added: u64,
    /// Entries removed.
    pub removed: u64,
    /// Entries whose content changed.
    pub modified: u64,
    /// Entries whose metadata only changed.
    pub metadata_only: u64,
    /// Entries whose type changed.
    pub type_changed: u64,
    /// File bytes present only in the second tree: added files and the new
    /// versions of modified or retyped ones.
    pub bytes_added: u64,
    /// File bytes present only in the first tree: removed files and the old
    /// versions of modified or retyped ones.
    pub bytes_removed: u64,
}

/// Totals of `changes`.
pub fn summarize(changes: &[Change]) -> DiffSummary {
    let mut s = DiffSummary::default();
    for c in changes {
        match c.kind {
            ChangeKind::Added => s.added += 1,
            ChangeKind::Removed => s.removed += 1,
            ChangeKind::Modified => s.modified += 1,
            ChangeKind::MetadataOnly => s.metadata_only += 1,
            ChangeKind::TypeChanged => s.type_changed += 1,
        }
        if c.kind != ChangeKind::MetadataOnly {
            s.bytes_added += c.size_after.unwrap_or(0);
            s.bytes_removed += c.size_before.unwrap_or(0);
        }
    }
    s
}

/// Every difference between the trees `a` (before) and `b` (after), depth
/// first in name order, a directory before its entries.
///
/// A directory that exists on one side only is listed together with every
/// entry below it; so is a directory that became, or replaced, another type.
/// Source-filesystem details that do not survive a restore (status change
/// time, inode, device, link count) are not compared.
pub fn diff(repo: &Repository, a: &BlobId, b: &BlobId) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    diff_trees(repo, a, b, b"/", 0, &mut out)?;
    Ok(out)
}

/// Compares the trees `a` and `b`, both at `level` and at path `prefix`.
fn diff_trees(
    repo: &Repository,
    a: &BlobId,
    b: &BlobId,
    prefix: &[u8],
    level: usize,
    out: &mut Vec<Change>,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let (ta, tb) = (repo.load_tree(a)?, repo.load_tree(b)?);
    let (mut left, mut right) = (ta.nodes.iter().peekable(), tb.nodes.iter().peekable());
    loop {
        let order = match (left.peek(), right.peek()) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.name.cmp(&y.name),
        };
        match order {
            Ordering::Less => {
                let node = left.next().expect("peeked");
                one_side(
                    repo,
                    &child_path(prefix, &node.name),
                    node,
                    ChangeKind::Removed,
                    out,
                )?;
            }
            Ordering::Greater => {
                let node = right.next().expect("peeked");
                one_side(
                    repo,
                    &child_path(prefix, &node.name),
                    node,
                    ChangeKind::Added,
                    out,
                )?;
            }
            Ordering::Equal => {
                let (x, y) = (left.next().expect("peeked"), right.next().expect("peeked"));
                diff_nodes(repo, &child_path(prefix, &x.name), x, y, level, out)?;
            }
        }
    }
}

/// Compares two entries of the same name, of trees at `level`.
fn diff_nodes(
    repo: &Repository,
    path: &[u8],
    a: &Node,
    b: &Node,
    level: usize,
    out: &mut Vec<Change>,
) -> Result<()> {
    let change = |kind| Change {
        path: path.to_vec(),
        kind,
        size_before: file_size(a),
        size_after: file_size(b),
    };
    if discriminant(&a.kind) != discriminant(&b.kind)
        && !(a.kind.file_data().is_some() && b.kind.file_data().is_some())
    {
        out.push(change(ChangeKind::TypeChanged));
        // What was below a directory is gone; what is below a new one is new.
        if let NodeKind::Dir { subtree } = &a.kind {
            below(repo, path, subtree, ChangeKind::Removed, out)?;
        }
        if let NodeKind::Dir { subtree } = &b.kind {
            below(repo, path, subtree, ChangeKind::Added, out)?;
        }
        return Ok(());
    }
    let content_differs = match (&a.kind, &b.kind) {
        _ if a.kind.file_data().is_some() => {
            let (x, y) = (a.kind.file_data(), b.kind.file_data());
            !x.zip(y).is_some_and(|(x, y)| x.same_content(&y))
        }
        (NodeKind::Symlink { target: x }, NodeKind::Symlink { target: y }) => x != y,
        (NodeKind::CharDevice { rdev: x }, NodeKind::CharDevice { rdev: y })
        | (NodeKind::BlockDevice { rdev: x }, NodeKind::BlockDevice { rdev: y }) => x != y,
        // A directory's content is its entries, compared one by one below.
        _ => false,
    };
    if content_differs {
        out.push(change(ChangeKind::Modified));
    } else if metadata_differs(a, b) {
        out.push(change(ChangeKind::MetadataOnly));
    }
    if let (NodeKind::Dir { subtree: x }, NodeKind::Dir { subtree: y }) = (&a.kind, &b.kind) {
        let name = || String::from_utf8_lossy(path).into_owned();
        nesting::descend(level, name, |at| diff_trees(repo, x, y, path, at, out))?;
    }
    Ok(())
}

/// True when the metadata a restore reproduces differs.
fn metadata_differs(a: &Node, b: &Node) -> bool {
    a.mode != b.mode
        || a.uid != b.uid
        || a.gid != b.gid
        || a.user != b.user
        || a.group != b.group
        || a.mtime != b.mtime
        || a.xattrs != b.xattrs
}

/// Records an entry present on one side only, and everything below it.
fn one_side(
    repo: &Repository,
    path: &[u8],
    node: &Node,
    kind: ChangeKind,
    out: &mut Vec<Change>,
) -> Result<()> {
    out.push(one_sided_change(path, node, kind));
    if let NodeKind::Dir { subtree } = &node.kind {
        below(repo, path, subtree, kind, out)?;
    }
    Ok(())
}

/// Records everything below the directory `path` as `kind` (added or removed).
fn below(
    repo: &Repository,
    path: &[u8],
    tree: &BlobId,
    kind: ChangeKind,
    out: &mut Vec<Change>,
) -> Result<()> {
    browse::walk(repo, tree, path, &mut |p, n| {
        out.push(one_sided_change(p, n, kind))
    })
}

fn one_sided_change(path: &[u8], node: &Node, kind: ChangeKind) -> Change {
    let size = file_size(node);
    let (size_before, size_after) = match kind {
        ChangeKind::Removed => (size, None),
        _ => (None, size),
    };
    Change {
        path: path.to_vec(),
        kind,
        size_before,
        size_after,
    }
}

fn file_size(node: &Node) -> Option<u64> {
    node.kind.file_data().map(|_| node.size)
}

fn child_path(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(prefix.len() + 1 + name.len());
    path.extend_from_slice(prefix);
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}
