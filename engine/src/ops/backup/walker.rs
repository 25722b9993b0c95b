//! The walk of a backup: each directory listed, filtered and compared
//! with the parent's tree; files unchanged taken from the parent, the
//! others read, chunked and saved (small ones into bundles); a tree saved
//! per directory.

use super::*;

/// Walks the sources of one backup, saving what it finds.
pub(super) struct Walker<'r> {
    writer: PackWriter<'r>,
    chunker: Chunker,
    names: NameCache,
    summary: Summary,
    skipped: Vec<Skipped>,
    force: bool,
    filter: Filter,
    /// Device of the backed-up path being walked, for `one_file_system`.
    root_device: u64,
    /// Content of files with several links, by (device, inode): read once.
    hard_links: HashMap<(u64, u64), NodeKind>,
    /// The open bundle of the directory being saved.
    bundle: Bundle,
    /// Set when the entry just saved went into the open bundle.
    bundled: bool,
    progress: Option<Arc<Progress>>,
    /// Lists directories ahead of the walk.
    lister: Lister,
    /// Set for a dry run: no file is read and nothing is stored.
    dry_run: bool,
}

/// The entries of a directory being saved, some of them waiting for the
/// open bundle to be stored.
#[derive(Default)]
struct Entries {
    nodes: Vec<Node>,
    /// Indices of the nodes in the open bundle.
    waiting: Vec<usize>,
}

/// A file's content as read: where it is stored, its length, and its
/// metadata taken after the read (which matched the metadata before it).
struct ReadFile {
    kind: NodeKind,
    size: u64,
    meta: Metadata,
}

/// The content ID a bundled file has until its bundle is stored.
const UNSTORED: BlobId = BlobId([0; 32]);

impl<'r> Walker<'r> {
    /// A walker saving into `repo`, or with `dry_run` only counting.
    pub(super) fn new(
        repo: &'r Repository,
        filter: Filter,
        opts: &BackupOptions,
        dry_run: bool,
    ) -> Self {
        Walker {
            writer: PackWriter::new(repo),
            chunker: Chunker::new(repo.keys(), &repo.config().chunker),
            names: NameCache::default(),
            summary: Summary::default(),
            skipped: Vec::new(),
            force: opts.force,
            filter,
            root_device: 0,
            hard_links: HashMap::new(),
            bundle: Bundle::default(),
            bundled: false,
            progress: opts.progress.clone(),
            lister: Lister::start(),
            dry_run,
        }
    }

    /// Saves the sources under `root`, compared with the parent's tree;
    /// returns the root tree's ID.
    pub(super) fn save_root(
        &mut self,
        root: &Source,
        parent_tree: Option<BlobId>,
    ) -> Result<BlobId> {
        match root {
            Source::Real(p) => {
                self.root_device = std::fs::symlink_metadata(p)
                    .map_err(|e| Error::SourcePath(p.clone(), e))?
                    .dev();
                self.save_dir(p, parent_tree)
            }
            Source::Virtual { children, .. } => self.save_children(children, parent_tree),
        }
    }

    /// The packs holding blobs found in the index rather than stored (see
    /// [`PackWriter::reused_packs`]).
    pub(super) fn reused_packs(&self) -> HashSet<PackId> {
        self.writer.reused_packs()
    }

    /// Waits for everything saved to be stored; returns the packs written
    /// with the counts, and what was counted and skipped.
    pub(super) fn finish(self) -> Result<(Written, Summary, Vec<Skipped>)> {
        Ok((self.writer.finish()?, self.summary, self.skipped))
    }

    fn skip(&mut self, path: &Path, error: std::io::Error) {
        self.skipped.push(Skipped {
            path: path.to_path_buf(),
            error,
        });
    }

    fn save_tree(&mut self, nodes: Vec<Node>) -> Result<BlobId> {
        if self.dry_run {
            return Ok(self.writer.repo().blob_id(&Tree::new(nodes).encode()));
        }
        save_tree(&mut self.writer, nodes)
    }

    /// The parent's tree at this point, if it has one that can be read. A parent
    /// that cannot be read only costs re-reading files, so it is not an error.
    fn parent_tree(&self, id: Option<BlobId>) -> Option<Tree> {
        id.and_then(|id| self.writer.repo().load_tree(&id).ok())
    }

