//! A repository in a local directory.

use super::temp_file::{write_temporary, TempFile};
use super::{layout, stored_differs, too_large, Backend, FileKind, Staged};
use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Stores repository files under a directory:
/// `config`, `keys/`, `data/<2 hex>/`, `index/`, `snapshots/`, `locks/`, `marks/`.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// A backend rooted at `root` (nothing is touched until used).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into() }
    }

    fn dir(&self, kind: FileKind, name: &str) -> PathBuf {
        match kind {
            FileKind::Config => self.root.clone(),
            _ => self.root.join(layout::dir(kind, name)),
        }
    }

    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        layout::path(kind, name).map(|p| self.root.join(p))
    }

    /// The directory of file `name` of `kind`, created if it is missing.
    fn made_dir(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        let dir = self.dir(kind, name);
        if kind != FileKind::Config && !dir.exists() {
            // A pack's fan-out directory, or one that an older version did not create.
            private_dir(&dir)
                .map_err(|e| Error::io(format!("cannot create directory {}", dir.display()), e))?;
            // The new directory's own entry must be durable before a file in it is relied on.
            sync_dir(dir.parent().unwrap_or(&self.root))?;
        }
        Ok(dir)
    }

    /// The path of file `name` of `kind`, for messages.
    fn path_shown(&self, kind: FileKind, name: &str) -> String {
        self.path(kind, name)
            .map_or_else(|_| name.to_string(), |p| p.display().to_string())
    }

    /// Gives the synced temporary file `tmp` (`len` bytes) the name `name`
    /// of `kind` in `dir`, its directory as [`LocalBackend::made_dir`]
    /// returned it, never replacing a file; removes the temporary name.
    fn link(&self, kind: FileKind, name: &str, dir: &Path, tmp: &Path, len: u64) -> Result<()> {
        let path = self.path(kind, name)?;
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        // A hard link, unlike rename, never replaces an existing file.
        let linked = fs::hard_link(tmp, &path);
        let _ = fs::remove_file(tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists && kind != FileKind::Config => {
                // Content-addressed: a file of this name already holds these
                // bytes, unless it is damaged. One of another size surely is.
                let stored = fs::symlink_metadata(&path)
                    .map_err(|e| io("stat", e))?
                    .len();
                if stored != len {
                    return Err(stored_differs(kind, name, stored, len));
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::RepositoryExists(self.location()))
            }
            Err(e) => return Err(io("create", e)),
        }
        sync_dir(dir)
    }

    /// Opens a repository file for reading. Without blocking: a FIFO or
    /// device planted in its place is refused, not waited on.
    fn open(&self, kind: FileKind, name: &str) -> Result<(File, PathBuf)> {
        let path = self.path(kind, name)?;
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path);
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::Missing(format!("{} {}", kind.name(), name)))
            }
            Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
        };
        match file.metadata() {
            Ok(m) if m.is_file() => Ok((file, path)),
            Ok(_) => Err(Error::Invalid(format!(
                "{} is not a regular file: it is damaged",
                path.display()
            ))),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }
}

/// Creates `dir` and any missing parents readable by their owner alone
/// (SPEC §2.1): other local users must not copy key files to guess passwords.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A local file being written before it has its name.
struct LocalStaged {
    backend: LocalBackend,
    kind: FileKind,
    file: TempFile,
    len: u64,
}

