//! Storage backends: where repository files live.
//!
//! A backend stores opaque named files of a few kinds. Files are created once
//! and never modified; `create` must be atomic and must not replace an existing
//! file, so a backup needs only create permission. Every backend uses the
//! same names below its root (SPEC §2); a [`Location`] says which backend.

#[cfg(test)]
pub(crate) mod gated;
mod layout;
mod local;
mod location;
mod retry;
mod s3;
mod s3_lock;
mod sftp;
mod temp_file;

pub use local::LocalBackend;
pub use location::{Location, S3Location, SftpLocation};
pub use retry::{RetryPolicy, Retrying};
pub use s3::{S3Backend, S3Config, S3Credentials};
pub use sftp::{SftpBackend, SftpConfig};

use crate::error::{Error, Result};
/// The shared byte buffers [`Backend::create_owned`] takes.
pub use bytes::Bytes;
use std::fmt::Display;
use std::time::SystemTime;

/// The kinds of repository files, each in its own namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The single `config` file (its name is ignored).
    Config,
    /// Key files.
    Key,
    /// Pack files.
    Pack,
    /// Index files.
    Index,
    /// Snapshot files.
    Snapshot,
    /// Lock records of running operations.
    Lock,
    /// Prune marks.
    Mark,
    /// Journal entries: failures, checks and prunes.
    Journal,
    /// Audit records.
    Audit,
    /// Files of PostgreSQL WAL archives.
    Wal,
}

impl FileKind {
    /// Whether files of this kind hold backups, which storage with a
    /// retention keeps from deletion: packs, index files, snapshots, audit
    /// records and WAL files (not the files that must go: keys, locks,
    /// marks, journal entries; nor the config, replaced by a key rotation).
    pub fn retained(self) -> bool {
        matches!(
            self,
            FileKind::Pack | FileKind::Index | FileKind::Snapshot | FileKind::Audit | FileKind::Wal
        )
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Key => "key file",
            FileKind::Pack => "pack",
            FileKind::Index => "index file",
            FileKind::Snapshot => "snapshot",
            FileKind::Lock => "lock record",
            FileKind::Mark => "prune mark",
            FileKind::Journal => "journal entry",
            FileKind::Audit => "audit record",
            FileKind::Wal => "WAL file",
        }
    }

    /// The largest file of this kind a reader accepts: the largest content
    /// the format allows, padded, with room for its envelope (SPEC §2.1). Backends
    /// refuse to read a larger file, so damaged or hostile storage cannot
    /// make a reader allocate without bound.
    pub fn max_len(self) -> u64 {
        use cairn_format::crypto::max_envelope_len;
        use cairn_format::{audit, config, index, journal, key, lock, pack, snapshot, tree, wal};
        const ROOM: u64 = 64 * 1024;
        let content = match self {
            FileKind::Config => config::MAX_CONFIG_LEN,
            FileKind::Key => key::MAX_KEY_FILE_LEN,
            // A pack is closed once it reaches the pack size, so its last
            // blob (a tree at most) and its header may lie beyond it.
            FileKind::Pack => {
                return config::MAX_PACK_SIZE
                    + max_envelope_len(tree::MAX_TREE_LEN) as u64
                    + u64::from(pack::MAX_SEALED_HEADER_LEN)
                    + ROOM
            }
            // The entries, and in a repository with key epochs the tags.
            FileKind::Index => {
                return (max_envelope_len(index::MAX_INDEX_LEN)
                    + max_envelope_len(index::MAX_TAGS_LEN)) as u64
                    + 8
                    + ROOM
            }
            FileKind::Snapshot => snapshot::MAX_SNAPSHOT_LEN,
            FileKind::Lock => lock::MAX_LOCK_LEN,
            FileKind::Mark => lock::MAX_MARK_LEN,
            FileKind::Journal => journal::MAX_JOURNAL_LEN,
            FileKind::Audit => audit::MAX_AUDIT_LEN,
            FileKind::Wal => wal::MAX_WAL_LEN,
        };
        max_envelope_len(content) as u64 + ROOM
    }
}

