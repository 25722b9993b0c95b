//! Loading the index: the index files and prune marks listed together,
//! read in parallel, and kept as a table on the local disk when large.

use super::*;

impl Repository {
    /// Reads the prune marks, then every index file (in parallel) into the
    /// index, and the condemned packs of superseded files into the fallback
    /// index. An index file may vanish between listing and reading when a
    /// prune finishes meanwhile; then everything is read once more.
    pub fn load_index(&mut self) -> Result<()> {
        self.load_index_listed(None)
    }

    /// Loads the index from the files of `listed`, if given, or else of a
    /// listing made now; a file that vanished makes it list and read again.
    pub(super) fn load_index_listed(&mut self, listed: Option<IndexListing>) -> Result<()> {
        match self.try_load_index(listed) {
            Err(Error::Missing(_)) => self.try_load_index(None),
            other => other,
        }
    }

    fn try_load_index(&mut self, listed: Option<IndexListing>) -> Result<()> {
        // The old index goes first, so that two are never held at once.
        self.index = Index::default();
        self.condemned = Index::default();
        let IndexListing {
            marks,
            index: listed,
        } = match listed {
            Some(l) => l,
            None => IndexListing::take(&*self.backend)?,
        };
        self.marks = self.read_marks_named(marks)?;
        if let Some(cache) = &self.cache {
            cache.retain(FileKind::Index, listed.iter().map(String::as_str));
        }
        let (superseded, current): (Vec<String>, Vec<String>) = listed.into_iter().partition(|n| {
            IndexId::from_hex(n).is_some_and(|id| self.marks.superseded.contains(&id))
        });
        self.index_files = current
            .iter()
            .filter_map(|n| IndexId::from_hex(n))
            .collect();
        if self.role() == Role::PutOnly {
            return self.load_tags(&current);
        }
        let tree_packs = Mutex::new(HashSet::new());
        let note_tree_packs = |file: &IndexFile| {
            let mut found = tree_packs.lock().expect("not poisoned");
            found.extend(
                file.packs
                    .iter()
                    .filter(|p| holds_trees_only(p))
                    .map(|p| p.id),
            );
        };
        let read_current = |name: &String| {
            let file = self.read_index_file(name);
            if let Ok(file) = &file {
                note_tree_packs(file);
            }
            file.map_err(|e| match e {
                // Still an integrity error, with the way out added.
                Error::Format { context, source } if source.is_integrity() => Error::Format {
                    context: format!(
                        "{context} (`cairn repair index` rebuilds the index from the packs)"
                    ),
                    source,
                },
                e => e,
            })
        };
        let listed: HashSet<IndexId> = self.index_files.iter().copied().collect();
        let stored = self.index_table.as_ref().and_then(|t| t.load(&listed));
        let mut store = true;
        self.index = match stored {
            None => IndexLoader::load(&current, read_current)?,
            Some(Loaded {
                mut index,
                files,
                tree_packs: stored_tree_packs,
            }) => {
                tree_packs
                    .lock()
                    .expect("not poisoned")
                    .extend(stored_tree_packs);
                let unread: Vec<&String> = current
                    .iter()
                    .filter(|n| IndexId::from_hex(n).is_some_and(|id| !files.contains(&id)))
                    .collect();
                for batch in unread.chunks(4 * rayon::current_num_threads()) {
                    let read: Vec<IndexFile> = batch
                        .par_iter()
                        .map(|n| read_current(n))
                        .collect::<Result<_>>()?;
                    read.iter().for_each(|f| index.add_file(f));
                }
                // A few files beside the table cost little to read each
                // time; many, or many blobs, are worth a new table.
                store = unread.len() > TABLE_UNREAD_FILES || index.extra_len() > index.len() / 16;
                if store {
                    index.compact();
                }
                index
            }
        };
        if let Some(table) = self.index_table.as_ref().filter(|_| store) {
            let found = tree_packs.lock().expect("not poisoned");
            table.store(&self.index, &self.index_files, &found);
        }
        let condemned = &self.marks.condemned;
        self.condemned = IndexLoader::load(&superseded, |name| {
            let mut file = self.read_index_file(name)?;
            file.packs.retain(|p| condemned.contains(&p.id));
            note_tree_packs(&file);
            Ok::<_, Error>(file)
        })?;
        self.tree_packs = tree_packs.into_inner().expect("not poisoned");
        if let Some(cache) = &self.cache {
            let names: Vec<String> = self.tree_packs.iter().map(PackId::to_hex).collect();
            cache.retain(FileKind::Pack, names.iter().map(String::as_str));
        }
        Ok(())
    }

