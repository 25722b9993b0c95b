//! Trees: the entries of one directory, stored as a tree blob.

use crate::codec::{self, Versioned};
use crate::error::{FormatError, Result};
use crate::id::BlobId;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Largest decoded tree blob accepted.
pub const MAX_TREE_LEN: usize = 256 * 1024 * 1024;

/// Deepest level a directory may have below a snapshot's root tree (level 0).
/// A Linux path has at most 4095 bytes, so no backup reaches it; readers
/// refuse deeper nesting (SPEC §12.5).
pub const MAX_DEPTH: usize = 2048;

/// What a directory entry is, with the data that only that type has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// Regular file; its content is the concatenation of these data blobs (variant 0).
    File {
        /// Data blobs in order.
        content: Vec<BlobId>,
    },
    /// Directory; its entries are in this tree blob (variant 1).
    Dir {
        /// The subtree.
        subtree: BlobId,
    },
    /// Symbolic link (variant 2).
    Symlink {
        /// Link target as raw bytes.
        target: Vec<u8>,
    },
    /// Named pipe (variant 3).
    Fifo,
    /// Unix socket (variant 4).
    Socket,
    /// Character device (variant 5).
    CharDevice {
        /// Device number.
        rdev: u64,
    },
    /// Block device (variant 6).
    BlockDevice {
        /// Device number.
        rdev: u64,
    },
    /// Regular file stored in a bundle: a data blob that holds several small
    /// files one after another (variant 7, tree version 2). The file is the
    /// node's `size` bytes of `blob` from `offset`.
    Bundled {
        /// The bundle's data blob.
        blob: BlobId,
        /// Where the file starts in the bundle's plaintext.
        offset: u64,
        /// The ID the file's content has as a data blob of its own: checks the
        /// bytes taken from the bundle, and lets a later backup recognize
        /// unchanged content.
        id: BlobId,
    },
}

/// Where a regular file's content is: `len` bytes from `offset` of the
/// concatenation of `blobs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileData<'a> {
    /// The data blobs.
    pub blobs: &'a [BlobId],
    /// Bytes of the first blob before the file starts.
    pub offset: u64,
    /// The ID the content must have, for a bundled file.
    pub id: Option<BlobId>,
}

impl FileData<'_> {
    /// The ID the whole content has as one data blob, when known without
    /// reading it: a bundled file's ID, or the blob of a one-blob file.
    pub fn content_id(&self) -> Option<BlobId> {
        match (self.id, self.blobs) {
            (Some(id), _) => Some(id),
            (None, [only]) => Some(*only),
            _ => None,
        }
    }

    /// True when both hold the same content, judged by IDs alone.
    pub fn same_content(&self, other: &FileData<'_>) -> bool {
        match (self.content_id(), other.content_id()) {
            (Some(a), Some(b)) => a == b,
            _ => self.blobs == other.blobs && self.offset == other.offset,
        }
    }
}

impl NodeKind {
    /// Where the content of a regular file is; `None` for other kinds.
    pub fn file_data(&self) -> Option<FileData<'_>> {
        match self {
            NodeKind::File { content } => Some(FileData {
                blobs: content,
                offset: 0,
                id: None,
            }),
            NodeKind::Bundled { blob, offset, id } => Some(FileData {
                blobs: std::slice::from_ref(blob),
                offset: *offset,
                id: Some(*id),
            }),
            _ => None,
        }
    }
}

/// An extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name as bytes.
    pub name: Vec<u8>,
    /// Attribute value.
    pub value: Vec<u8>,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name as raw bytes: not empty, not `.` or `..`, without `/` or NUL.
    pub name: Vec<u8>,
    /// Type and type-specific data.
    pub kind: NodeKind,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner's numeric ID.
    pub uid: u32,
    /// Group's numeric ID.
    pub gid: u32,
    /// Owner's name, empty when unknown.
    pub user: String,
    /// Group's name, empty when unknown.
    pub group: String,
    /// Modification time.
    pub mtime: Timestamp,
    /// Status change time.
    pub ctime: Timestamp,
    /// Size in bytes (files: content length).
    pub size: u64,
    /// Inode number on the source.
    pub inode: u64,
    /// Device number of the source filesystem.
    pub device: u64,
    /// Hard link count on the source.
    pub links: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

impl Node {
    /// True when `other` may be restored as a hard link to this file: both
    /// are regular files recorded with several links to the same (device,
    /// inode), of the same size and content. A snapshot that records
    /// different content for one inode is damaged or hostile; its nodes are
    /// then restored as separate files (SPEC §12.6).
    pub fn is_link_of(&self, other: &Node) -> bool {
        let same_inode = self.links > 1
            && other.links > 1
            && (self.device, self.inode) == (other.device, other.inode);
        match (self.kind.file_data(), other.kind.file_data()) {
            (Some(a), Some(b)) => same_inode && self.size == other.size && a.same_content(&b),
            _ => false,
        }
    }
}

/// One directory's entries, sorted by name bytes, names unique.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Structure version: 2 when written, 1 (without bundled files) accepted.
    pub version: u32,
    /// The entries.
    pub nodes: Vec<Node>,
}

impl Versioned for Tree {
    const WHAT: &'static str = "tree";
    const VERSION: u32 = 2;

    fn reads(version: u32) -> bool {
        version == 1 || version == 2
    }

    fn validate(&self) -> Result<()> {
        for (i, node) in self.nodes.iter().enumerate() {
            if let NodeKind::Bundled { offset, .. } = node.kind {
                if self.version < 2 {
                    return Err(FormatError::malformed(
                        "tree",
                        "a bundled file in a version 1 tree",
                    ));
                }
                if offset.checked_add(node.size).is_none() {
                    return Err(FormatError::malformed(
                        "tree",
                        "a bundled file ends beyond 2^64",
                    ));
                }
            }
            if !is_valid_name(&node.name) {
                return Err(FormatError::malformed(
                    "tree",
                    format!(
                        "invalid entry name {:?}",
                        String::from_utf8_lossy(&node.name)
                    ),
                ));
            }
            if i > 0 && self.nodes[i - 1].name >= node.name {
                return Err(FormatError::malformed(
                    "tree",
                    "entries not sorted or not unique",
                ));
            }
            if !node.mtime.is_valid() || !node.ctime.is_valid() {
                return Err(FormatError::malformed("tree", "nanoseconds out of range"));
            }
            if node.mode > 0o7777 {
                return Err(FormatError::malformed("tree", "mode has bits above 0o7777"));
            }
            if node.xattrs.windows(2).any(|w| w[0].name >= w[1].name) {
                return Err(FormatError::malformed(
                    "tree",
                    "extended attributes not sorted or not unique",
                ));
            }
        }
        Ok(())
    }
}

impl Tree {
    /// A tree of `nodes`, sorted by name.
    pub fn new(mut nodes: Vec<Node>) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Tree {
            version: Tree::VERSION,
            nodes,
        }
    }

    /// The tree's blob plaintext.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and validates a tree blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        codec::decode(bytes)
    }

    /// The entry named `name`.
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// True for a name that is safe to create inside a directory.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}