impl Staged for LocalStaged {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.len += bytes.len() as u64;
        self.file
            .write(bytes)
            .map_err(|e| Error::io(format!("cannot write {}", self.file.path().display()), e))
    }

    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        let LocalStaged {
            backend,
            kind,
            file,
            len,
        } = *self;
        let shown = file.path().display().to_string();
        let tmp = file
            .finish()
            .map_err(|e| Error::io(format!("cannot write {shown}"), e))?;
        let dir = backend.made_dir(kind, name)?;
        backend.link(kind, name, &dir, &tmp, len)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot sync directory {}", dir.display()), e))
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create_repository(&self) -> Result<()> {
        if self.exists()? {
            return Err(Error::RepositoryExists(self.location()));
        }
        let io = |e| {
            Error::io(
                format!("cannot create repository at {}", self.root.display()),
                e,
            )
        };
        private_dir(&self.root).map_err(io)?;
        for sub in layout::DIRS {
            private_dir(&self.root.join(sub)).map_err(io)?;
        }
        sync_dir(&self.root)
    }

    fn exists(&self) -> Result<bool> {
        match fs::symlink_metadata(self.root.join("config")) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot read {}", self.root.display()), e)),
        }
    }

    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.made_dir(kind, name)?;
        let tmp = write_temporary(&dir, bytes)
            .map_err(|e| Error::io(format!("cannot write {}", self.path_shown(kind, name)), e))?;
        self.link(kind, name, &dir, &tmp, bytes.len() as u64)
    }

    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        super::replaceable(kind)?;
        let path = self.path(kind, name)?;
        let dir = self.dir(kind, name);
        let io = |what: &str, e| Error::io(format!("cannot {what} {}", path.display()), e);
        let tmp = write_temporary(&dir, bytes).map_err(|e| io("write", e))?;
        // Rename replaces the old file in one step.
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io("replace", e));
        }
        sync_dir(&dir)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let (file, path) = self.open(kind, name)?;
        let io = |e| Error::io(format!("cannot read {}", path.display()), e);
        let limit = kind.max_len();
        let too_large = |size: u64| too_large(path.display(), kind, size);
        let size = file.metadata().map_err(io)?.len();
        if size > limit {
            return Err(too_large(size));
        }
        // The file may grow while it is read: never read past the limit.
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
        match bytes.len() as u64 > limit {
            true => Err(too_large(bytes.len() as u64)),
            false => Ok(bytes),
        }
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let (file, path) = self.open(kind, name)?;
        let mut buf = vec![0u8; length as usize];
        file.read_exact_at(&mut buf, offset).map_err(|e| {
            let what = if e.kind() == ErrorKind::UnexpectedEof {
                "truncated"
            } else {
                "unreadable"
            };
            Error::io(
                format!(
                    "{} is {what} (reading {length} bytes at {offset})",
                    path.display()
                ),
                e,
            )
        })?;
        Ok(buf)
    }

    /// A temporary file in the directory of `kind` (for a pack, whose
    /// fan-out directory its name decides, in `data/`), written past the
    /// page cache and linked to its name at the end (SPEC §2.3).
    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>> {
        let dir = match kind {
            FileKind::Pack => self.root.join("data"),
            _ => self.dir(kind, ""),
        };
        let file = TempFile::create(&dir, true)
            .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
        Ok(Some(Box::new(LocalStaged {
            backend: self.clone(),
            kind,
            file,
            len: 0,
        })))
    }

    fn will_read(&self, kind: FileKind, name: &str, offset: u64, length: u64) {
        if let Ok((file, _)) = self.open(kind, name) {
            // SAFETY: an advice call on a descriptor `file` keeps open; it
            // reads no memory, and its failure changes nothing.
            unsafe {
                libc::posix_fadvise(
                    file.as_raw_fd(),
                    offset as i64,
                    length as i64,
                    libc::POSIX_FADV_WILLNEED,
                )
            };
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let (file, path) = self.open(kind, name)?;
        file.metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        // Not opened: a file without read permission still has a time.
        let path = self.path(kind, name)?;
        match fs::symlink_metadata(&path).and_then(|m| m.modified()) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(Error::Missing(format!("{} {}", kind.name(), name)))
            }
            Err(e) => Err(Error::io(format!("cannot stat {}", path.display()), e)),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        let dirs = match kind {
            FileKind::Config => {
                return Ok(if self.exists()? {
                    vec!["config".into()]
                } else {
                    vec![]
                })
            }
            // Only the 256 fan-out directories can hold packs; missing ones are skipped below.
            FileKind::Pack => (0..=255u8)
                .map(|i| self.root.join("data").join(format!("{i:02x}")))
                .collect(),
            _ => vec![self.dir(kind, "")],
        };
        let mut names = Vec::new();
        for dir in dirs {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
            };
            for entry in entries {
                let entry =
                    entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
                let name = entry.file_name();
                let in_place = |n: &&str| {
                    layout::valid_name(kind, n)
                        && (kind != FileKind::Pack || dir.ends_with(&n[..2]))
                };
                if let Some(name) = name.to_str().filter(in_place) {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if kind == FileKind::Config {
            return Err(Error::Invalid("the config cannot be removed".into()));
        }
        let path = self.path(kind, name)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::Missing(format!("{} {}", kind.name(), name)))
            }
            Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
        sync_dir(&self.dir(kind, name))
    }
}

#[cfg(test)]
mod tests {
    use super::super::temp_file::{DIRECT_ALIGN, DIRECT_CHUNK, DIRECT_MIN};
    use super::*;
    use crate::backend::Bytes;

