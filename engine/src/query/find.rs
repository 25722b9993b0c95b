//! Finding entries by glob pattern across snapshots.
//!
//! A pattern without `/` is matched against each entry's name. A pattern with
//! `/` is matched against the entry's absolute path inside the snapshot: one
//! that starts with `/` must match the whole path, any other matches the end of
//! the path at any depth (`docs/*.txt`). `*` and `?` stay within one name, `**`
//! spans directories.

use crate::error::{Error, Result};
use crate::nesting;
use crate::repository::Repository;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::{BlobId, SnapshotId};
use globset::{Candidate, GlobBuilder, GlobMatcher};
use std::collections::HashMap;
use std::rc::Rc;

/// One entry that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The snapshot it was found in.
    pub snapshot: SnapshotId,
    /// Absolute path inside the snapshot, starting with `/`.
    pub path: Vec<u8>,
    /// The entry.
    pub node: Node,
}

/// Every entry matching `pattern` in each of `snapshots`, in the order the
/// snapshots are given, and within one snapshot depth first in name order.
///
/// Trees shared by several snapshots at the same path are searched once.
pub fn find(
    repo: &Repository,
    snapshots: &[(SnapshotId, Snapshot)],
    pattern: &str,
    ignore_case: bool,
) -> Result<Vec<Match>> {
    let mut finder = Finder::new(repo, pattern, ignore_case)?;
    let mut out = Vec::new();
    for (id, snapshot) in snapshots {
        let found = finder.search(&snapshot.tree, b"", 0)?;
        flatten(&found, *id, &mut out);
    }
    Ok(out)
}

/// The matches below one tree, in walk order. A subdirectory's matches are
/// shared with the cache rather than copied, so that every match is held once
/// however deep it lies.
type Found = Rc<Pieces>;

struct Pieces(Vec<Piece>);

enum Piece {
    Hit(Box<(Vec<u8>, Node)>),
    Below(Found),
}

impl Drop for Pieces {
    /// Takes nested results apart one by one: dropping them recursively
    /// could overflow a small stack 2,049 levels down.
    fn drop(&mut self) {
        let mut pieces = std::mem::take(&mut self.0);
        while let Some(piece) = pieces.pop() {
            if let Piece::Below(below) = piece {
                if let Ok(mut below) = Rc::try_unwrap(below) {
                    pieces.append(&mut below.0);
                }
            }
        }
    }
}

/// Adds the matches in `found` to `out`, in walk order.
fn flatten(found: &Found, snapshot: SnapshotId, out: &mut Vec<Match>) {
    let mut stack: Vec<std::slice::Iter<'_, Piece>> = vec![found.0.iter()];
    while let Some(pieces) = stack.last_mut() {
        match pieces.next() {
            None => drop(stack.pop()),
            Some(Piece::Hit(hit)) => out.push(Match {
                snapshot,
                path: hit.0.clone(),
                node: hit.1.clone(),
            }),
            Some(Piece::Below(below)) => stack.push(below.0.iter()),
        }
    }
}

struct Finder<'r> {
    repo: &'r Repository,
    glob: GlobMatcher,
    /// Match against the name only, not the path.
    by_name: bool,
    /// Results by (tree, path of the tree).
    cache: HashMap<(BlobId, Vec<u8>), Found>,
}

impl<'r> Finder<'r> {
    fn new(repo: &'r Repository, pattern: &str, ignore_case: bool) -> Result<Self> {
        let by_name = !pattern.contains('/');
        let full = if by_name || pattern.starts_with('/') {
            pattern.to_string()
        } else {
            format!("**/{pattern}")
        };
        let glob = GlobBuilder::new(&full)
            .literal_separator(true)
            .case_insensitive(ignore_case)
            .build()
            .map_err(|e| Error::Invalid(format!("invalid pattern {pattern:?}: {e}")))?
            .compile_matcher();
        Ok(Finder {
            repo,
            glob,
            by_name,
            cache: HashMap::new(),
        })
    }

    /// Matches below `tree`, a tree at `level` whose path is `prefix` (empty
    /// for the root).
    fn search(&mut self, tree: &BlobId, prefix: &[u8], level: usize) -> Result<Found> {
        let key = (*tree, prefix.to_vec());
        if let Some(found) = self.cache.get(&key) {
            return Ok(found.clone());
        }
        let mut found = Vec::new();
        for node in self.repo.load_tree(tree)?.nodes {
            let mut path = Vec::with_capacity(prefix.len() + 1 + node.name.len());
            path.extend_from_slice(prefix);
            path.push(b'/');
            path.extend_from_slice(&node.name);
            let subject = if self.by_name { &node.name } else { &path };
            let hit = self
                .glob
                .is_match_candidate(&Candidate::from_bytes(subject));
            let subtree = match &node.kind {
                NodeKind::Dir { subtree } => Some(*subtree),
                _ => None,
            };
            let below = match subtree {
                Some(subtree) => {
                    let name = || String::from_utf8_lossy(&path).into_owned();
                    Some(nesting::descend(level, name, |at| {
                        self.search(&subtree, &path, at)
                    })?)
                }
                None => None,
            };
            if hit {
                found.push(Piece::Hit(Box::new((path, node))));
            }
            if let Some(below) = below.filter(|b| !b.0.is_empty()) {
                found.push(Piece::Below(below));
            }
        }
        let found = Rc::new(Pieces(found));
        self.cache.insert(key, found.clone());
        Ok(found)
    }
}
