//! What a put-only key keeps on its own machine so that its next backup
//! compares against the last one, as any backup does against its parent
//! snapshot, without reading a snapshot or tree it cannot open (SPEC.md
//! §3.6).
//!
//! For each host name and set of paths, a folder holds the newest snapshot
//! and every tree of it, each sealed under a key derived from the put-only
//! key file's own cache secret. Nothing here is trusted more than a parent
//! read from the repository: a backup reuses a parent's blobs only when
//! the index lists every one (SPEC.md §11.2), and anything missing or
//! damaged only costs reading files again.

use cairn_format::codec;
use cairn_format::crypto::{aead_open, aead_seal};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::Tree;
use cairn_format::{BlobId, SnapshotId};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The local record of a put-only key's backups.
pub struct ParentCache {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
    /// The folder of the backup under way, and the trees it made.
    current: Mutex<Option<(PathBuf, HashSet<BlobId>)>>,
}

impl ParentCache {
    /// A cache in `dir` sealed under a key derived from `secret` (the put-only
    /// key file's cache secret).
    pub fn new(dir: impl Into<PathBuf>, secret: &[u8; 32]) -> Self {
        ParentCache {
            dir: dir.into(),
            key: Zeroizing::new(blake3::derive_key("cairn put-only parent cache v1", secret)),
            current: Mutex::new(None),
        }
    }

    /// The folder of backups of `paths` under `hostname`: named by a hash
    /// keyed with this key's secret, so that two put-only keys keep apart.
    fn folder(&self, hostname: &str, paths: &[Vec<u8>]) -> PathBuf {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(hostname.len() as u64).to_le_bytes())
            .update(hostname.as_bytes());
        for p in paths {
            h.update(&(p.len() as u64).to_le_bytes()).update(p);
        }
        self.dir.join(&h.finalize().to_hex()[..32])
    }

    /// The newest snapshot of `paths` under `hostname` that this key wrote,
    /// if it is remembered; a backup of them starts remembering its trees.
    pub fn start(&self, hostname: &str, paths: &[Vec<u8>]) -> Option<(SnapshotId, Snapshot)> {
        let folder = self.folder(hostname, paths);
        *self.current.lock().expect("not poisoned") = Some((folder.clone(), HashSet::new()));
        let (id, snapshot) = self.snapshot_in(&folder)?;
        (snapshot.hostname == hostname && snapshot.paths == paths).then_some((id, snapshot))
    }

    /// The newest snapshot of each set of paths this key backed up, as far
    /// as it remembers: what it knows of its own backups without reading
    /// the repository (for `run`'s question whether one is due).
    pub fn remembered(&self) -> Vec<(SnapshotId, Snapshot)> {
        let Ok(folders) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<_> = folders
            .flatten()
            .filter_map(|f| self.snapshot_in(&f.path()))
            .collect();
        found.sort_by_key(|(_, s)| s.time);
        found
    }

    fn snapshot_in(&self, folder: &Path) -> Option<(SnapshotId, Snapshot)> {
        let bytes = self.read(&folder.join("snapshot"), b"snapshot")?;
        let (id, rest) = bytes.split_first_chunk::<32>()?;
        Some((SnapshotId(*id), codec::decode(rest).ok()?))
    }

    /// A tree remembered from an earlier backup.
    pub fn tree(&self, id: &BlobId) -> Option<Tree> {
        let guard = self.current.lock().expect("not poisoned");
        let (folder, _) = guard.as_ref()?;
        let bytes = self.read(&folder.join("trees").join(id.to_hex()), &id.0)?;
        Tree::decode(&bytes).ok()
    }

    /// Remembers a tree of the backup under way.
    pub fn keep_tree(&self, id: &BlobId, encoded: &[u8]) {
        let mut guard = self.current.lock().expect("not poisoned");
        let Some((folder, kept)) = guard.as_mut() else {
            return;
        };
        if kept.insert(*id) {
            let path = folder.join("trees").join(id.to_hex());
            if !path.exists() {
                let _ = self.write(&path, &id.0, encoded);
            }
        }
    }

    /// Records the snapshot the backup under way saved, and forgets the
    /// trees of earlier backups that it does not use.
    pub fn finish(&self, id: &SnapshotId, snapshot: &Snapshot) -> io::Result<()> {
        let Some((folder, kept)) = self.current.lock().expect("not poisoned").take() else {
            return Ok(());
        };
        let mut record = id.0.to_vec();
        record.extend_from_slice(&codec::encode(snapshot));
        self.write(&folder.join("snapshot"), b"snapshot", &record)?;
        for entry in std::fs::read_dir(folder.join("trees"))?.flatten() {
            let name = entry.file_name();
            let used = name
                .to_str()
                .and_then(BlobId::from_hex)
                .is_some_and(|id| kept.contains(&id));
            if !used {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Seals `plain` with `binding` in its associated data, through a
    /// temporary file renamed into place (readable by its owner only).
    fn write(&self, path: &Path, binding: &[u8], plain: &[u8]) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = path.parent().expect("cache files are in a folder");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}",
            hex::encode(cairn_format::crypto::random_array::<8>())
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&aead_seal(&self.key, binding, plain))?;
        drop(f);
        std::fs::rename(&tmp, path)
    }

    fn read(&self, path: &Path, binding: &[u8]) -> Option<Vec<u8>> {
        let sealed = std::fs::read(path).ok()?;
        aead_open(&self.key, binding, &sealed, "parent cache").ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_opens_under_its_own_key_only_and_keeps_the_last_backups_trees() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ParentCache::new(dir.path(), &[1; 32]);
        let paths = vec![b"/data".to_vec()];
        assert!(cache.start("host", &paths).is_none());
        let (a, b) = (Tree::new(vec![]), BlobId([9; 32]));
        cache.keep_tree(&BlobId([1; 32]), &a.encode());
        cache.keep_tree(&b, &a.encode());
        let snapshot = Snapshot {
            version: 1,
            time: cairn_format::Timestamp { secs: 1, nanos: 0 },
            hostname: "host".into(),
            username: "user".into(),
            uid: 0,
            gid: 0,
            paths: paths.clone(),
            tags: vec![],
            tree: b,
            parent: None,
            summary: Default::default(),
            skipped: vec![],
            program: "test".into(),
        };
        cache.finish(&SnapshotId([5; 32]), &snapshot).unwrap();

        let (id, found) = cache.start("host", &paths).unwrap();
        assert_eq!((id, found), (SnapshotId([5; 32]), snapshot.clone()));
        assert!(cache.tree(&b).is_some());
        assert!(cache.start("other host", &paths).is_none());
        // A second backup that keeps one tree forgets the other.
        cache.start("host", &paths);
        cache.keep_tree(&b, &a.encode());
        cache.finish(&SnapshotId([6; 32]), &snapshot).unwrap();
        cache.start("host", &paths);
        assert!(cache.tree(&b).is_some());
        assert!(cache.tree(&BlobId([1; 32])).is_none());

        let stranger = ParentCache::new(dir.path(), &[2; 32]);
        assert!(stranger.start("host", &paths).is_none());
        assert!(stranger.tree(&b).is_none());
    }
}
