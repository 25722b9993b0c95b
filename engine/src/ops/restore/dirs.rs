//! The directories a restore entered, to reach again once the walk is done
//! (their metadata is set last, and links are checked against the files
//! they name). Handles are not kept for all of them, which could be more
//! than a process may hold open: each is reopened from its parent's handle,
//! without following a symlink, and must be the very directory restored.

use super::handles::Dir;
use super::meta::{Handle, Meta};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One directory entered by the walk.
struct Record {
    /// The record of the directory holding it; the target is its own parent.
    parent: usize,
    name: Vec<u8>,
    /// Device and inode, to recognise it when reopened.
    id: (u64, u64),
    path: PathBuf,
    /// Its metadata, once everything in it was restored.
    meta: Option<Meta>,
    children: Vec<usize>,
}

/// The target directory (record 0) and the directories entered below it.
pub(super) struct Dirs {
    root: Arc<Dir>,
    records: Vec<Record>,
}

impl Dirs {
    /// Starts with the target, open as `root`, at `path`.
    pub(super) fn new(root: Arc<Dir>, path: &Path) -> std::io::Result<Self> {
        let id = root.stat()?.id();
        let target = Record {
            parent: 0,
            name: Vec::new(),
            id,
            path: path.to_path_buf(),
            meta: None,
            children: Vec::new(),
        };
        Ok(Dirs {
            root,
            records: vec![target],
        })
    }

    /// Records directory `name` of record `parent`, which is `id` at `path`;
    /// returns its record.
    pub(super) fn add(&mut self, parent: usize, name: &[u8], id: (u64, u64), path: &Path) -> usize {
        let record = self.records.len();
        self.records.push(Record {
            parent,
            name: name.to_vec(),
            id,
            path: path.to_path_buf(),
            meta: None,
            children: Vec::new(),
        });
        self.records[parent].children.push(record);
        record
    }

    /// Gives `record` the metadata to apply last.
    pub(super) fn set_meta(&mut self, record: usize, meta: Meta) {
        self.records[record].meta = Some(meta);
    }

    /// Opens the directory of `record` again, from the target down.
    pub(super) fn reopen(&self, record: usize) -> Result<Arc<Dir>> {
        let mut chain = Vec::new();
        let mut r = record;
        while r != 0 {
            chain.push(r);
            r = self.records[r].parent;
        }
        let mut dir = self.root.clone();
        for &r in chain.iter().rev() {
            dir = Arc::new(self.open_child(&dir, r)?);
        }
        Ok(dir)
    }

    /// Opens `record` in `parent`, its parent's directory.
    fn open_child(&self, parent: &Dir, record: usize) -> Result<Dir> {
        let r = &self.records[record];
        let io = |e| Error::io(format!("cannot open directory {}", r.path.display()), e);
        let dir = parent.open_dir(&r.name).map_err(io)?;
        if dir.stat().map_err(io)?.id() != r.id {
            let why = format!("{} was replaced during the restore", r.path.display());
            return Err(Error::Invalid(why));
        }
        Ok(dir)
    }

    /// Applies the metadata of every directory, each after all those below
    /// it (setting it does not touch its parent). A directory that cannot
    /// be reopened is reported, and those below it are left as they are.
    pub(super) fn apply_meta(&self, errors: &mut Vec<(PathBuf, Error)>) {
        // Records being visited, open, with the index of their next child.
        let mut stack = vec![(0, self.root.clone(), 0)];
        while let Some((record, dir, next)) = stack.last_mut() {
            if let Some(&child) = self.records[*record].children.get(*next) {
                *next += 1;
                match self.open_child(dir, child) {
                    Ok(d) => stack.push((child, Arc::new(d), 0)),
                    Err(e) => errors.push((self.records[child].path.clone(), e)),
                }
                continue;
            }
            let (record, dir, _) = stack.pop().expect("the loop saw an element");
            let r = &self.records[record];
            if let Some(meta) = &r.meta {
                if let Err(e) = meta.apply(Handle::Open(dir.as_fd()), &r.path) {
                    errors.push((r.path.clone(), e));
                }
            }
        }
    }
}
