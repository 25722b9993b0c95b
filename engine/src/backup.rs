//! Taking a snapshot of file trees.
//!
//! Stages: walk (this module) → read and chunk ([`crate::chunker`]) → hash,
//! deduplicate, compress, encrypt, pack and write ([`crate::packer`]). Packs are
//! written first, then the index that lists them, then the snapshot.

use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::packer::PackWriter;
use crate::repository::Repository;
use crate::source::{self, EntryType};
use crate::sysinfo::{self, NameCache};
use cairn_format::snapshot::{Snapshot, Summary};
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, BlobKind, SnapshotId, Timestamp};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What to record with a snapshot.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Host name to record; the machine's when `None`.
    pub hostname: Option<String>,
    /// Tags to record.
    pub tags: Vec<String>,
}

/// An entry the backup could not read and left out.
#[derive(Debug)]
pub struct Skipped {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

/// The result of a backup.
#[derive(Debug)]
pub struct BackupReport {
    /// ID of the snapshot written.
    pub id: SnapshotId,
    /// The snapshot written.
    pub snapshot: Snapshot,
    /// Entries that could not be read.
    pub skipped: Vec<Skipped>,
}

/// Backs up `paths` into a new snapshot.
///
/// Every path is checked before anything is written, so a missing path leaves
/// the repository untouched. Entries below the paths that cannot be read are
/// reported in [`BackupReport::skipped`] and left out.
pub fn backup(
    repo: &mut Repository,
    paths: &[PathBuf],
    opts: &BackupOptions,
) -> Result<BackupReport> {
    if paths.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let started = Timestamp::now();
    let mut root = Source::Virtual {
        path: PathBuf::from("/"),
        children: BTreeMap::new(),
    };
    let mut abs_paths = Vec::new();
    for p in paths {
        let abs = absolute(p)?;
        insert(&mut root, &abs);
        abs_paths.push(abs.as_os_str().as_bytes().to_vec());
    }
    abs_paths.sort();
    abs_paths.dedup();

    let chunker = Chunker::new(repo.keys(), &repo.config().chunker);
    let mut walker = Walker {
        writer: PackWriter::new(repo),
        chunker,
        names: NameCache::default(),
        summary: Summary::default(),
        skipped: Vec::new(),
    };
    let tree = match &root {
        Source::Real(p) => walker.save_dir(p)?,
        Source::Virtual { children, .. } => walker.save_children(children)?,
    };
    let Walker {
        writer,
        mut summary,
        skipped,
        ..
    } = walker;
    let (packs, stats) = writer.finish()?;
    repo.save_index(packs)?;

    summary.data_blobs_added = stats.data_blobs;
    summary.tree_blobs_added = stats.tree_blobs;
    summary.bytes_added = stats.bytes;
    summary.bytes_added_stored = stats.bytes_stored;
    summary.started = started;
    summary.finished = Timestamp::now();
    let (uid, gid) = sysinfo::ids();
    let snapshot = Snapshot {
        version: 1,
        time: started,
        hostname: opts.hostname.clone().unwrap_or_else(sysinfo::hostname),
        username: sysinfo::username(),
        uid,
        gid,
        paths: abs_paths,
        tags: opts.tags.clone(),
        tree,
        parent: None,
        summary,
        program: concat!("cairn ", env!("CARGO_PKG_VERSION")).into(),
    };
    let id = repo.save_snapshot(&snapshot)?;
    Ok(BackupReport {
        id,
        snapshot,
        skipped,
    })
}

/// The absolute form of a path to back up, without following a final symlink.
fn absolute(p: &Path) -> Result<PathBuf> {
    let err = |e| Error::SourcePath(p.to_path_buf(), e);
    let abs = match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent.canonicalize().map_err(err)?.join(name)
        }
        _ => p.canonicalize().map_err(err)?,
    };
    std::fs::symlink_metadata(&abs).map_err(err)?;
    Ok(abs)
}

/// The root of a snapshot mirrors absolute paths: `/home/ann/docs` becomes
/// `home` → `ann` → `docs`, the directories above a backed-up path being
/// recorded with their own metadata only.
enum Source {
    Real(PathBuf),
    Virtual {
        path: PathBuf,
        children: BTreeMap<Vec<u8>, Source>,
    },
}