/// Storage for repository files.
pub trait Backend: Send + Sync {
    /// Human-readable location, for messages.
    fn location(&self) -> String;
    /// Prepares empty storage for a new repository; fails if one exists.
    fn create_repository(&self) -> Result<()>;
    /// True when a repository (a config file) is present.
    fn exists(&self) -> Result<bool>;
    /// Atomically creates `name` with `bytes`. An existing file is never
    /// replaced: an existing config is [`Error::RepositoryExists`]; every
    /// other kind is named by its content, so an existing file of the same
    /// size is taken as these bytes already stored, and one of another size
    /// is an error.
    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()>;
    /// Like [`Backend::create`], for bytes the caller gives away: a backend
    /// that would otherwise copy them (to hand them to an HTTP client, say)
    /// takes them as they are, and a retrying wrapper clones the handle, not
    /// the bytes. Large files (packs) are stored this way.
    fn create_owned(&self, kind: FileKind, name: &str, bytes: Bytes) -> Result<()> {
        self.create(kind, name, &bytes)
    }
    /// Atomically replaces file `name` of `kind` with `bytes` (or creates
    /// it): a reader sees the old bytes or the new, never a mix, and the new
    /// ones are durable on return as far as the storage can say (SPEC §2.5). Only a key rotation replaces files (SPEC
    /// §3.7), and only those whose names do not change with their sealing:
    /// the config and WAL files ([`replaceable`]).
    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()>;
    /// Keeps every file of the kinds that hold backups
    /// ([`FileKind::retained`]) created from now on from deletion for
    /// `days` days, by storage that enforces it (S3 Object Lock, SPEC §2.6);
    /// an error naming why where storage cannot.
    fn retain_for(&self, days: u32) -> Result<()> {
        let _ = days;
        Err(Error::StorageRefused(format!(
            "{} cannot keep files from deletion: that needs S3 storage with Object Lock",
            self.location()
        )))
    }
    /// Whether this storage can keep files from deletion at all.
    fn can_retain(&self) -> bool {
        false
    }
    /// Keeps the existing files `names` of `kind` from deletion for the
    /// retention [`Backend::retain_for`] set (never shortening a longer
    /// one): a backup's reused packs, which its snapshot needs as long as
    /// what it wrote. Nothing without a retention.
    fn keep(&self, kind: FileKind, names: &[String]) -> Result<()> {
        let _ = (kind, names);
        Ok(())
    }
    /// Until when storage keeps file `name` of `kind` from deletion, if it
    /// does (the time may be past). Asked only once [`Backend::retain_for`]
    /// has succeeded in this process; `None` before.
    fn retained_until(&self, kind: FileKind, name: &str) -> Result<Option<SystemTime>> {
        let _ = (kind, name);
        Ok(None)
    }
    /// Reads a whole file.
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// Reads `length` bytes at `offset`.
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>>;
    /// Like [`Backend::read_at`], into `out` (replacing what it held), so
    /// that a caller reading many ranges can use one buffer again: a backend
    /// that receives bytes from a network copies them there. After a
    /// failure, what `out` holds means nothing.
    fn read_at_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        *out = self.read_at(kind, name, offset, length)?;
        Ok(())
    }
    /// Size of a file in bytes.
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;
    /// When storage last modified a file (its creation, as files are never
    /// changed), by the storage's clock. Works on a file that cannot be read.
    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime>;
    /// Names of all files of a kind.
    fn list(&self, kind: FileKind) -> Result<Vec<String>>;
    /// Removes a file durably. A file that is not there is an error
    /// ([`crate::Error::Missing`]) naming it; the config cannot be removed.
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// How many requests bulk work (pack uploads, restore reads) should keep
    /// in flight at once: more hide the round trips of distant storage. The
    /// engine may use more than this where it pays on any storage.
    fn requests_in_flight(&self) -> usize {
        1
    }
    /// A hint that `length` bytes at `offset` of file `name` will be read
    /// soon: local storage starts reading them from disk meanwhile. It
    /// fails silently; by default it does nothing.
    fn will_read(&self, kind: FileKind, name: &str, offset: u64, length: u64) {
        let _ = (kind, name, offset, length);
    }
    /// A new file of `kind`, to be written piece by piece and named once
    /// complete, where storage takes it so without the writer holding it in
    /// memory (local files, SPEC §2.3); `None` where it does not, and the
    /// file is given to [`Backend::create`] whole. By default `None`.
    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>> {
        let _ = kind;
        Ok(None)
    }
}

