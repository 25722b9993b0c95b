//! The loaded index kept on the local disk, sorted and ready to use, so that
//! the next open reads it in one go instead of decrypting, decoding and
//! sorting every index file again (SPEC.md §10.2).
//!
//! A table file records which index files it was built from. It is used
//! only when every one of them is still current; index files written since
//! are read and added beside it, and once those are many the table is
//! written again. The file is encrypted and then authenticated under keys
//! derived from a secret of the key file that opened the repository: its
//! counts, which size what is read, by a tag of their own before anything
//! is allocated, and the whole file before anything in it is used. One
//! that fails is deleted and the index built from its files. Like the
//! metadata cache, everything here is best effort: a table that cannot be
//! written costs only the time to build the index.

use crate::index::Index;
use cairn_format::crypto::MasterKeys;
use cairn_format::{IndexId, PackId};
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::XChaCha20;
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The first bytes of a table file: its name and layout version.
const MAGIC: &[u8; 16] = b"cairn idx table\x01";
const NONCE_LEN: usize = 24;
/// The four counts that open the encrypted part.
const COUNTS_LEN: usize = 32;
/// Bytes of the tag of the file's opening (magic, nonce, counts).
const OPENING_TAG_LEN: usize = 32;
/// The table's buckets, one per value of a blob ID's first two bytes.
const BUCKETS: usize = 1 << 16;
/// Bytes of the authenticator at the end of the file.
const TAG_LEN: usize = 32;
/// Entries are decrypted in parallel in runs of this many bytes.
const RUN: usize = 4 << 20;

/// The index table file of one repository.
pub(crate) struct IndexTable {
    path: PathBuf,
    cipher_key: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; 32]>,
    /// Indexes of fewer blobs are built quickly enough not to keep a table.
    min_blobs: usize,
}

/// A table read back: the index, the index files it covers and the packs
/// among theirs that hold only trees.
pub(crate) struct Loaded {
    pub index: Index,
    pub files: HashSet<IndexId>,
    pub tree_packs: Vec<PackId>,
}

impl IndexTable {
    /// The table of the repository `keys` opened, in its folder under
    /// `base`; none is written for an index of fewer than `min_blobs` blobs.
    pub(crate) fn new(base: &Path, keys: &MasterKeys, min_blobs: usize) -> IndexTable {
        // The opening key file's own local secret, or in a repository
        // without key epochs the data key. (A put-only key never loads the
        // index, so never reads or writes a table.)
        let secret = match &keys.keyring {
            Some(keyring) => keyring.cache_key(),
            None => &keys.data_key,
        };
        IndexTable {
            path: base.join(hex::encode(keys.repo_id.0)).join("index.table"),
            cipher_key: Zeroizing::new(blake3::derive_key(
                "cairn 2026-12-07 local index table cipher v1",
                secret,
            )),
            mac_key: Zeroizing::new(blake3::derive_key(
                "cairn 2026-12-07 local index table mac v1",
                secret,
            )),
            min_blobs,
        }
    }

    /// The stored table, if there is one, it authenticates, and every
    /// index file it covers is in `current`. A table that fails is deleted.
    pub(crate) fn load(&self, current: &HashSet<IndexId>) -> Option<Loaded> {
        // Not through a link, and not waiting on a pipe put in its place.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)
            .ok()?;
        let kind = file.metadata().ok()?.file_type();
        if !kind.is_file() || kind.is_fifo() {
            return None;
        }
        let loaded = self.read(&mut file).filter(|l| l.files.is_subset(current));
        if loaded.is_none() {
            let _ = std::fs::remove_file(&self.path);
        }
        loaded
    }

    fn cipher(&self, nonce: &[u8; NONCE_LEN], at: usize) -> XChaCha20 {
        let mut cipher = XChaCha20::new(&(*self.cipher_key).into(), nonce.into());
        cipher.seek(at as u64);
        cipher
    }