    /// Reads every prune mark; those that cannot be read are listed apart.
    pub fn read_marks(&self) -> Result<Marks> {
        self.read_marks_named(self.backend.list(FileKind::Mark)?)
    }

    /// Reads the prune marks `names`; one that vanished since it was listed
    /// is left out (its prune has deleted what it superseded).
    fn read_marks_named(&self, names: Vec<String>) -> Result<Marks> {
        let mut marks = Marks::default();
        for name in names {
            let id = MarkId::from_hex(&name).expect("backends list only hex IDs");
            let mark = self.read_verified(FileKind::Mark, &name).and_then(|b| {
                PruneMark::open(&b, &self.keys)
                    .map_err(|e| Error::format(format!("prune mark {name}"), e))
            });
            match mark {
                Ok(m) => {
                    marks.superseded.extend(m.superseded.iter().copied());
                    marks.condemned.extend(m.condemned.iter().copied());
                    marks.marks.push((id, m));
                }
                Err(Error::Missing(_)) => {}
                Err(e) if e.is_integrity() => marks.unreadable.push((id, e)),
                Err(e) => return Err(e),
            }
        }
        Ok(marks)
    }

    /// Writes an index file describing `packs` (as a [`crate::packer::PackWriter`]
    /// returns them) and adds them to the in-memory index. Write a snapshot
    /// that uses them only after this returns.
    pub fn save_index(&mut self, packs: Vec<IndexPack>) -> Result<Option<IndexId>> {
        if packs.is_empty() {
            return Ok(None);
        }
        let file = IndexFile { version: 1, packs };
        let id = self.write_index_file(&file)?;
        self.index.add_file(&file);
        let trees_only = file.packs.iter().filter(|p| holds_trees_only(p));
        self.tree_packs.extend(trees_only.map(|p| p.id));
        Ok(Some(id))
    }

    /// Writes an index file, leaving the in-memory index as it is.
    pub(crate) fn write_index_file(&self, file: &IndexFile) -> Result<IndexId> {
        Ok(IndexId(
            self.store_file(FileKind::Index, &file.seal(&self.keys))?,
        ))
    }

    /// A put-only key's index: the tags of the current index files, read a
    /// few at a time on every core. Condemned packs are left out: a backup
    /// must not use what a prune is about to delete.
    fn load_tags(&mut self, current: &[String]) -> Result<()> {
        self.tags.clear();
        for batch in current.chunks(4 * rayon::current_num_threads()) {
            let files = batch
                .par_iter()
                .map(|name| {
                    let bytes = self.read_verified(FileKind::Index, name)?;
                    IndexFile::open_tags(&bytes, &self.keys)
                        .map_err(|e| Error::format(format!("index file {name}"), e))
                })
                .collect::<Result<Vec<_>>>()?;
            for file in files {
                for t in &file.tags {
                    self.tags.insert(t.tag, file.packs[t.pack as usize]);
                }
            }
        }
        Ok(())
    }

    /// Reads, authenticates and decodes one index file.
    pub fn read_index_file(&self, name: &str) -> Result<IndexFile> {
        let bytes = self.read_verified(FileKind::Index, name)?;
        IndexFile::open(&bytes, &self.keys)
            .map_err(|e| Error::format(format!("index file {name}"), e))
    }

    /// Reads one index file and, in a repository with key epochs, checks
    /// that its deduplication tags are those of its entries (what a
    /// put-only key deduplicates by, SPEC §10.1).
    pub fn read_index_file_checked(&self, name: &str) -> Result<IndexFile> {
        let bytes = self.read_verified(FileKind::Index, name)?;
        let what = || format!("index file {name}");
        let file = IndexFile::open(&bytes, &self.keys).map_err(|e| Error::format(what(), e))?;
        if self.keys.keyring.is_some() {
            let tags =
                IndexFile::open_tags(&bytes, &self.keys).map_err(|e| Error::format(what(), e))?;
            if tags != file.tags(&self.keys) {
                return Err(Error::Invalid(format!(
                    "{}: its deduplication tags differ from its entries \
                     (`cairn repair index` writes it anew)",
                    what()
                )));
            }
        }
        Ok(file)
    }
}

/// The names of the prune marks and of the index files, listed in that
/// order (SPEC.md §15.3).
pub(super) struct IndexListing {
    marks: Vec<String>,
    index: Vec<String>,
}

impl IndexListing {
    pub(super) fn take(backend: &dyn Backend) -> Result<IndexListing> {
        let marks = backend.list(FileKind::Mark)?;
        let index = backend.list(FileKind::Index)?;
        Ok(IndexListing { marks, index })
    }
}
