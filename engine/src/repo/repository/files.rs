//! Stored files through the metadata cache: verified reads, stores,
//! removals and listings.

use super::{Readable, Repository};
use crate::backend::{store_file, Backend, FileKind};
use crate::cache::Cache;
use crate::error::{Error, Result};
use cairn_format::crypto::MasterKeys;
use cairn_format::id::storage_hash;
use cairn_format::{FormatError, Timestamp};

impl Repository {
    /// Reads a content-addressed file and checks it hashes to its name;
    /// an index file, snapshot, journal entry or audit record comes from the cache when
    /// it holds it.
    pub fn read_verified(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let cache = self.metadata_cache(kind);
        if let Some(bytes) = cache.and_then(|c| c.read(kind, name)) {
            return Ok(bytes);
        }
        let bytes = read_verified(&*self.backend, kind, name)?;
        if let Some(cache) = cache {
            cache.store(kind, name, &bytes);
        }
        Ok(bytes)
    }

    /// Stores a sealed file under the hash of its bytes; returns that hash.
    pub(crate) fn store_file(&self, kind: FileKind, bytes: &[u8]) -> Result<[u8; 32]> {
        let id = store_file(&*self.backend, kind, bytes)?;
        if let Some(cache) = self.metadata_cache(kind) {
            cache.store(kind, &hex::encode(id), bytes);
        }
        Ok(id)
    }

    /// The cache, when one is used and `kind` is index files, snapshots,
    /// journal entries or audit records.
    fn metadata_cache(&self, kind: FileKind) -> Option<&Cache> {
        let kept = matches!(
            kind,
            FileKind::Index | FileKind::Snapshot | FileKind::Journal | FileKind::Audit
        );
        self.cache.as_deref().filter(|_| kept)
    }

    /// Removes a file from storage and from the cache.
    pub(crate) fn remove_file(&self, kind: FileKind, name: &str) -> Result<()> {
        self.backend.remove(kind, name)?;
        if let Some(cache) = self.metadata_cache(kind) {
            cache.remove(kind, name);
        }
        Ok(())
    }

    /// Every file of `kind` that can be read, authenticated and decoded by
    /// `open`, with the hash that names it, ordered by `time` and then by
    /// hash; and the errors for those that cannot.
    pub(crate) fn read_all<T>(
        &self,
        kind: FileKind,
        open: impl Fn(&[u8], &MasterKeys) -> std::result::Result<T, FormatError>,
        time: impl Fn(&T) -> Timestamp,
    ) -> Result<Readable<T>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for name in self.list(kind)? {
            let read = self.read_verified(kind, &name).and_then(|bytes| {
                open(&bytes, &self.keys)
                    .map_err(|e| Error::format(format!("{} {name}", kind.name()), e))
            });
            match read {
                Ok(t) => {
                    let mut id = [0u8; 32];
                    hex::decode_to_slice(&name, &mut id).expect("backends list only hex IDs");
                    out.push((id, t));
                }
                Err(e) => errors.push(e),
            }
        }
        out.sort_by_key(|(id, t)| (time(t), *id));
        Ok((out, errors))
    }

    /// The names of the files of `kind`; the cache forgets the files of
    /// that kind storage no longer has.
    pub(crate) fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        let listed = self.backend.list(kind)?;
        if let Some(cache) = self.metadata_cache(kind) {
            cache.retain(kind, listed.iter().map(String::as_str));
        }
        Ok(listed)
    }
}

/// Reads a content-addressed file from `backend` and checks it hashes to its name.
pub(super) fn read_verified(backend: &dyn Backend, kind: FileKind, name: &str) -> Result<Vec<u8>> {
    let bytes = backend.read(kind, name)?;
    let actual = hex::encode(storage_hash(&bytes));
    if actual != name {
        return Err(Error::format(
            format!("{} {name}", kind.name()),
            FormatError::HashMismatch {
                what: kind.name(),
                expected: name.into(),
                actual,
            },
        ));
    }
    Ok(bytes)
}