    fn save_children(
        &mut self,
        children: &BTreeMap<Vec<u8>, Source>,
        parent: Option<BlobId>,
    ) -> Result<BlobId> {
        let parent = self.parent_tree(parent);
        let mut entries = Entries::default();
        for (name, child) in children {
            let previous = parent.as_ref().and_then(|t| t.find(name));
            let node = match child {
                Source::Real(path) => match std::fs::symlink_metadata(path) {
                    Ok(meta) => {
                        self.root_device = meta.dev();
                        self.save_entry(path, name.clone(), meta, previous)?
                    }
                    Err(e) => {
                        self.skip(path, e);
                        None
                    }
                },
                Source::Virtual { path, children } => match std::fs::symlink_metadata(path) {
                    Ok(meta) => {
                        let subtree = self.save_children(children, subtree_of(previous))?;
                        self.summary.dirs += 1;
                        Some(source::node(
                            name.clone(),
                            &meta,
                            NodeKind::Dir { subtree },
                            &mut self.names,
                        ))
                    }
                    Err(e) => return Err(Error::SourcePath(path.clone(), e)),
                },
            };
            self.push(&mut entries, node);
            // The next child may be a directory, whose files need the bundle.
            self.store_bundle(&mut entries)?;
        }
        self.save_tree(entries.nodes)
    }

    /// Adds a saved entry to `entries`, storing the open bundle when it is full.
    fn push(&mut self, entries: &mut Entries, node: Option<Node>) {
        if let Some(node) = node {
            if std::mem::take(&mut self.bundled) {
                entries.waiting.push(entries.nodes.len());
            }
            entries.nodes.push(node);
        }
    }

    /// Stores the open bundle and records its ID in the entries it holds.
    fn store_bundle(&mut self, entries: &mut Entries) -> Result<()> {
        if entries.waiting.is_empty() {
            return Ok(());
        }
        let id = self.writer.save(BlobKind::Data, self.bundle.take())?;
        for i in entries.waiting.drain(..) {
            if let NodeKind::Bundled { blob, .. } = &mut entries.nodes[i].kind {
                *blob = id;
            }
        }
        Ok(())
    }

    /// Saves a directory: its files, symlinks and special files first (so
    /// that their bundles are stored before the walk goes deeper), then its
    /// subdirectories. Tree entries are sorted by name either way.
    fn save_dir(&mut self, path: &Path, parent: Option<BlobId>) -> Result<BlobId> {
        let listing = self.lister.take(path);
        for e in listing.errors {
            self.skip(path, e);
        }
        let (mut dirs, mut others) = (Vec::new(), Vec::new());
        for (name, meta) in listing.entries {
            let child = path.join(OsStr::from_bytes(&name));
            match meta {
                Ok(meta) if meta.is_dir() => {
                    let verdict = self.filter.judge(&child, &meta, self.root_device);
                    dirs.push((child, name, meta, verdict));
                }
                meta => others.push((child, name, meta)),
            }
        }
        // Listed on the other thread while this one saves the files: only
        // the directories the walk will enter (not those excluded, nor
        // mount points left empty).
        let entered = dirs.iter().filter(|d| d.3 == Verdict::Include);
        self.lister
            .ahead(entered.map(|(child, ..)| child.as_path()));
        let saved = self.save_listed(parent, &dirs, others);
        self.lister
            .forget(dirs.iter().map(|(child, ..)| child.as_path()));
        saved
    }

    /// [`Walker::save_dir`] once the directory is listed: its files first
    /// (in the open bundle), then its subdirectories.
    fn save_listed(
        &mut self,
        parent: Option<BlobId>,
        dirs: &[(PathBuf, Vec<u8>, Metadata, Verdict)],
        others: Vec<(PathBuf, Vec<u8>, std::io::Result<Metadata>)>,
    ) -> Result<BlobId> {
        let parent = self.parent_tree(parent);
        let previous = |name: &[u8]| parent.as_ref().and_then(|t| t.find(name));
        let mut saved = Entries::default();
        for (child, name, meta) in others {
            match meta {
                Ok(meta) => {
                    let node = self.save_entry(&child, name.clone(), meta, previous(&name))?;
                    self.push(&mut saved, node);
                    if self.bundle.is_full() {
                        self.store_bundle(&mut saved)?;
                    }
                }
                Err(e) => self.skip(&child, e),
            }
        }
        self.store_bundle(&mut saved)?;
        for (child, name, meta, verdict) in dirs {
            let (meta, previous) = (meta.clone(), previous(name));
            let node = self.save_judged(child, name.clone(), meta, previous, *verdict)?;
            self.push(&mut saved, node);
        }
        self.save_tree(saved.nodes)
    }