    /// The tag of a file's opening: magic, nonce and encrypted counts.
    fn opening_tag(&self, opening: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.mac_key, opening)
    }

    fn read(&self, file: &mut File) -> Option<Loaded> {
        let mut opening = [0u8; MAGIC.len() + NONCE_LEN + COUNTS_LEN + OPENING_TAG_LEN];
        file.read_exact(&mut opening).ok()?;
        if &opening[..MAGIC.len()] != MAGIC {
            return None;
        }
        // The counts size what is read: they must be authentic first.
        let (tagged, tag) = opening.split_at(opening.len() - OPENING_TAG_LEN);
        if self.opening_tag(tagged) != blake3::Hash::from_bytes(tag.try_into().ok()?) {
            return None;
        }
        let nonce: [u8; NONCE_LEN] = opening[MAGIC.len()..][..NONCE_LEN].try_into().ok()?;
        let mut counts = tagged[MAGIC.len() + NONCE_LEN..].to_vec();
        self.cipher(&nonce, 0).apply_keystream(&mut counts);
        let count = |i: usize| u64::from_le_bytes(counts[8 * i..][..8].try_into().expect("8"));
        let (files, packs, tree_packs, entries) = (count(0), count(1), count(2), count(3));
        let head_len = files
            .checked_add(packs)?
            .checked_add(tree_packs)?
            .checked_mul(32)?
            .checked_add(4 * (BUCKETS as u64 + 1))?;
        let entries_len = entries.checked_mul(Index::ENTRY_LEN as u64)?;
        let expected = (opening.len() as u64 + TAG_LEN as u64)
            .checked_add(head_len)?
            .checked_add(entries_len)?;
        if file.metadata().ok()?.len() != expected {
            return None;
        }
        let mut head = vec![0u8; usize::try_from(head_len).ok()?];
        let mut body = vec![0u8; usize::try_from(entries_len).ok()?];
        let mut tag = [0u8; TAG_LEN];
        file.read_exact(&mut head).ok()?;
        file.read_exact(&mut body).ok()?;
        file.read_exact(&mut tag).ok()?;
        let mut mac = blake3::Hasher::new_keyed(&self.mac_key);
        mac.update(&opening);
        mac.update(&head);
        mac.update_rayon(&body);
        if mac.finalize() != blake3::Hash::from_bytes(tag) {
            return None;
        }
        self.cipher(&nonce, COUNTS_LEN).apply_keystream(&mut head);
        let body_at = COUNTS_LEN + head.len();
        body.par_chunks_mut(RUN).enumerate().for_each(|(i, run)| {
            self.cipher(&nonce, body_at + i * RUN).apply_keystream(run);
        });
        let mut ids = head
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).expect("32"));
        let files = ids.by_ref().take(files as usize).map(IndexId).collect();
        let packs = ids.by_ref().take(packs as usize).map(PackId).collect();
        let tree_packs = ids.take(tree_packs as usize).map(PackId).collect();
        let starts_at = head.len() - 4 * (BUCKETS + 1);
        let starts = head[starts_at..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Some(Loaded {
            index: Index::from_table(packs, starts, body)?,
            files,
            tree_packs,
        })
    }

    /// Writes `index`, built from exactly the index files `files`, whose
    /// packs holding only trees are `tree_packs`, to the table file
    /// (through a temporary name and a rename). Failures are ignored.
    pub(crate) fn store(&self, index: &Index, files: &[IndexId], tree_packs: &HashSet<PackId>) {
        if index.len() < self.min_blobs {
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        // A blob that does not fit the table's compact form leaves no table.
        match index.table_parts() {
            Some((packs, starts, entries)) => {
                let _ = self.write(files, packs, tree_packs, starts, entries);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    fn write(
        &self,
        files: &[IndexId],
        packs: &[PackId],
        tree_packs: &HashSet<PackId>,
        starts: &[u32],
        entries: &[u8],
    ) -> std::io::Result<()> {
        let dir = self.path.parent().expect("a file in a folder");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(std::io::Error::other)?;
        // A new name each time (the nonce's first bytes), made only if absent.
        let temp = dir.join(format!("index.table.{}.tmp", hex::encode(&nonce[..8])));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut mac = blake3::Hasher::new_keyed(&self.mac_key);
        let written = (|| {
            let counts = [
                files.len(),
                packs.len(),
                tree_packs.len(),
                entries.len() / Index::ENTRY_LEN,
            ];
            let mut opening: Vec<u8> = [&MAGIC[..], &nonce].concat();
            let mut sealed_counts: Vec<u8> = counts
                .iter()
                .flat_map(|&n| (n as u64).to_le_bytes())
                .collect();
            self.cipher(&nonce, 0).apply_keystream(&mut sealed_counts);
            opening.extend_from_slice(&sealed_counts);
            let tag = self.opening_tag(&opening);
            opening.extend_from_slice(tag.as_bytes());
            out.write_all(&opening)?;
            mac.update(&opening);
            let mut sealing = Sealing {
                out: &mut out,
                mac: &mut mac,
                cipher: self.cipher(&nonce, COUNTS_LEN),
                buf: Vec::new(),
            };
            let mut sorted_files = files.to_vec();
            sorted_files.sort_unstable();
            for id in &sorted_files {
                sealing.put(&id.0)?;
            }
            for id in packs.iter().chain(tree_packs) {
                sealing.put(&id.0)?;
            }
            for s in starts {
                sealing.put(&s.to_le_bytes())?;
            }
            for run in entries.chunks(RUN) {
                sealing.put(run)?;
            }
            out.write_all(mac.finalize().as_bytes())?;
            out.flush()
        })();
        // No fsync: a torn table fails its check and is built again.
        match written.and_then(|()| std::fs::rename(&temp, &self.path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }
}

/// Encrypts what it is given, hashes the ciphertext and writes it.
struct Sealing<'a, W> {
    out: &'a mut W,
    mac: &'a mut blake3::Hasher,
    cipher: XChaCha20,
    buf: Vec<u8>,
}

impl<W: Write> Sealing<'_, W> {
    fn put(&mut self, plain: &[u8]) -> std::io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(plain);
        self.cipher.apply_keystream(&mut self.buf);
        self.mac.update(&self.buf);
        self.out.write_all(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, FileKind, LocalBackend};
    use crate::index::tests::id;
    use crate::{InitOptions, Repository};
    use cairn_format::index::{IndexFile, IndexPack};
    use cairn_format::key::KdfParams;
    use cairn_format::pack::PackEntry;
    use cairn_format::{BlobId, BlobKind};

    /// `blobs` blobs from number `first`, in packs of 10, every 7th pack
    /// holding trees only.
    fn file(first: u64, blobs: u64) -> IndexFile {
        let packs = (first..first + blobs)
            .step_by(10)
            .map(|start| IndexPack {
                id: PackId(id(u64::MAX - start).0),
                blobs: (start..(start + 10).min(first + blobs))
                    .map(|n| PackEntry {
                        kind: match (start / 10) % 7 {
                            0 => BlobKind::Tree,
                            _ => BlobKind::Data,
                        },
                        id: id(n),
                        offset: (n - start) * 1000,
                        length: 900 + (n % 50) as u32,
                        raw_length: 2000 + n as u32,
                    })
                    .collect(),
            })
            .collect();
        IndexFile { version: 1, packs }
    }

    fn kind(n: u64) -> BlobKind {
        match (n / 10) % 7 {
            0 => BlobKind::Tree,
            _ => BlobKind::Data,
        }
    }

    fn tree_packs(files: &[&IndexFile]) -> HashSet<PackId> {
        files
            .iter()
            .flat_map(|f| &f.packs)
            .filter(|p| p.blobs.iter().all(|b| b.kind == BlobKind::Tree))
            .map(|p| p.id)
            .collect()
    }

    #[test]
    fn a_stored_table_reads_back_the_same_index_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // With key epochs: the key file's own secret keys the table.
        let keys = MasterKeys::generate_keyed();
        let table = IndexTable::new(dir.path(), &keys, 0);
        let (a, b) = (file(0, 3000), file(3000, 1234));
        let index = Index::from_files([a.clone(), b.clone()]);
        let names = [IndexId([1; 32]), IndexId([2; 32])];
        let trees = tree_packs(&[&a, &b]);
        table.store(&index, &names, &trees);

        let current: HashSet<IndexId> = names.iter().copied().chain([IndexId([3; 32])]).collect();
        let loaded = table.load(&current).expect("the table reads back");
        assert_eq!(loaded.files, names.iter().copied().collect());
        assert_eq!(
            loaded.tree_packs.iter().copied().collect::<HashSet<_>>(),
            trees
        );
        assert_eq!(loaded.index.len(), 4234);
        for n in 0..4234 {
            assert_eq!(
                loaded.index.get(kind(n), &id(n)),
                index.get(kind(n), &id(n)),
                "blob {n}"
            );
            assert!(loaded.index.get(kind(n), &id(n)).is_some());
        }
        assert!(loaded.index.get(BlobKind::Data, &BlobId([9; 32])).is_none());

        // Not when one of its files is no longer current: then it is gone.
        assert!(table.load(&HashSet::from([names[0]])).is_none());
        assert!(!table.path.exists());
        assert!(table.load(&current).is_none());
    }

    #[test]
    fn a_damaged_truncated_or_foreign_table_is_refused_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MasterKeys::generate();
        let table = IndexTable::new(dir.path(), &keys, 0);
        let index = Index::from_files([file(0, 500)]);
        let names = [IndexId([1; 32])];
        let current = HashSet::from(names);
        table.store(&index, &names, &HashSet::new());
        let good = std::fs::read(&table.path).unwrap();
        let entries_at = good.len() - TAG_LEN - 500 * Index::ENTRY_LEN;
        // A byte of each part: magic, nonce, counts, file IDs, starts, entries, tag.
        for at in [
            3,
            20,
            45,
            80,
            entries_at - 10,
            entries_at + 7,
            good.len() - 1,
        ] {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&table.path, &bad).unwrap();
            assert!(table.load(&current).is_none(), "byte {at} flipped");
            assert!(!table.path.exists(), "byte {at} flipped: not deleted");
        }
        for len in [0, 10, good.len() - TAG_LEN, good.len() - 1] {
            std::fs::write(&table.path, &good[..len]).unwrap();
            assert!(table.load(&current).is_none(), "cut at {len}");
            assert!(!table.path.exists(), "cut at {len}: not deleted");
        }
        // Counts changed and the file grown to match: refused on the
        // opening's tag, before the counts size anything.
        let mut grown = good.clone();
        let counts_at = MAGIC.len() + NONCE_LEN;
        grown[counts_at + 24 + 4] ^= 1; // the entry count, plus 2^32
        let file = std::fs::File::create(&table.path).unwrap();
        use std::io::Write as _;
        (&file).write_all(&grown).unwrap();
        file.set_len(grown.len() as u64 + ((Index::ENTRY_LEN as u64) << 32))
            .unwrap();
        assert!(table.load(&current).is_none(), "grown counts");
        // Not a regular file: refused, not waited on.
        std::fs::remove_file(&table.path).ok();
        let c = std::ffi::CString::new(table.path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path; mkfifo only reads it.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(table.load(&current).is_none(), "a pipe");
        std::fs::remove_file(&table.path).ok();
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&table.path, &longer).unwrap();
        assert!(table.load(&current).is_none(), "a byte added");
        // Another repository's (or key's) secrets do not open it.
        std::fs::write(&table.path, &good).unwrap();
        let mut other = MasterKeys::generate();
        other.repo_id = keys.repo_id;
        assert!(IndexTable::new(dir.path(), &other, 0)
            .load(&current)
            .is_none());
        // And the untouched file still reads.
        std::fs::write(&table.path, &good).unwrap();
        assert!(table.load(&current).is_some());
    }

    #[test]
    fn an_open_uses_the_table_reads_new_files_beside_it_and_rebuilds_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("repo");
        let tables = dir.path().join("tables");
        let opts = InitOptions {
            kdf: KdfParams::argon2id(64, 1, 1),
            ..Default::default()
        };
        let repo = Repository::init(LocalBackend::new(&storage), b"pw", &opts).unwrap();
        let first = repo.write_index_file(&file(0, 2000)).unwrap();
        drop(repo);
        let open = || {
            Repository::open_hinted(LocalBackend::new(&storage), b"pw", None, |r| {
                r.keep_index_table(&tables, 0)
            })
        };
        let repo = open().unwrap();
        assert_eq!(repo.index().len(), 2000);
        let folder = std::fs::read_dir(&tables).unwrap().next().unwrap().unwrap();
        let table_path = folder.path().join("index.table");
        let stored = std::fs::read(&table_path).expect("the open stored a table");

        // The next open reads the table, not the index file: it opens
        // even with the file's bytes damaged on storage.
        let backend = LocalBackend::new(&storage);
        let name = first.to_hex();
        let sealed = backend.read(FileKind::Index, &name).unwrap();
        let mut damaged = sealed.to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let index_path = storage.join("index").join(&name);
        std::fs::write(&index_path, &damaged).unwrap();
        let repo = open().expect("opened from the table");
        assert!(repo.index().contains(kind(5), &id(5)));
        std::fs::write(&index_path, &sealed).unwrap();

        // A file written since is read beside the table, which stays.
        repo.write_index_file(&file(2000, 100)).unwrap();
        drop(repo);
        let repo = open().unwrap();
        assert_eq!(repo.index().len(), 2100);
        assert!(repo.index().contains(kind(2050), &id(2050)));
        assert_eq!(std::fs::read(&table_path).unwrap(), stored, "table kept");

        // Many blobs beside it: a new table, covering both files.
        repo.write_index_file(&file(5000, 1000)).unwrap();
        drop(repo);
        let repo = open().unwrap();
        assert_eq!(repo.index().len(), 3100);
        assert_ne!(
            std::fs::read(&table_path).unwrap(),
            stored,
            "table written again"
        );
        std::fs::write(&index_path, &damaged).unwrap();
        let repo2 = open().expect("opened from the new table");
        assert_eq!(repo2.index().len(), 3100);

        // A file the table covers is gone: it is stale, and the index is
        // built from the files (the first one, damaged, is now read) and
        // a new table written.
        let before = std::fs::read(&table_path).unwrap();
        std::fs::remove_file(&index_path).unwrap();
        drop((repo, repo2));
        let repo = open().unwrap();
        assert_eq!(repo.index().len(), 1100);
        assert!(!repo.index().contains(kind(5), &id(5)));
        let after = std::fs::read(&table_path).expect("a new table");
        assert_ne!(after, before);
        drop(repo);
        let repo = open().unwrap();
        assert_eq!(repo.index().len(), 1100);
    }
}