/// A file being written into storage before it has its name (see
/// [`Backend::stage`]). Dropped without [`Staged::commit`], it leaves nothing
/// a reader sees.
pub trait Staged: Send {
    /// Appends `bytes` to the file.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Makes the file durable under `name`, as [`Backend::create`] would
    /// have stored its bytes: an existing file of that name is never replaced.
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
}

/// Refuses to replace a file of `kind` unless its name is not its content's
/// hash: the config and WAL files.
pub fn replaceable(kind: FileKind) -> Result<()> {
    match kind {
        FileKind::Config | FileKind::Wal => Ok(()),
        _ => Err(Error::Invalid(format!(
            "a {} is named by its content and is never replaced",
            kind.name()
        ))),
    }
}

/// Requests a remote backend keeps in flight unless told otherwise.
pub const DEFAULT_CONNECTIONS: usize = 8;

/// The error for a file of `size` bytes, larger than any of `kind` can be;
/// `what` names the file.
fn too_large(what: impl Display, kind: FileKind, size: u64) -> Error {
    Error::Invalid(format!(
        "{what} is {size} bytes, larger than any {} can be ({} bytes): it is damaged",
        kind.name(),
        kind.max_len()
    ))
}

/// The error for a create of `name` of `kind` with `given` bytes where
/// storage already holds `stored` bytes under that name: as names are
/// content hashes, the stored file is damaged.
fn stored_differs(kind: FileKind, name: &str, stored: u64, given: u64) -> Error {
    Error::Invalid(format!(
        "{} {name} is already in storage with {stored} bytes, not {given}: \
         it is damaged (`cairn check` reports what it affects)",
        kind.name()
    ))
}

/// A shared backend is a backend, so that its owner can still inspect it
/// (a wrapper that counts calls, for instance).
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn create_repository(&self) -> Result<()> {
        (**self).create_repository()
    }
    fn exists(&self) -> Result<bool> {
        (**self).exists()
    }
    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        (**self).create(kind, name, bytes)
    }
    fn create_owned(&self, kind: FileKind, name: &str, bytes: Bytes) -> Result<()> {
        (**self).create_owned(kind, name, bytes)
    }
    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        (**self).replace(kind, name, bytes)
    }
    fn retain_for(&self, days: u32) -> Result<()> {
        (**self).retain_for(days)
    }
    fn retained_until(&self, kind: FileKind, name: &str) -> Result<Option<SystemTime>> {
        (**self).retained_until(kind, name)
    }
    fn can_retain(&self) -> bool {
        (**self).can_retain()
    }
    fn keep(&self, kind: FileKind, names: &[String]) -> Result<()> {
        (**self).keep(kind, names)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        (**self).read(kind, name)
    }
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        (**self).read_at(kind, name, offset, length)
    }
    fn read_at_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        (**self).read_at_into(kind, name, offset, length, out)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        (**self).size(kind, name)
    }
    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        (**self).modified(kind, name)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        (**self).list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        (**self).remove(kind, name)
    }
    fn requests_in_flight(&self) -> usize {
        (**self).requests_in_flight()
    }
    fn will_read(&self, kind: FileKind, name: &str, offset: u64, length: u64) {
        (**self).will_read(kind, name, offset, length)
    }
    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>> {
        (**self).stage(kind)
    }
}

/// Stores a sealed file under the hash of its bytes; returns that hash.
pub(crate) fn store_file(backend: &dyn Backend, kind: FileKind, bytes: &[u8]) -> Result<[u8; 32]> {
    let id = cairn_format::id::storage_hash(bytes);
    backend.create(kind, &hex::encode(id), bytes)?;
    Ok(id)
}

/// The one name in `names` that starts with the hex digits `text` (in
/// either case): `Ok(None)` when none does or `text` is not hex, `Err(n)`
/// when `n` names do.
pub(crate) fn unique_prefix(
    names: Vec<String>,
    text: &str,
) -> std::result::Result<Option<String>, usize> {
    let wanted = text.to_ascii_lowercase();
    if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let mut matches: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(&wanted))
        .collect();
    match matches.len() {
        0 | 1 => Ok(matches.pop()),
        n => Err(n),
    }
}
