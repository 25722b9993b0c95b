//! Walking the trees of a snapshot.

use crate::error::{Error, Result};
use crate::nesting;
use crate::repository::Repository;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::BlobId;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// The names along `path` inside a snapshot (`/` and `.` dropped; `..` refused).
pub fn path_names(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => names.push(n.as_bytes().to_vec()),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "path {} inside a snapshot may not contain `..`",
                    path.display()
                )))
            }
        }
    }
    Ok(names)
}

/// The node at `path` below the tree `root`; `None` for the root itself.
pub fn find_node(repo: &Repository, root: &BlobId, path: &Path) -> Result<Option<Node>> {
    let names = path_names(path)?;
    let mut tree = *root;
    let mut found = None;
    for (i, name) in names.iter().enumerate() {
        let node = repo
            .load_tree(&tree)?
            .find(name)
            .cloned()
            .ok_or_else(|| Error::PathNotInSnapshot(path.display().to_string()))?;
        match &node.kind {
            NodeKind::Dir { subtree } => tree = *subtree,
            _ if i + 1 < names.len() => {
                return Err(Error::PathNotInSnapshot(path.display().to_string()))
            }
            _ => {}
        }
        found = Some(node);
    }
    Ok(found)
}

/// Calls `visit` with the path (bytes, starting with `/`) and node of every
/// entry below `tree`, depth first, in name order. `prefix` is the path of `tree`.
pub fn walk(
    repo: &Repository,
    tree: &BlobId,
    prefix: &[u8],
    visit: &mut dyn FnMut(&[u8], &Node),
) -> Result<()> {
    let level = prefix
        .split(|&b| b == b'/')
        .filter(|n| !n.is_empty())
        .count();
    walk_at(repo, tree, prefix, level, visit)
}

/// [`walk`] of a tree at `level` below the root.
fn walk_at(
    repo: &Repository,
    tree: &BlobId,
    prefix: &[u8],
    level: usize,
    visit: &mut dyn FnMut(&[u8], &Node),
) -> Result<()> {
    for node in repo.load_tree(tree)?.nodes {
        let mut path = prefix.to_vec();
        if !path.ends_with(b"/") {
            path.push(b'/');
        }
        path.extend_from_slice(&node.name);
        visit(&path, &node);
        if let NodeKind::Dir { subtree } = &node.kind {
            let name = || String::from_utf8_lossy(&path).into_owned();
            nesting::descend(level, name, |below| {
                walk_at(repo, subtree, &path, below, visit)
            })?;
        }
    }
    Ok(())
}
