//! An opened repository: keys, config, index, and typed access to stored objects.

use crate::backend::{unique_prefix, Backend, FileKind};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::index::{BlobLocation, Index, IndexLoader};
use crate::index_table::{IndexTable, Loaded};
use crate::parent_cache::ParentCache;
use crate::repo::lease::Session;
use cairn_format::config::{Config, COMPRESSION_NONE, COMPRESSION_ZSTD};
use cairn_format::crypto::MasterKeys;
use cairn_format::id::storage_hash;
use cairn_format::index::{dedup_tag, IndexFile, IndexPack};
use cairn_format::key::{open_key_file, read_key_header, seal_key_file, KdfParams, KeyInfo};
use cairn_format::keyring::Role;
use cairn_format::lock::{Operation, PruneMark};
use cairn_format::pack::{open_blob, PackEntry, PackHeader, TRAILER_LEN};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::Tree;
use cairn_format::{
    BlobId, BlobKind, FormatError, IndexId, KeyId, MarkId, PackId, SnapshotId, Timestamp,
};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

mod index_load;
use index_load::IndexListing;
mod files;
use files::read_verified;
mod init_options;
pub use init_options::{check_retain_days, ChunkerSecret, InitOptions, MAX_RETAIN_DAYS};
mod objects;

/// The most key-derivation work ([`KdfParams::work`]) an open spends on
/// key files it was not pointed to: 16 GiB·passes, about 85 key files at the
/// default costs, or one of 4 GiB with 4 passes (about 22 s on a 2-core
/// machine, measured at 1.4 s per GiB·pass).
pub const KDF_BUDGET: u64 = 16 << 20;

/// Files of a kind that could be read, with the hash that names each, and
/// the errors for the others.
pub(crate) type Readable<T> = (Vec<([u8; 32], T)>, Vec<Error>);

/// Snapshots with their IDs, oldest first.
pub type SnapshotList = Vec<(SnapshotId, Snapshot)>;

/// The prune marks in force when the index was loaded (SPEC.md §15).
#[derive(Debug, Default)]
pub struct Marks {
    /// The marks read.
    pub marks: Vec<(MarkId, PruneMark)>,
    /// Index files some mark supersedes.
    pub superseded: HashSet<IndexId>,
    /// Packs some mark condemns.
    pub condemned: HashSet<PackId>,
    /// Marks that are damaged; they are ignored (which is safe, SPEC.md
    /// §15.3) and the next prune removes them.
    pub unreadable: Vec<(MarkId, Error)>,
}

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    keys: Arc<MasterKeys>,
    config: Config,
    /// Blobs listed by index files no mark supersedes: what a backup deduplicates against.
    index: Index,
    /// Blobs found only in condemned packs, listed by superseded index
    /// files: still readable until a prune deletes them.
    condemned: Index,
    /// The index files `index` was loaded from.
    index_files: Vec<IndexId>,
    marks: Marks,
    session: Option<Session>,
    /// The key file this repository was opened with, and who made it.
    key: Option<(KeyId, KeyInfo)>,
    /// The local copy of metadata, when one is used.
    cache: Option<Arc<Cache>>,
    /// The loaded index kept on the local disk, when one is used.
    index_table: Option<IndexTable>,
    /// The packs the index lists with trees only: what the cache keeps whole.
    tree_packs: HashSet<PackId>,
    /// Packs of trees read whole from distant storage when no cache is
    /// used, the last [`HELD_TREE_PACKS`] of them.
    held_tree_packs: Mutex<VecDeque<(PackId, Arc<Vec<u8>>)>>,
    /// What a put-only key remembers of its own backups, when it is used.
    parent_cache: Option<Arc<ParentCache>>,
    /// For a put-only key, which reads no index entries: the packs of the
    /// stored blobs by their deduplication tags (SPEC §10.1).
    tags: HashMap<[u8; 16], PackId>,
}

/// How many whole packs of trees are held in memory when no cache is used
/// on storage that keeps several requests in flight (a distant one): a walk
/// reads many trees of one pack, and one request for each cost a round trip.
const HELD_TREE_PACKS: usize = 2;

/// The smallest index that [`Repository::use_index_table`] keeps a table of.
pub const INDEX_TABLE_MIN_BLOBS: usize = 1 << 16;

/// Index files read beside a stored index table, at most, before the table
/// is written again with them.
const TABLE_UNREAD_FILES: usize = 16;