    /// How many of the pages of `file` (`len` bytes) are in the page
    /// cache, and how many it has.
    fn resident_pages(file: &File, len: usize) -> (usize, usize) {
        use std::os::fd::AsRawFd;
        let pages = len.div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: a private read-only map of `len` bytes of an open file,
        // asked about and unmapped here; `vec` has a byte per page.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0);
            libc::munmap(map, len);
        }
        (vec.iter().filter(|&&b| b & 1 == 1).count(), pages)
    }

    /// Asserts that no temporary file is left below `dir`.
    fn assert_no_temporaries(dir: &Path) {
        let leftovers: Vec<_> = walk(dir)
            .into_iter()
            .filter(|p| p.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn will_read_brings_a_range_into_the_page_cache() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create_repository().unwrap();
        let name = "cd".repeat(32);
        let size = 4 * DIRECT_MIN;
        b.create(FileKind::Pack, &name, &vec![7u8; size]).unwrap();
        let file = File::open(b.path(FileKind::Pack, &name).unwrap()).unwrap();
        assert!(resident_pages(&file, size).0 <= 1);
        b.will_read(FileKind::Pack, &name, DIRECT_MIN as u64, DIRECT_MIN as u64);
        // The reading is started, not waited for.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while resident_pages(&file, size).0 < DIRECT_MIN / 4096
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (resident, pages) = resident_pages(&file, size);
        assert!(
            (DIRECT_MIN / 4096..pages).contains(&resident),
            "{resident} of {pages}"
        );
        // A file that is not there is no error: it is only a hint.
        b.will_read(FileKind::Pack, &"ef".repeat(32), 0, 10);
    }

    #[test]
    fn large_files_written_past_the_page_cache_read_back_whole_on_disk_and_in_memory() {
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        for dir in [disk.path(), shm.path()] {
            let b = LocalBackend::new(dir.join("repo"));
            b.create_repository().unwrap();
            // Whole blocks only, whole blocks and a tail, more than one
            // aligned buffer, and just under the size written directly.
            let sizes = [
                DIRECT_MIN,
                DIRECT_MIN + 123,
                3 * DIRECT_CHUNK + DIRECT_ALIGN + 7,
                DIRECT_MIN - 1,
            ];
            for (i, size) in sizes.into_iter().enumerate() {
                let bytes: Vec<u8> = (0..size).map(|j| (j * 31 + i) as u8).collect();
                let name = format!("{i:02x}").repeat(32);
                b.create_owned(FileKind::Pack, &name, Bytes::from(bytes.clone()))
                    .unwrap();
                if dir == disk.path() {
                    // ext4 takes direct writes: of a large file at most the
                    // tail's page is in the page cache; a small one is all there.
                    let file = File::open(b.path(FileKind::Pack, &name).unwrap()).unwrap();
                    let (resident, pages) = resident_pages(&file, size);
                    match size >= DIRECT_MIN {
                        true => assert!(resident <= 1, "{resident} of {pages} pages"),
                        false => assert_eq!(resident, pages),
                    }
                }
                assert_eq!(b.read(FileKind::Pack, &name).unwrap(), bytes, "{size}");
            }
            assert_no_temporaries(dir);
        }
    }

    #[test]
    fn staged_files_written_in_pieces_read_back_whole_and_never_replace() {
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        for dir in [disk.path(), shm.path()] {
            let b = LocalBackend::new(dir.join("repo"));
            b.create_repository().unwrap();
            // Pieces smaller than a block, across buffers, larger than a
            // buffer, and a tail.
            let pieces = [1, 4095, DIRECT_CHUNK - 3, 2 * DIRECT_CHUNK + 9, 17];
            let size = pieces.iter().sum::<usize>();
            let bytes: Vec<u8> = (0..size).map(|j| (j * 7 + j / 4096) as u8).collect();
            let mut staged = b.stage(FileKind::Pack).unwrap().unwrap();
            let mut at = 0;
            for n in pieces {
                staged.write(&bytes[at..at + n]).unwrap();
                at += n;
            }
            // Named by its hash, its fan-out directory is not made yet.
            let name = blake3::hash(&bytes).to_hex().to_string();
            staged.commit(&name).unwrap();
            if dir == disk.path() {
                let file = File::open(b.path(FileKind::Pack, &name).unwrap()).unwrap();
                let (resident, pages) = resident_pages(&file, size);
                assert!(resident <= 1, "{resident} of {pages} pages");
            }
            assert_eq!(b.read(FileKind::Pack, &name).unwrap(), bytes);
            // The same name again: the file stays; another size is damage.
            let mut again = b.stage(FileKind::Pack).unwrap().unwrap();
            again.write(&bytes[..size - 1]).unwrap();
            again.write(&[0]).unwrap();
            again.commit(&name).unwrap();
            let mut shorter = b.stage(FileKind::Pack).unwrap().unwrap();
            shorter.write(&bytes[1..]).unwrap();
            let err = shorter.commit(&name).unwrap_err().to_string();
            assert!(err.contains("already in storage"), "{err}");
            assert_eq!(b.read(FileKind::Pack, &name).unwrap(), bytes);
            // Dropped before it is named, it leaves nothing.
            let mut dropped = b.stage(FileKind::Pack).unwrap().unwrap();
            dropped.write(&bytes).unwrap();
            drop(dropped);
            assert_eq!(b.list(FileKind::Pack).unwrap(), vec![name]);
            assert_no_temporaries(dir);
        }
    }

    #[test]
    fn create_is_atomic_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create_repository().unwrap();
        let name = "ab".repeat(32);
        b.create(FileKind::Pack, &name, b"one").unwrap();
        b.create(FileKind::Pack, &name, b"two").unwrap();
        assert_eq!(b.read(FileKind::Pack, &name).unwrap(), b"one");
        assert_eq!(b.list(FileKind::Pack).unwrap(), vec![name.clone()]);
        assert_eq!(b.read_at(FileKind::Pack, &name, 1, 2).unwrap(), b"ne");
        assert!(b.read_at(FileKind::Pack, &name, 2, 5).is_err());
        b.create(FileKind::Config, "config", b"c").unwrap();
        assert!(matches!(
            b.create(FileKind::Config, "config", b"d"),
            Err(Error::RepositoryExists(_))
        ));
        assert!(matches!(
            b.create_repository(),
            Err(Error::RepositoryExists(_))
        ));
        assert_no_temporaries(dir.path());
    }

    #[test]
    fn remove_deletes_once_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create_repository().unwrap();
        let name = "cd".repeat(32);
        b.create(FileKind::Snapshot, &name, b"s").unwrap();
        b.remove(FileKind::Snapshot, &name).unwrap();
        assert!(b.list(FileKind::Snapshot).unwrap().is_empty());
        match b.remove(FileKind::Snapshot, &name) {
            Err(Error::Missing(what)) => assert!(what.contains(&name), "{what}"),
            other => panic!("{other:?}"),
        }
        assert!(b.remove(FileKind::Snapshot, "../config").is_err());
        b.create(FileKind::Config, "config", b"c").unwrap();
        assert!(b.remove(FileKind::Config, "config").is_err());
        assert!(b.exists().unwrap());
    }

    #[test]
    fn modified_gives_the_storage_time_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create_repository().unwrap();
        let name = "9a".repeat(32);
        b.create(FileKind::Lock, &name, b"not a record").unwrap();
        let then = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let path = dir.path().join("locks").join(&name);
        filetime::set_file_mtime(&path, then.into()).unwrap();
        assert_eq!(b.modified(FileKind::Lock, &name).unwrap(), then);
        b.remove(FileKind::Lock, &name).unwrap();
        match b.modified(FileKind::Lock, &name) {
            Err(Error::Missing(what)) => assert!(what.contains(&name), "{what}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_that_are_not_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        assert!(b.read(FileKind::Snapshot, "../config").is_err());
    }

    #[test]
    fn oversized_files_and_non_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create_repository().unwrap();
        // A sparse file: its size costs no disk.
        let name = "ef".repeat(32);
        let limit = FileKind::Snapshot.max_len();
        let file = File::create(dir.path().join("snapshots").join(&name)).unwrap();
        file.set_len(limit).unwrap();
        assert_eq!(
            b.read(FileKind::Snapshot, &name).unwrap().len() as u64,
            limit
        );
        file.set_len(limit + 1).unwrap();
        let e = b.read(FileKind::Snapshot, &name).unwrap_err().to_string();
        assert!(
            e.contains(&name) && e.contains("larger than any snapshot"),
            "{e}"
        );
        // A key file of 2 GiB is refused as quickly.
        let key = "12".repeat(32);
        File::create(dir.path().join("keys").join(&key))
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        assert!(b.read(FileKind::Key, &key).is_err());
        // A FIFO is refused, not waited on; so is a directory.
        let fifo = "34".repeat(32);
        let path = std::ffi::CString::new(
            dir.path()
                .join("index")
                .join(&fifo)
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let e = b.read(FileKind::Index, &fifo).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert!(b.size(FileKind::Index, &fifo).is_err());
        let sub = "56".repeat(32);
        fs::create_dir(dir.path().join("locks").join(&sub)).unwrap();
        assert!(b.read(FileKind::Lock, &sub).is_err());
    }

    fn walk(p: &Path) -> Vec<String> {
        let mut out = vec![];
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            out.push(e.path().display().to_string());
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            }
        }
        out
    }
}
