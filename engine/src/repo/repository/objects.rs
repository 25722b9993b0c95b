//! Reading and writing the objects of a repository: blobs (from the
//! index, the cache or the tree packs held in memory), packs and their
//! headers, trees and snapshots.

use super::*;

impl Repository {
    /// Removes a snapshot file.
    ///
    /// A snapshot under a compliance hold is refused ([`crate::hold`]); one
    /// that cannot be read holds nothing and is removed.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.full_key("remove snapshots")?;
        if let Ok(snapshot) = self.load_snapshot(id) {
            crate::hold::check_removable(id, &snapshot.tags, Timestamp::now())?;
        }
        self.remove_file(FileKind::Snapshot, &id.to_hex())
    }

    /// Writes a snapshot file; every blob it uses must be in a durable index file.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        // A larger one could never be read back.
        let size = cairn_format::codec::encode(snapshot).len();
        if size > cairn_format::snapshot::MAX_SNAPSHOT_LEN {
            return Err(Error::Invalid(format!(
                "the snapshot would be {size} bytes, more than a snapshot can hold ({} bytes)",
                cairn_format::snapshot::MAX_SNAPSHOT_LEN
            )));
        }
        Ok(SnapshotId(self.store_file(
            FileKind::Snapshot,
            &snapshot.seal(&self.keys),
        )?))
    }

    /// The ID `plaintext` has (or would have) as a blob in this repository.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        self.keys.blob_id(plaintext)
    }

    /// A bundled file's content, cut from the plaintext of its bundle blob
    /// `bundle`: it must lie inside the bundle and hash to the file's content ID.
    pub fn bundled_content<'b>(
        &self,
        bundle: &'b [u8],
        offset: u64,
        size: u64,
        id: &BlobId,
    ) -> Result<&'b [u8]> {
        let content = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(start, len)| bundle.get(start..start.checked_add(len)?))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "a bundled file of {size} bytes at offset {offset} lies outside its bundle of {} bytes",
                    bundle.len()
                ))
            })?;
        if self.blob_id(content) != *id {
            return Err(Error::Invalid(format!(
                "a bundled file's content does not match its ID {id}"
            )));
        }
        Ok(content)
    }

    /// Reads, authenticates and decrypts one blob.
    pub fn read_blob(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<u8>> {
        let what = kind.object_type().name();
        let loc = self
            .locate(kind, id)
            .ok_or_else(|| Error::Missing(format!("{what} {id}")))?;
        if kind == BlobKind::Tree && self.tree_packs.contains(&loc.pack) {
            match self.cache.as_deref() {
                Some(cache) => return self.read_cached_tree(cache, id, &loc),
                None if self.backend.requests_in_flight() > 1 => {
                    return self.read_held_tree(id, &loc)
                }
                None => {}
            }
        }
        let sealed = self.backend.read_at(
            FileKind::Pack,
            &loc.pack.to_hex(),
            loc.offset,
            u64::from(loc.length),
        )?;
        open_blob(&self.keys, kind, id, &sealed, loc.raw_length)
            .map_err(|e| Error::format(format!("{what} {id} in pack {}", loc.pack), e))
    }

    /// Reads the tree `id` at `loc`, a pack of trees only, from the cache;
    /// when the cache lacks the pack, or its copy fails authentication, the
    /// whole pack is fetched from storage into the cache first.
    fn read_cached_tree(&self, cache: &Cache, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let name = loc.pack.to_hex();
        let cached = || {
            let sealed = cache.read_at(FileKind::Pack, &name, loc.offset, loc.length)?;
            open_blob(&self.keys, BlobKind::Tree, id, &sealed, loc.raw_length).ok()
        };
        if let Some(tree) = cached() {
            return Ok(tree);
        }
        let _one_fetch = cache.fetching();
        if let Some(tree) = cached() {
            return Ok(tree);
        }
        let pack = read_verified(&*self.backend, FileKind::Pack, &name)?;
        let tree = self.open_blob_in(&loc.pack, &pack, &tree_entry(id, loc))?;
        cache.store(FileKind::Pack, &name, &pack);
        Ok(tree)
    }

    /// Reads the tree `id` at `loc`, a pack of trees only, from that pack
    /// held in memory; when it is not held, the whole pack is fetched,
    /// checked against its name and held in place of the oldest.
    fn read_held_tree(&self, id: &BlobId, loc: &BlobLocation) -> Result<Vec<u8>> {
        let held = self.held_tree_packs.lock().expect("not poisoned");
        let found = held.iter().find(|(p, _)| *p == loc.pack);
        let pack = match found.map(|(_, bytes)| bytes.clone()) {
            Some(bytes) => bytes,
            None => {
                // Not held across the read: other walks go on meanwhile.
                drop(held);
                let name = loc.pack.to_hex();
                let bytes = Arc::new(read_verified(&*self.backend, FileKind::Pack, &name)?);
                let mut held = self.held_tree_packs.lock().expect("not poisoned");
                if held.len() == HELD_TREE_PACKS {
                    held.pop_front();
                }
                held.push_back((loc.pack, bytes.clone()));
                bytes
            }
        };
        self.open_blob_in(&loc.pack, &pack, &tree_entry(id, loc))
    }

    /// Reads and authenticates a pack's header alone; returns it with the
    /// number of bytes read.
    pub fn read_pack_header(&self, id: &PackId) -> Result<(PackHeader, u64)> {
        let name = id.to_hex();
        let context = || format!("pack {id}");
        let size = self.backend.size(FileKind::Pack, &name)?;
        let trailer_at = size.saturating_sub(TRAILER_LEN as u64);
        let trailer = self
            .backend
            .read_at(FileKind::Pack, &name, trailer_at, size - trailer_at)?;
        let (start, len) =
            PackHeader::locate(&trailer, size).map_err(|e| Error::format(context(), e))?;
        let sealed = self
            .backend
            .read_at(FileKind::Pack, &name, start, u64::from(len))?;
        let header = PackHeader::open(&sealed, start, &self.keys)
            .map_err(|e| Error::format(context(), e))?;
        Ok((header, trailer.len() as u64 + u64::from(len)))
    }

    /// Reads a whole pack, checks it hashes to its name, authenticates its
    /// header and every blob in it; returns the header.
    pub fn verify_pack(&self, id: &PackId) -> Result<PackHeader> {
        let bytes = self.read_verified(FileKind::Pack, &id.to_hex())?;
        let header = self.pack_header_of(id, &bytes)?;
        for e in &header.blobs {
            self.open_blob_in(id, &bytes, e)?;
        }
        Ok(header)
    }

    /// Locates and authenticates the header of pack `id`, whose bytes are
    /// all in `bytes`.
    pub fn pack_header_of(&self, id: &PackId, bytes: &[u8]) -> Result<PackHeader> {
        let context = || format!("pack {id}");
        let trailer = &bytes[bytes.len().saturating_sub(TRAILER_LEN)..];
        let (start, len) = PackHeader::locate(trailer, bytes.len() as u64)
            .map_err(|e| Error::format(context(), e))?;
        let sealed = &bytes[start as usize..start as usize + len as usize];
        PackHeader::open(sealed, start, &self.keys).map_err(|e| Error::format(context(), e))
    }

    /// Authenticates and decrypts the blob `e` of pack `id`, whose bytes are
    /// all in `bytes`.
    pub fn open_blob_in(&self, id: &PackId, bytes: &[u8], e: &PackEntry) -> Result<Vec<u8>> {
        let what = || format!("{} {} in pack {id}", e.kind.object_type().name(), e.id);
        let sealed = usize::try_from(e.offset)
            .ok()
            .and_then(|start| bytes.get(start..start.checked_add(e.length as usize)?))
            .ok_or_else(|| Error::Invalid(format!("{} lies outside the pack", what())))?;
        open_blob(&self.keys, e.kind, &e.id, sealed, e.raw_length)
            .map_err(|err| Error::format(what(), err))
    }

    /// Reads and decodes a tree blob.
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        if let Some(tree) = self.parent_cache.as_ref().and_then(|c| c.tree(id)) {
            return Ok(tree);
        }
        let bytes = self.read_blob(BlobKind::Tree, id)?;
        Tree::decode(&bytes).map_err(|e| Error::format(format!("tree {id}"), e))
    }

    /// Reads one snapshot file.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let bytes = self.read_verified(FileKind::Snapshot, &id.to_hex())?;
        Snapshot::open(&bytes, &self.keys).map_err(|e| Error::format(format!("snapshot {id}"), e))
    }

    /// Every snapshot, oldest first; fails on the first one that cannot be read.
    pub fn snapshots(&self) -> Result<SnapshotList> {
        let (snapshots, mut errors) = self.readable_snapshots()?;
        match errors.is_empty() {
            true => Ok(snapshots),
            false => Err(errors.swap_remove(0)),
        }
    }

    /// Every snapshot that can be read, oldest first, and the errors for those
    /// that cannot.
    pub fn readable_snapshots(&self) -> Result<(SnapshotList, Vec<Error>)> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for name in self.list(FileKind::Snapshot)? {
            let id = SnapshotId::from_hex(&name).expect("backends list only hex IDs");
            match self.load_snapshot(&id) {
                Ok(s) => out.push((id, s)),
                Err(e) => errors.push(e),
            }
        }
        out.sort_by_key(|(id, s)| (s.time, *id));
        Ok((out, errors))
    }

    /// Finds a snapshot by full ID, unique ID prefix, or `latest`.
    pub fn find_snapshot(&self, name: &str) -> Result<(SnapshotId, Snapshot)> {
        if name == "latest" {
            return self
                .snapshots()?
                .pop()
                .ok_or_else(|| Error::SnapshotNotFound(name.into()));
        }
        match unique_prefix(self.backend.list(FileKind::Snapshot)?, name) {
            Ok(Some(one)) => {
                let id = SnapshotId::from_hex(&one).expect("backends list only hex IDs");
                Ok((id, self.load_snapshot(&id)?))
            }
            Ok(None) => Err(Error::SnapshotNotFound(name.into())),
            Err(many) => Err(Error::AmbiguousSnapshot(name.into(), many)),
        }
    }
}

/// The entry of the tree `id` at `loc`, as its pack's header would list it.
fn tree_entry(id: &BlobId, loc: &BlobLocation) -> PackEntry {
    PackEntry {
        kind: BlobKind::Tree,
        id: *id,
        offset: loc.offset,
        length: loc.length,
        raw_length: loc.raw_length,
    }
}