impl Repository {
    /// Creates a new repository in empty storage, with one key file for `password`.
    ///
    /// ```
    /// use cairn_engine::{backend::LocalBackend, InitOptions, Repository};
    /// use cairn_format::key::KdfParams;
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
    /// let repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
    /// assert!(Repository::open(LocalBackend::new(dir.path().join("repo")), b"pw").is_ok());
    /// assert_eq!(repo.snapshots().unwrap().len(), 0);
    /// ```
    pub fn init(
        backend: impl Backend + 'static,
        password: &[u8],
        opts: &InitOptions,
    ) -> Result<Repository> {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let mut keys = MasterKeys::generate_keyed();
        if let Some(secret) = &opts.chunker_secret {
            keys.chunker_key = secret.0;
        }
        let mut config = Config::with_defaults(keys.repo_id);
        if let Some(c) = &opts.chunker {
            config.chunker = c.clone();
        }
        config.compression.algorithm = if opts.compression_level.is_some() {
            COMPRESSION_ZSTD
        } else {
            COMPRESSION_NONE
        };
        config.compression.level = opts.compression_level.unwrap_or(0);
        if let Some(p) = opts.pack_size {
            config.pack_size = p;
        }
        if let Some(padding) = opts.padding {
            config.set_padding(padding);
        }
        keys.padding = config.padding();
        if let Some(days) = opts.retain_days {
            check_retain_days(days)?;
            backend.retain_for(days)?;
            config.retain_days = Some(days);
        }
        cairn_format::codec::decode::<Config>(&cairn_format::codec::encode(&config))
            .map_err(|e| Error::Invalid(format!("invalid repository parameters: {e}")))?;
        let (key_file, info) = seal_key(&keys, password, opts.kdf.clone())?;
        let key_id = KeyId(storage_hash(&key_file));
        backend.create_repository()?;
        backend.create(FileKind::Key, &key_id.to_hex(), &key_file)?;
        // The config is written last: storage without it is not a repository.
        backend.create(FileKind::Config, "config", &config.seal(&keys))?;
        Ok(Self::opened(backend, keys, config, Some((key_id, info))))
    }

    /// A repository just opened with `keys`: no index loaded, no session,
    /// no cache.
    fn opened(
        backend: Arc<dyn Backend>,
        keys: MasterKeys,
        config: Config,
        key: Option<(KeyId, KeyInfo)>,
    ) -> Repository {
        Repository {
            backend,
            keys: Arc::new(keys),
            config,
            index: Index::default(),
            condemned: Index::default(),
            index_files: Vec::new(),
            marks: Marks::default(),
            session: None,
            key,
            cache: None,
            index_table: None,
            tree_packs: HashSet::new(),
            held_tree_packs: Mutex::default(),
            parent_cache: None,
            tags: HashMap::new(),
        }
    }

    /// Opens an existing repository with `password` and loads its index.
    pub fn open(backend: impl Backend + 'static, password: &[u8]) -> Result<Repository> {
        Self::open_hinted(backend, password, None, |_| {})
    }

    /// Like [`Repository::open`], trying first the key file whose ID starts
    /// with `hint` (see [`Repository::open_keys_hinted`]); `prepare` runs
    /// once the keys are open and before the index is read, to attach a
    /// cache with [`Repository::use_cache`], say. The marks and index files
    /// are listed while the key is derived, which saves round trips to
    /// remote storage.
    ///
    /// ```
    /// use cairn_engine::{backend::LocalBackend, InitOptions, Repository};
    /// use cairn_format::key::KdfParams;
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
    /// Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
    /// let cache = dir.path().join("cache");
    /// let repo = Repository::open_hinted(LocalBackend::new(dir.path().join("repo")), b"pw", None, |repo| {
    ///     repo.use_cache(&cache).unwrap();
    /// })
    /// .unwrap();
    /// assert!(repo.cache_dir().is_some());
    /// ```
    pub fn open_hinted(
        backend: impl Backend + 'static,
        password: &[u8],
        hint: Option<&str>,
        prepare: impl FnOnce(&mut Repository),
    ) -> Result<Repository> {
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let (opened, listed) = std::thread::scope(|s| {
            let listing = s.spawn(|| IndexListing::take(&*backend));
            let opened = Self::open_shared(backend.clone(), password, hint);
            (opened, joined(listing))
        });
        let mut repo = opened?;
        prepare(&mut repo);
        repo.load_index_listed(Some(listed?))?;
        Ok(repo)
    }

    /// Opens an existing repository for an operation that changes it: starts
    /// a session (SPEC.md §15), then loads the marks and the index.
    pub fn open_as(
        backend: impl Backend + 'static,
        password: &[u8],
        operation: Operation,
    ) -> Result<Repository> {
        let mut repo = Self::open_keys(backend, password)?;
        repo.begin_session(operation)?;
        Ok(repo)
    }