    /// Saves one entry; `None` when it could not be read (recorded in `skipped`).
    fn save_entry(
        &mut self,
        path: &Path,
        name: Vec<u8>,
        meta: Metadata,
        previous: Option<&Node>,
    ) -> Result<Option<Node>> {
        let verdict = self.filter.judge(path, &meta, self.root_device);
        self.save_judged(path, name, meta, previous, verdict)
    }

    /// [`Walker::save_entry`] once the filter has judged the entry.
    fn save_judged(
        &mut self,
        path: &Path,
        name: Vec<u8>,
        mut meta: Metadata,
        previous: Option<&Node>,
        verdict: Verdict,
    ) -> Result<Option<Node>> {
        let mut file_size = 0;
        let kind = match source::entry_type(&meta) {
            _ if verdict == Verdict::Exclude => return Ok(None),
            EntryType::Dir if verdict == Verdict::EmptyDir => {
                self.summary.dirs += 1;
                NodeKind::Dir {
                    subtree: self.save_tree(Vec::new())?,
                }
            }
            EntryType::Dir => {
                self.summary.dirs += 1;
                // `path` is absolute, so its parent's tree is at this level.
                let level = path.components().count().saturating_sub(2);
                let name = || path.display().to_string();
                NodeKind::Dir {
                    subtree: nesting::descend(level, name, |_| {
                        self.save_dir(path, subtree_of(previous))
                    })?,
                }
            }
            EntryType::File => {
                let link_key = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
                let seen_link = link_key.and_then(|k| self.hard_links.get(&k)).cloned();
                let kind = match seen_link.or_else(|| self.unchanged_content(previous, &meta)) {
                    Some(kind) => {
                        self.summary.files_unchanged += 1;
                        file_size = meta.len();
                        progress::done(&self.progress, 0, file_size);
                        kind
                    }
                    None if self.dry_run => {
                        self.count_read(previous);
                        file_size = meta.len();
                        self.summary.bytes_read += file_size;
                        progress::done(&self.progress, 0, file_size);
                        NodeKind::File {
                            content: Vec::new(),
                        }
                    }
                    None => {
                        let bundle = link_key.is_none() && meta.len() < SMALL_FILE;
                        let Some(read) = self.read_file(path, meta, bundle.then_some(previous))?
                        else {
                            return Ok(None);
                        };
                        self.count_read(previous);
                        meta = read.meta;
                        file_size = read.size;
                        read.kind
                    }
                };
                if let Some(key) = link_key {
                    self.hard_links.insert(key, kind.clone());
                }
                self.summary.total_size += file_size;
                progress::done(&self.progress, 1, 0);
                kind
            }
            EntryType::Symlink => match std::fs::read_link(path) {
                Ok(target) => {
                    self.summary.others += 1;
                    NodeKind::Symlink {
                        target: target.as_os_str().as_bytes().to_vec(),
                    }
                }
                Err(e) => {
                    self.skip(path, e);
                    return Ok(None);
                }
            },
            EntryType::Special => {
                self.summary.others += 1;
                source::special_kind(&meta)
            }
        };
        let mut node = source::node(name, &meta, kind, &mut self.names);
        if node.kind.file_data().is_some() {
            node.size = file_size;
        }
        // Extended attributes are metadata: a failure to read them does not
        // cost the entry its content. Setting one changes the status change
        // time, so an entry whose inode and ctime are the parent's keeps the
        // parent's attributes without reading them.
        let same_status = |p: &&Node| !self.force && p.inode == node.inode && p.ctime == node.ctime;
        node.xattrs = match previous.filter(same_status) {
            Some(p) => p.xattrs.clone(),
            None => source::read_xattrs(path).unwrap_or_default(),
        };
        Ok(Some(node))
    }

    /// Counts a file whose content is read (or in a dry run would be) as
    /// new, or as changed when the parent has it.
    fn count_read(&mut self, previous: Option<&Node>) {
        match previous.and_then(|p| p.kind.file_data()) {
            Some(_) => self.summary.files_changed += 1,
            None => self.summary.files_new += 1,
        }
    }