fn insert(root: &mut Source, abs: &Path) {
    let names: Vec<&OsStr> = abs
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        *root = Source::Real(abs.to_path_buf());
        return;
    }
    let mut node = root;
    let mut here = PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        here.push(name);
        let children = match node {
            Source::Real(_) => return, // already covered by a path above it
            Source::Virtual { children, .. } => children,
        };
        let key = name.as_bytes().to_vec();
        if i + 1 == names.len() {
            children.insert(key, Source::Real(here.clone()));
            return;
        }
        node = children.entry(key).or_insert_with(|| Source::Virtual {
            path: here.clone(),
            children: BTreeMap::new(),
        });
    }
}

struct Walker<'r> {
    writer: PackWriter<'r>,
    chunker: Chunker,
    names: NameCache,
    summary: Summary,
    skipped: Vec<Skipped>,
}

impl Walker<'_> {
    fn skip(&mut self, path: &Path, error: std::io::Error) {
        self.skipped.push(Skipped {
            path: path.to_path_buf(),
            error,
        });
    }

    fn save_tree(&mut self, nodes: Vec<Node>) -> Result<BlobId> {
        self.writer.save(BlobKind::Tree, &Tree::new(nodes).encode())
    }

    fn save_children(&mut self, children: &BTreeMap<Vec<u8>, Source>) -> Result<BlobId> {
        let mut nodes = Vec::with_capacity(children.len());
        for (name, child) in children {
            let node = match child {
                Source::Real(path) => self.save_entry(path, name.clone())?,
                Source::Virtual { path, children } => match std::fs::symlink_metadata(path) {
                    Ok(meta) => {
                        let subtree = self.save_children(children)?;
                        self.summary.dirs += 1;
                        Some(source::node(
                            name.clone(),
                            &meta,
                            NodeKind::Dir { subtree },
                            &mut self.names,
                        ))
                    }
                    Err(e) => return Err(Error::SourcePath(path.clone(), e)),
                },
            };
            nodes.extend(node);
        }
        self.save_tree(nodes)
    }

    fn save_dir(&mut self, path: &Path) -> Result<BlobId> {
        let mut entries = Vec::new();
        match std::fs::read_dir(path) {
            Ok(rd) => {
                for entry in rd {
                    match entry {
                        Ok(e) => entries.push(e.file_name().as_bytes().to_vec()),
                        Err(e) => self.skip(path, e),
                    }
                }
            }
            Err(e) => self.skip(path, e),
        }
        entries.sort();
        let mut nodes = Vec::with_capacity(entries.len());
        for name in entries {
            let child = path.join(OsStr::from_bytes(&name));
            nodes.extend(self.save_entry(&child, name)?);
        }
        self.save_tree(nodes)
    }

    /// Saves one entry; `None` when it could not be read (recorded in `skipped`).
    fn save_entry(&mut self, path: &Path, name: Vec<u8>) -> Result<Option<Node>> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.skip(path, e);
                return Ok(None);
            }
        };
        let mut file_size = 0;
        let kind = match source::entry_type(&meta) {
            EntryType::Dir => {
                self.summary.dirs += 1;
                NodeKind::Dir {
                    subtree: self.save_dir(path)?,
                }
            }
            EntryType::File => match self.save_file(path)? {
                Some((content, size)) => {
                    self.summary.files_new += 1;
                    self.summary.total_size += size;
                    file_size = size;
                    NodeKind::File { content }
                }
                None => return Ok(None),
            },
            EntryType::Symlink => match std::fs::read_link(path) {
                Ok(target) => {
                    self.summary.others += 1;
                    NodeKind::Symlink {
                        target: target.as_os_str().as_bytes().to_vec(),
                    }
                }
                Err(e) => {
                    self.skip(path, e);
                    return Ok(None);
                }
            },
            EntryType::Special => {
                self.summary.others += 1;
                source::special_kind(&meta)
            }
        };
        let mut node = source::node(name, &meta, kind, &mut self.names);
        if let NodeKind::File { .. } = node.kind {
            node.size = file_size;
        }
        Ok(Some(node))
    }

    /// Chunks and stores a file; returns its blobs and the bytes read, or
    /// `None` when it could not be read.
    fn save_file(&mut self, path: &Path) -> Result<Option<(Vec<BlobId>, u64)>> {
        let file = match source::open_for_backup(path) {
            Ok(f) => f,
            Err(e) => {
                self.skip(path, e);
                return Ok(None);
            }
        };
        let mut content = Vec::new();
        let mut size = 0;
        for chunk in self.chunker.chunks(file) {
            match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    self.summary.bytes_read += chunk.len() as u64;
                    content.push(self.writer.save(BlobKind::Data, &chunk)?);
                }
                Err(e) => {
                    self.skip(path, e);
                    return Ok(None);
                }
            }
        }
        Ok(Some((content, size)))
    }
}