    /// Opens an existing repository without loading its index, for work
    /// that begins a session before it uses the index (as
    /// [`crate::backup::backup`] does), so that nothing is written before
    /// the work has checked its input.
    pub fn open_keys(backend: impl Backend + 'static, password: &[u8]) -> Result<Repository> {
        Self::open_keys_hinted(backend, password, None)
    }

    /// Like [`Repository::open_keys`], trying first the key file whose ID
    /// starts with `hint` (the one that last opened the repository, say).
    ///
    /// The others are tried cheapest first (by the key-derivation work
    /// their clear headers ask for), within [`KDF_BUDGET`]: key files
    /// planted in bulk, or asking for the largest costs, cannot make an
    /// open take hours (SPEC.md §3.4). Only the hinted key is tried
    /// whatever it costs.
    pub fn open_keys_hinted(
        backend: impl Backend + 'static,
        password: &[u8],
        hint: Option<&str>,
    ) -> Result<Repository> {
        Self::open_shared(Arc::new(backend), password, hint)
    }

    fn open_shared(
        backend: Arc<dyn Backend>,
        password: &[u8],
        hint: Option<&str>,
    ) -> Result<Repository> {
        // Asked for together: the config, the names of the key files, and
        // the hinted key file when the hint is a whole ID (it is used only
        // if the listing shows it).
        let whole_hint = hint.filter(|h| KeyId::from_hex(h).is_some());
        let (config_bytes, names, mut early) = std::thread::scope(|s| {
            let names = s.spawn(|| backend.list(FileKind::Key));
            let early = whole_hint.map(|h| {
                let backend = &backend;
                s.spawn(move || (h, read_verified(&**backend, FileKind::Key, h)))
            });
            let config = backend.read(FileKind::Config, "config");
            (config, joined(names), early.map(joined))
        });
        let config_bytes = match config_bytes {
            Ok(bytes) => bytes,
            Err(_) if !backend.exists()? => {
                return Err(Error::RepositoryNotFound(backend.location()))
            }
            Err(e) => return Err(e),
        };
        // Every key file is tried: one that is damaged, of a later version, or that
        // opens with this password but does not fit the config (a leftover of an
        // interrupted `init`) must not lock the others out.
        let mut problem = None;
        let mut candidates = Vec::new();
        for name in names? {
            let read = match early.take_if(|(h, _)| *h == name) {
                Some((_, read)) => read,
                None => read_verified(&*backend, FileKind::Key, &name),
            };
            match read {
                Ok(bytes) => candidates.push((name, bytes)),
                Err(e) if e.is_integrity() => problem = Some(e),
                Err(e) => return Err(e),
            }
        }
        let hinted = |name: &str| hint.is_some_and(|h| !h.is_empty() && name.starts_with(h));
        let cost = |bytes: &[u8]| read_key_header(bytes).map_or(u64::MAX, |(h, _)| h.kdf.work());
        candidates.sort_by_cached_key(|(name, bytes)| (!hinted(name), cost(bytes), name.clone()));
        let (mut spent, mut tried, mut skipped) = (0u64, 0usize, 0usize);
        for (name, bytes) in candidates {
            let work = cost(&bytes);
            if !hinted(&name) && spent.saturating_add(work) > KDF_BUDGET {
                // A header that cannot be read costs nothing to refuse.
                if work != u64::MAX {
                    skipped += 1;
                    continue;
                }
            } else {
                spent = spent.saturating_add(work);
            }
            tried += 1;
            let (mut keys, info) = match open_key_file(&bytes, password) {
                Ok(opened) => opened,
                Err(FormatError::Authentication(_)) => continue,
                Err(e) => {
                    problem.get_or_insert(Error::format(format!("key file {name}"), e));
                    continue;
                }
            };
            let config = match Config::open(&config_bytes, &keys) {
                Ok(c) => c,
                Err(e) => {
                    problem = Some(Error::format("config", e));
                    continue;
                }
            };
            keys.padding = config.padding();
            if let Some(days) = config.retain_days.filter(|_| backend.can_retain()) {
                // Storage that cannot keep files at all (a copy of the
                // files made elsewhere) is used without; a backup asks
                // again and fails.
                backend.retain_for(days)?;
            }
            let key = KeyId::from_hex(&name).map(|id| (id, info));
            return Ok(Self::opened(backend, keys, config, key));
        }
        if skipped > 0 {
            return Err(Error::Invalid(format!(
                "the password opens no key file tried ({tried}); {skipped} more ask for more key-derivation \
                 work than is spent on an open: if one of them is yours, name it with --key-hint"
            )));
        }
        Err(problem.unwrap_or(Error::WrongPassword))
    }

