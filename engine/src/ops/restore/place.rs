//! Where restored entries go: an open directory with its record and path,
//! an entry's place in it (created or replaced there, never through a
//! path), and the hard links this restore makes.

use super::dirs::Dirs;
use super::handles::{Dir, Stat};
use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A directory being restored into: open, with its record and its path.
pub(super) struct DirAt {
    pub(super) handle: Arc<Dir>,
    pub(super) record: usize,
    pub(super) path: PathBuf,
}

impl DirAt {
    /// Where entry `name` of this directory goes.
    pub(super) fn entry(&self, name: &[u8]) -> Place {
        Place {
            dir: self.handle.clone(),
            record: self.record,
            name: name.to_vec(),
            path: self.path.join(OsStr::from_bytes(name)),
        }
    }
}

/// Where an entry is restored: its name in an open directory (whose record
/// is `record`), and its path, for messages.
#[derive(Clone)]
pub(super) struct Place {
    pub(super) dir: Arc<Dir>,
    pub(super) record: usize,
    pub(super) name: Vec<u8>,
    pub(super) path: PathBuf,
}

impl Place {
    /// An I/O error while doing `what` to the entry.
    pub(super) fn io(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(format!("cannot {what} {}", self.path.display()), e)
    }

    /// The same entry, named by its directory's record instead of a handle.
    pub(super) fn named(&self) -> Named {
        Named {
            record: self.record,
            name: self.name.clone(),
            path: self.path.clone(),
        }
    }

    /// Creates the file, `len` bytes long, all a hole until written.
    pub(super) fn create(&self, len: u64) -> Result<File> {
        let file = self
            .dir
            .create_file(&self.name)
            .map_err(|e| self.io("create", e))?;
        if let Err(e) = file.set_len(len) {
            let _ = self.dir.unlink_if(&self.name, &file);
            return Err(self.io("set the length of", e));
        }
        Ok(file)
    }

    /// Replaces what is there by a new file of `len` bytes, made under a
    /// temporary name and renamed over it, so that nothing else that may
    /// share it (another hard link) changes.
    pub(super) fn replace(&self, len: u64) -> Result<File> {
        let (temp, file) = self
            .dir
            .create_temp()
            .map_err(|e| self.io("create a replacement for", e))?;
        let done = file
            .set_len(len)
            .and_then(|()| self.dir.rename(&temp, &self.name));
        if let Err(e) = done {
            let _ = self.dir.unlink_if(&temp, &file);
            return Err(self.io("replace", e));
        }
        Ok(file)
    }
}

/// An entry by the record of its directory and its name.
#[derive(Clone)]
pub(super) struct Named {
    pub(super) record: usize,
    pub(super) name: Vec<u8>,
    pub(super) path: PathBuf,
}

/// A hard link made by this restore to a file restored first.
pub(super) struct Link {
    pub(super) at: Named,
    /// Device and inode of what it links to.
    pub(super) id: (u64, u64),
    pub(super) first: Named,
}

impl Link {
    /// Removes the link if the file it links to was not restored (it failed,
    /// and was removed): the link holds what is left of it.
    pub(super) fn check(&self, dirs: &Dirs) -> Result<()> {
        let same = |s: Option<Stat>| s.is_some_and(|s| s.id() == self.id);
        let present = dirs
            .reopen(self.first.record)
            .is_ok_and(|d| d.stat_at(&self.first.name).is_ok_and(same));
        if present {
            return Ok(());
        }
        let dir = dirs.reopen(self.at.record)?;
        if dir.stat_at(&self.at.name).is_ok_and(same) {
            let _ = dir.unlink(&self.at.name);
        }
        let why = format!("{} could not be restored", self.first.path.display());
        Err(Error::Invalid(why))
    }
}