    /// The parent's content for a file whose size, modification time, status
    /// change time and inode are all unchanged, and whose blobs are all still
    /// stored.
    fn unchanged_content(&self, previous: Option<&Node>, meta: &Metadata) -> Option<NodeKind> {
        let p = previous.filter(|_| !self.force)?;
        let same = p.size == meta.len()
            && p.mtime == source::mtime(meta)
            && p.ctime == source::ctime(meta)
            && p.inode == meta.ino();
        (same && self.is_stored(&p.kind)).then(|| p.kind.clone())
    }

    /// True for a file whose blobs are all stored.
    fn is_stored(&self, kind: &NodeKind) -> bool {
        kind.file_data().is_some_and(|d| {
            d.blobs
                .iter()
                .all(|id| self.writer.is_stored(BlobKind::Data, id))
        })
    }

    /// Where a small file read whole is stored: where the parent has the
    /// same content, in a blob of its own already stored, or in the open bundle.
    fn save_small(&mut self, data: Vec<u8>, previous: Option<&Node>) -> Result<NodeKind> {
        let id = self.writer.repo().blob_id(&data);
        if let Some(p) = previous.filter(|p| p.size == data.len() as u64) {
            let same = p.kind.file_data().and_then(|d| d.content_id()) == Some(id);
            if same && self.is_stored(&p.kind) {
                return Ok(p.kind.clone());
            }
        }
        if self.writer.is_stored(BlobKind::Data, &id) {
            return Ok(NodeKind::File { content: vec![id] });
        }
        let offset = self.bundle.add(id, &data);
        self.bundled = true;
        Ok(NodeKind::Bundled {
            blob: UNSTORED,
            offset,
            id,
        })
    }

    /// Reads and stores a file; with `bundle`, a file read whole in one chunk
    /// below [`SMALL_FILE`] goes to [`Walker::save_small`] with the parent's
    /// node. A file whose size or modification time changes while it is read
    /// is read once more; if it changes again it is left out and reported,
    /// never recorded as a good copy. `None` when left out.
    fn read_file(
        &mut self,
        path: &Path,
        mut before: Metadata,
        bundle: Option<Option<&Node>>,
    ) -> Result<Option<ReadFile>> {
        for attempt in 0..2 {
            let file = match source::open_for_backup(path) {
                Ok(f) => f,
                Err(e) => {
                    self.skip(path, e);
                    return Ok(None);
                }
            };
            let mut content = Vec::new();
            let mut size = 0;
            // The first chunk of a file that may be small, held until the
            // file is known to end with it: only a file that is one chunk
            // is bundled (the chunker may cut well below SMALL_FILE).
            let mut small = None;
            for chunk in self.chunker.chunks_sized(&file, before.len()) {
                match chunk {
                    Ok(chunk) => {
                        let first = size == 0;
                        size += chunk.len() as u64;
                        self.summary.bytes_read += chunk.len() as u64;
                        progress::done(&self.progress, 0, chunk.len() as u64);
                        if let Some(held) = small.take() {
                            content.push(self.writer.save(BlobKind::Data, held)?);
                        }
                        if first && size < SMALL_FILE && bundle.is_some() {
                            small = Some(chunk);
                        } else {
                            content.push(self.writer.save(BlobKind::Data, chunk)?);
                        }
                    }
                    Err(e) => {
                        self.skip(path, e);
                        return Ok(None);
                    }
                }
            }
            let after = match file.metadata() {
                Ok(m) => m,
                Err(e) => {
                    self.skip(path, e);
                    return Ok(None);
                }
            };
            let stable = size == before.len()
                && after.len() == size
                && source::mtime(&after) == source::mtime(&before);
            if stable {
                let kind = match (small, bundle) {
                    (Some(data), Some(previous)) => {
                        debug_assert!(content.is_empty(), "a bundled file is one chunk");
                        self.save_small(data, previous)?
                    }
                    _ => NodeKind::File { content },
                };
                return Ok(Some(ReadFile {
                    kind,
                    size,
                    meta: after,
                }));
            }
            if attempt == 0 {
                before = after;
            }
        }
        self.skip(
            path,
            std::io::Error::other(
                "the file changed while it was being read; it is not in the snapshot",
            ),
        );
        Ok(None)
    }
}

/// The subtree of a parent node that is a directory.
fn subtree_of(node: Option<&Node>) -> Option<BlobId> {
    match node.map(|n| &n.kind) {
        Some(NodeKind::Dir { subtree }) => Some(*subtree),
        _ => None,
    }
}