    /// Keeps a local copy of index files, snapshots and packs of trees in
    /// this repository's folder under `base` (made if missing), and reads
    /// them from there (see [`crate::cache`]): call it before the index is
    /// loaded. Worth it when storage is remote; `check` should not use it,
    /// as it judges what storage holds.
    ///
    /// ```
    /// use cairn_engine::{backend::LocalBackend, InitOptions, Repository};
    /// use cairn_format::key::KdfParams;
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
    /// let mut repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
    /// repo.use_cache(&dir.path().join("cache")).unwrap();
    /// repo.load_index().unwrap();
    /// assert!(repo.cache_dir().unwrap().starts_with(dir.path().join("cache")));
    /// ```
    pub fn use_cache(&mut self, base: &Path) -> Result<()> {
        let cache = Cache::open(base, &self.keys.repo_id.0)
            .map_err(|e| Error::io(format!("cannot make the cache in {}", base.display()), e))?;
        self.cache = Some(Arc::new(cache));
        Ok(())
    }

    /// Keeps the loaded index, sorted, in a file in this repository's
    /// folder under `base` (made if missing), so that the next open reads
    /// it instead of every index file (see SPEC.md §10.2):
    /// call it before the index is loaded. Only an index of at least
    /// [`INDEX_TABLE_MIN_BLOBS`] blobs is kept, as smaller ones build in
    /// a few milliseconds. Worth it for any repository with many blobs,
    /// local or remote.
    ///
    /// ```
    /// use cairn_engine::{backend::LocalBackend, InitOptions, Repository};
    /// use cairn_format::key::KdfParams;
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
    /// let repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
    /// drop(repo);
    /// let tables = dir.path().join("tables");
    /// let repo = Repository::open_hinted(LocalBackend::new(dir.path().join("repo")), b"pw", None, |repo| {
    ///     repo.use_index_table(&tables);
    /// })
    /// .unwrap();
    /// assert!(repo.index().is_empty());
    /// ```
    pub fn use_index_table(&mut self, base: &Path) {
        self.keep_index_table(base, INDEX_TABLE_MIN_BLOBS);
    }

    /// Like [`Repository::use_index_table`], for indexes of at least `min_blobs`.
    pub(crate) fn keep_index_table(&mut self, base: &Path, min_blobs: usize) {
        self.index_table = Some(IndexTable::new(base, &self.keys, min_blobs));
    }

    /// Remembers a put-only key's backups in `dir`, so that each compares
    /// against the last (see [`crate::parent_cache`]). Only a put-only key
    /// uses it; a full key reads its parents from the repository.
    pub fn use_parent_cache(&mut self, dir: &Path) {
        if let Some(keyring) = self
            .keys
            .keyring
            .as_ref()
            .filter(|k| k.role() == Role::PutOnly)
        {
            self.parent_cache = Some(Arc::new(ParentCache::new(dir, keyring.cache_key())));
        }
    }

    /// The put-only key's record of its backups, when one is used.
    pub fn parent_cache(&self) -> Option<&ParentCache> {
        self.parent_cache.as_deref()
    }

    /// What the key that opened the repository may do.
    pub fn role(&self) -> Role {
        self.keys.role()
    }

    /// Refuses `what` to a put-only key: removing, rewriting and managing
    /// keys need a full key.
    pub fn full_key(&self, what: &str) -> Result<()> {
        match self.role() {
            Role::Full => Ok(()),
            Role::PutOnly => Err(Error::Invalid(format!(
                "a put-only key cannot {what}: open the repository with a full key"
            ))),
        }
    }

