//! A local copy of a remote repository's metadata, so that a command does
//! not download again what it read last time: index files, snapshots,
//! journal entries, audit records and packs holding only trees, under `<base>/<repository ID>/`.
//!
//! The cache is never trusted more than storage. Files are named by the
//! hash of their content, which is checked on every read of an index file,
//! snapshot or journal entry; a tree is cut from a cached pack and authenticated like any
//! blob (SPEC.md §9.3). A cached file that fails either check is deleted and
//! read from storage instead. Files the repository no longer lists are
//! deleted when a listing shows it. Everything here is best effort: a cache
//! that cannot be written only costs downloads.

use crate::backend::FileKind;
use cairn_format::id::storage_hash;
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The kinds of files kept, and the folder of each.
const KINDS: [(FileKind, &str); 5] = [
    (FileKind::Index, "index"),
    (FileKind::Snapshot, "snapshots"),
    (FileKind::Journal, "journal"),
    (FileKind::Audit, "audit"),
    (FileKind::Pack, "trees"),
];

/// The metadata cache of one repository.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    /// Numbers for temporary names, unique within this process.
    next_temp: AtomicU64,
    /// Held while a file is fetched into the cache, so that threads
    /// wanting it fetch it once.
    fetching: Mutex<()>,
}

impl Cache {
    /// The cache of the repository with ID `repo_id` under `base`, made
    /// (readable by its owner alone) if it does not exist.
    pub fn open(base: &Path, repo_id: &[u8; 32]) -> std::io::Result<Cache> {
        let dir = base.join(hex::encode(repo_id));
        for (_, folder) in KINDS {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir.join(folder))?;
        }
        Ok(Cache {
            dir,
            next_temp: AtomicU64::new(0),
            fetching: Mutex::new(()),
        })
    }

    /// Held while fetching a file into the cache: the caller looks in the
    /// cache again once it holds it.
    pub(crate) fn fetching(&self) -> MutexGuard<'_, ()> {
        self.fetching.lock().expect("not poisoned")
    }

    /// The folder of this repository's cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file `name` of `kind` is kept, if this kind is kept and
    /// the name is a plain hex ID (never a path).
    fn path(&self, kind: FileKind, name: &str) -> Option<PathBuf> {
        let (_, folder) = KINDS.iter().find(|(k, _)| *k == kind)?;
        let plain = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        plain.then(|| self.dir.join(folder).join(name))
    }

    /// The cached bytes of `name`, if kept and they hash to the name; a
    /// damaged copy is deleted.
    pub(crate) fn read(&self, kind: FileKind, name: &str) -> Option<Vec<u8>> {
        let path = self.path(kind, name)?;
        let bytes = std::fs::read(&path).ok()?;
        if hex::encode(storage_hash(&bytes)) == name {
            return Some(bytes);
        }
        let _ = std::fs::remove_file(&path);
        None
    }

    /// `length` bytes at `offset` of the cached file `name`, if kept and
    /// that long. The caller authenticates them.
    pub(crate) fn read_at(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: u32,
    ) -> Option<Vec<u8>> {
        let file = File::open(self.path(kind, name)?).ok()?;
        let mut bytes = vec![0; length as usize];
        file.read_exact_at(&mut bytes, offset).ok()?;
        Some(bytes)
    }

    /// True when the file `name` of `kind` is cached (whatever its state).
    #[cfg(test)]
    fn contains(&self, kind: FileKind, name: &str) -> bool {
        self.path(kind, name).is_some_and(|p| p.exists())
    }

    /// Keeps a copy of `bytes`, which storage holds as `name`: written
    /// under a temporary name and renamed, so a reader never sees part of it.
    pub(crate) fn store(&self, kind: FileKind, name: &str, bytes: &[u8]) {
        let Some(path) = self.path(kind, name) else {
            return;
        };
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let temp = path.with_file_name(format!(".tmp-{}-{n}", std::process::id()));
        if std::fs::write(&temp, bytes).is_err() || std::fs::rename(&temp, &path).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }

    /// Deletes the copy of `name`, if any.
    pub(crate) fn remove(&self, kind: FileKind, name: &str) {
        if let Some(path) = self.path(kind, name) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Deletes every copy of a file of `kind` that `keep` does not name,
    /// and temporary files left by a process that was stopped.
    pub(crate) fn retain<'a>(&self, kind: FileKind, keep: impl IntoIterator<Item = &'a str>) {
        let Some((_, folder)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            return;
        };
        let keep: HashSet<&str> = keep.into_iter().collect();
        let Ok(entries) = std::fs::read_dir(self.dir.join(folder)) else {
            return;
        };
        let own_temp = format!(".tmp-{}-", std::process::id());
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !keep.contains(&*name) && !name.starts_with(&own_temp) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(bytes: &[u8]) -> String {
        hex::encode(storage_hash(bytes))
    }

    #[test]
    fn a_copy_is_returned_only_while_it_hashes_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), &[7; 32]).unwrap();
        let name = named(b"index bytes");
        assert_eq!(cache.read(FileKind::Index, &name), None);
        cache.store(FileKind::Index, &name, b"index bytes");
        assert_eq!(
            cache.read(FileKind::Index, &name).as_deref(),
            Some(&b"index bytes"[..])
        );
        let path = dir
            .path()
            .join(hex::encode([7; 32]))
            .join("index")
            .join(&name);
        std::fs::write(&path, b"index bytez").unwrap();
        assert_eq!(cache.read(FileKind::Index, &name), None);
        assert!(!path.exists(), "a damaged copy is deleted");
    }

    #[test]
    fn only_plain_names_of_kept_kinds_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), &[1; 32]).unwrap();
        let name = named(b"k");
        cache.store(FileKind::Key, &name, b"k");
        cache.store(FileKind::Index, "../../escape", b"k");
        assert!(!cache.contains(FileKind::Key, &name));
        assert!(!dir.path().join("escape").exists());
        assert_eq!(cache.read(FileKind::Index, "../../escape"), None);
    }

    #[test]
    fn retain_deletes_what_the_listing_no_longer_names() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), &[2; 32]).unwrap();
        let (a, b) = (named(b"a"), named(b"b"));
        cache.store(FileKind::Snapshot, &a, b"a");
        cache.store(FileKind::Snapshot, &b, b"b");
        std::fs::write(cache.dir().join("snapshots/.tmp-1-0"), b"left").unwrap();
        cache.retain(FileKind::Snapshot, [a.as_str()]);
        assert!(cache.contains(FileKind::Snapshot, &a));
        assert!(!cache.contains(FileKind::Snapshot, &b));
        assert!(!cache.dir().join("snapshots/.tmp-1-0").exists());
        assert_eq!(
            cache.read_at(FileKind::Snapshot, &a, 0, 1).as_deref(),
            Some(&b"a"[..])
        );
        assert_eq!(cache.read_at(FileKind::Snapshot, &a, 0, 2), None);
    }
}