    /// The folder of this repository's cache, when one is used.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache.as_deref().map(Cache::dir)
    }

    /// The cache, for writers that keep a copy of what they store.
    pub(crate) fn shared_cache(&self) -> Option<Arc<Cache>> {
        self.cache.clone()
    }

    /// Starts this process's session for `operation`, unless one is running,
    /// and loads the marks and the index again after its first record, so
    /// that a prune either sees the session or the session sees its mark.
    pub fn begin_session(&mut self, operation: Operation) -> Result<()> {
        if self.session.is_some() {
            return Ok(());
        }
        self.session = Some(Session::begin(
            self.backend.clone(),
            self.keys.clone(),
            operation,
        )?);
        self.load_index()?;
        let seen = self.marks.marks.iter().map(|(id, _)| *id).collect();
        self.session.as_ref().expect("just begun").saw_marks(seen)
    }

    /// Starts a session that reads no index, for work that only writes
    /// snapshots; the caller ends it.
    pub fn start_session(&self, operation: Operation) -> Result<Session> {
        Session::begin(self.backend.clone(), self.keys.clone(), operation)
    }

    /// This process's session, if it began one.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Ends this process's session, if any, with its final record.
    pub fn end_session(&mut self) -> Result<()> {
        match self.session.take() {
            Some(s) => s.end(),
            None => Ok(()),
        }
    }

    /// The index files the index was loaded from (those no mark supersedes).
    pub fn index_files(&self) -> &[IndexId] {
        &self.index_files
    }

    /// The prune marks read with the index.
    pub fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Where a blob is stored: by the index proper or, failing that, in a
    /// condemned pack a superseded index file lists (which a prune may
    /// delete once nothing can use it).
    pub fn locate(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        self.index
            .get(kind, id)
            .or_else(|| self.condemned.get(kind, id))
    }

    /// The fallback index of blobs found only in condemned packs.
    pub fn condemned_index(&self) -> &Index {
        &self.condemned
    }

    /// The repository's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The storage backend.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The index proper: blobs listed by index files no prune mark
    /// supersedes, which a backup deduplicates against.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The master secrets.
    pub(crate) fn keys(&self) -> &MasterKeys {
        &self.keys
    }

    /// The storage backend, for threads that outlive a borrow.
    pub(crate) fn shared_backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    /// The master secrets, for threads that outlive a borrow.
    pub(crate) fn shared_keys(&self) -> Arc<MasterKeys> {
        self.keys.clone()
    }

    /// The pack that holds a blob, as the index says: from its entries, or
    /// for a put-only key from its tags.
    pub fn stored_pack(&self, kind: BlobKind, id: &BlobId) -> Option<PackId> {
        match self.role() {
            Role::Full => self.index.get(kind, id).map(|at| at.pack),
            Role::PutOnly => self.tags.get(&dedup_tag(&self.keys, kind, id)).copied(),
        }
    }

    /// IDs of the key files.
    pub fn key_ids(&self) -> Result<Vec<KeyId>> {
        Ok(self
            .backend
            .list(FileKind::Key)?
            .iter()
            .filter_map(|n| KeyId::from_hex(n))
            .collect())
    }

    /// The key file this repository was opened (or created) with.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key.as_ref().map(|(id, _)| *id)
    }

    /// Who made the key file in use, and when (sealed in it, SPEC.md §3.2).
    pub fn key_info(&self) -> Option<&KeyInfo> {
        self.key.as_ref().map(|(_, info)| info)
    }

    /// Records that the key file in use is now `id`, made by `info`.
    pub(crate) fn set_key(&mut self, id: KeyId, info: KeyInfo) {
        self.key = Some((id, info));
    }

    /// Uses `keys` and `config` from now on (after a key rotation), opened
    /// from key file `key`.
    pub(crate) fn set_keys(&mut self, keys: MasterKeys, config: Config, key: (KeyId, KeyInfo)) {
        self.keys = Arc::new(keys);
        self.config = config;
        self.key = Some(key);
    }

    /// The same storage seen through `keys` alone, with no index loaded:
    /// what a key holding only those secrets could open.
    pub(crate) fn seen_with(&self, keys: MasterKeys) -> Repository {
        Repository {
            backend: self.backend.clone(),
            keys: Arc::new(keys),
            config: self.config.clone(),
            index: Index::default(),
            condemned: Index::default(),
            index_files: Vec::new(),
            marks: Marks::default(),
            session: None,
            key: None,
            cache: None,
            index_table: None,
            tree_packs: HashSet::new(),
            held_tree_packs: Mutex::default(),
            parent_cache: None,
            tags: HashMap::new(),
        }
    }
}

/// True when every blob of `pack` is a tree: the packs the cache keeps.
pub(crate) fn holds_trees_only(pack: &IndexPack) -> bool {
    pack.blobs.iter().all(|b| b.kind == BlobKind::Tree)
}

/// What a scoped thread returned; its panic goes on in the caller.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A key file that opens `keys` with `password`, made now by this host and
/// user, and that metadata.
pub(crate) fn seal_key(
    keys: &MasterKeys,
    password: &[u8],
    kdf: KdfParams,
) -> Result<(Vec<u8>, KeyInfo)> {
    let info = KeyInfo {
        role: keys.role(),
        created: Timestamp::now(),
        hostname: crate::sysinfo::hostname(),
        username: crate::sysinfo::username(),
    };
    let file = seal_key_file(keys, password, kdf, &info)
        .map_err(|e| Error::Invalid(format!("cannot create key: {e}")))?;
    Ok((file, info))
}
