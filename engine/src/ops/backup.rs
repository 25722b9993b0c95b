//! Taking a snapshot of file trees.
//!
//! Stages: walk (this module) → read and chunk ([`crate::chunker`]) → hash,
//! deduplicate, compress, encrypt, pack and write ([`crate::packer`]). Packs are
//! written first, then the index that lists them, then the snapshot.

use crate::backend::FileKind;
use crate::bundle::{Bundle, SMALL_FILE};
use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::filter::{Filter, FilterOptions, Verdict};
use crate::lister::Lister;
use crate::nesting;
use crate::packer::{PackWriter, Written};
use crate::progress::{self, Progress};
use crate::repository::Repository;
use crate::session::{self, MAX_CLOCK_SKEW};
use crate::source::{self, EntryType};
use crate::sysinfo::{self, NameCache};
use cairn_format::index::IndexPack;
use cairn_format::lock::Operation;
use cairn_format::snapshot::{SkippedEntry, Snapshot, Summary};
use cairn_format::tree::{is_valid_name, Node, NodeKind, Tree};
use cairn_format::{BlobId, BlobKind, PackId, SnapshotId, Timestamp};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

mod walker;
use walker::Walker;

/// Which earlier snapshot a backup compares against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot with the same host name and paths, passing over
    /// any dated more than [`MAX_CLOCK_SKEW`] ahead of this machine's clock
    /// (it would stay the newest, and so the parent, for that long).
    #[default]
    Auto,
    /// As `Auto`, but among these snapshots (those this machine wrote, as
    /// its own records say) when one of them fits: a snapshot written by
    /// another key holder under this host's name is then never the parent
    /// (SPEC.md §11.2).
    AutoAmong(Vec<SnapshotId>),
    /// This snapshot (any snapshot may be a parent: a differential backup is a
    /// choice of an older one).
    Snapshot(SnapshotId),
    /// None: every file is read.
    None,
}

/// What to record with a snapshot, and how to take it.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Host name to record; the machine's when `None`.
    pub hostname: Option<String>,
    /// Tags to record.
    pub tags: Vec<String>,
    /// The parent snapshot.
    pub parent: ParentChoice,
    /// Read every file even when the parent says it is unchanged.
    pub force: bool,
    /// What to leave out.
    pub filter: FilterOptions,
    /// Counts files and bytes as they are saved (totals: see [`estimate`]).
    pub progress: Option<Arc<Progress>>,
    /// The time to record as the snapshot's; the start of the backup when `None`.
    pub time: Option<Timestamp>,
    /// Keep this backup's files from deletion for this many days, and hold
    /// its snapshot as long, in place of the repository's retention
    /// (`Config::retain_days`, SPEC §2.6); `None` for the repository's.
    pub retain_days: Option<u32>,
}

/// An entry the backup could not read and left out.
#[derive(Debug)]
pub struct Skipped {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

/// The result of a backup.
#[derive(Debug)]
pub struct BackupReport {
    /// ID of the snapshot written.
    pub id: SnapshotId,
    /// The snapshot written.
    pub snapshot: Snapshot,
    /// Entries that could not be read.
    pub skipped: Vec<Skipped>,
}

/// Adds the regular files below `paths` that a backup with `filter` would
/// consider, and their bytes, to `progress`'s totals, then marks the totals
/// final. It only reads metadata; run it on a thread of its own beside
/// [`backup`] so that a display can show how much is left.
pub fn estimate(paths: &[PathBuf], filter: &FilterOptions, progress: &Progress) -> Result<()> {
    let filter = Filter::new(filter.clone())?;
    for path in paths {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let device = meta.dev();
            count(&filter, path, &meta, device, progress);
        }
    }
    progress.total_complete();
    Ok(())
}

fn count(filter: &Filter, path: &Path, meta: &Metadata, root_device: u64, progress: &Progress) {
    if filter.judge(path, meta, root_device) != Verdict::Include {
        return;
    }
    if meta.is_file() {
        progress.expect(1, meta.len());
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            if let Ok(m) = entry.metadata() {
                count(filter, &entry.path(), &m, root_device, progress);
            }
        }
    }
}

/// Runs `work` in a backup session (SPEC.md §15), which it ends afterwards,
/// whatever the outcome.
fn in_session<T>(
    repo: &mut Repository,
    work: impl FnOnce(&mut Repository) -> Result<T>,
) -> Result<T> {
    repo.begin_session(Operation::Backup)?;
    let result = work(repo);
    // A final record that cannot be written leaves a session that turns
    // stale; what the backup stored is complete either way.
    let _ = repo.end_session();
    result
}

/// The tags of a backup started at `started`: those asked for, and when the
/// backup is retained (SPEC §2.6), a hold for as long, unless a later one
/// is asked for. Storage is told to keep what the backup writes first: a
/// backup whose retention storage cannot keep fails before writing.
fn retained_tags(
    repo: &Repository,
    opts: &BackupOptions,
    started: Timestamp,
) -> Result<Vec<String>> {
    let mut tags = opts.tags.clone();
    let Some(days) = opts.retain_days.or(repo.config().retain_days) else {
        return Ok(tags);
    };
    if repo.config().retain_days.is_none() {
        // Its prunes would not ask storage what it keeps.
        return Err(Error::Invalid(
            "this repository was made without a retention (`init --retain-days`): \
             a backup cannot be kept from deletion in it"
                .into(),
        ));
    }
    crate::repository::check_retain_days(days)?;
    repo.backend().retain_for(days)?;
    crate::hold::hold_for(&mut tags, started, days);
    Ok(tags)
}

/// Backs up `paths` into a new snapshot.
///
/// Every path is checked before anything is written, so a missing path leaves
/// the repository untouched. Entries below the paths that cannot be read are
/// reported in [`BackupReport::skipped`] and left out. The backup runs in a
/// session of its own ([`Repository::begin_session`]), which only creates files.
pub fn backup(
    repo: &mut Repository,
    paths: &[PathBuf],
    opts: &BackupOptions,
) -> Result<BackupReport> {
    let (root, abs_paths) = sources(paths)?;
    let filter = Filter::new(opts.filter.clone())?;
    in_session(repo, |repo| {
        backup_paths(repo, root, abs_paths, filter, opts)
    })
}

/// What [`backup`] of `paths` would do, found without writing anything to
/// the repository and without reading any file's content: the files it
/// would read (new or changed since the parent) and their bytes
/// (`bytes_read`), and the entries it would find unchanged. Counts that
/// need the content (blobs and bytes added) stay zero.
pub fn dry_run(
    repo: &mut Repository,
    paths: &[PathBuf],
    opts: &BackupOptions,
) -> Result<(Summary, Vec<Skipped>)> {
    let (root, abs_paths) = sources(paths)?;
    let filter = Filter::new(opts.filter.clone())?;
    repo.load_index()?;
    let hostname = opts.hostname.clone().unwrap_or_else(sysinfo::hostname);
    let parent = find_parent(repo, &opts.parent, &hostname, &abs_paths)?;
    let mut walker = Walker::new(repo, filter, opts, true);
    walker.save_root(&root, parent.as_ref().map(|(_, s)| s.tree))?;
    let (_, summary, skipped) = walker.finish()?;
    Ok((summary, skipped))
}

/// The tree of sources of a backup of `paths`, each checked, and their
/// absolute forms, sorted.
fn sources(paths: &[PathBuf]) -> Result<(Source, Vec<Vec<u8>>)> {
    if paths.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let mut root = Source::Virtual {
        path: PathBuf::from("/"),
        children: BTreeMap::new(),
    };
    let mut abs_paths = Vec::new();
    for p in paths {
        let abs = absolute(p)?;
        insert(&mut root, &abs);
        abs_paths.push(abs.as_os_str().as_bytes().to_vec());
    }
    abs_paths.sort();
    abs_paths.dedup();
    Ok((root, abs_paths))
}

/// Backs up `root`, whose paths are checked.
fn backup_paths(
    repo: &mut Repository,
    root: Source,
    abs_paths: Vec<Vec<u8>>,
    filter: Filter,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    let started = Timestamp::now();
    let tags = retained_tags(repo, opts, started)?;
    let hostname = opts.hostname.clone().unwrap_or_else(sysinfo::hostname);
    let parent = find_parent(repo, &opts.parent, &hostname, &abs_paths)?;
    let mut walker = Walker::new(repo, filter, opts, false);
    let tree = walker.save_root(&root, parent.as_ref().map(|(_, s)| s.tree))?;
    let reused = walker.reused_packs();
    let (written, summary, skipped) = walker.finish()?;
    let draft = Draft {
        started,
        time: opts.time.unwrap_or(started),
        hostname,
        paths: abs_paths,
        tags,
        parent: parent.map(|(id, _)| id),
        tree,
        summary,
        skipped,
    };
    commit(repo, written, reused, draft)
}

/// Where the bytes of a stream backup come from.
pub enum StreamSource {
    /// Any reader, such as standard input.
    Reader(Box<dyn Read + Send>),
    /// The standard output of this command (program and arguments). If the
    /// command fails, no snapshot is saved.
    Command(Vec<OsString>),
}

/// Backs up one stream as a file named `filename` at the root of a new snapshot
/// (for database dumps and anything else that writes to a pipe).
pub fn backup_stream(
    repo: &mut Repository,
    source: StreamSource,
    filename: &str,
    opts: &BackupOptions,
) -> Result<BackupReport> {
    backup_stream_then(repo, source, filename, opts, |_, _| Ok(()))
}

/// Like [`backup_stream`], with `finish` called once the whole stream is
/// read and before the snapshot is written: it may look at the repository
/// and add tags learnt from the stream (a database's position in its log,
/// say), and its error leaves no snapshot.
pub fn backup_stream_then(
    repo: &mut Repository,
    source: StreamSource,
    filename: &str,
    opts: &BackupOptions,
    finish: impl FnOnce(&Repository, &mut Vec<String>) -> Result<()>,
) -> Result<BackupReport> {
    if !is_valid_name(filename.as_bytes()) {
        return Err(Error::Invalid(format!(
            "invalid stream file name {filename:?}: give a plain name without `/`"
        )));
    }
    in_session(repo, |repo| {
        backup_one_stream(repo, source, filename, opts, finish)
    })
}

/// Backs up one stream as `filename`, a valid name.
fn backup_one_stream(
    repo: &mut Repository,
    source: StreamSource,
    filename: &str,
    opts: &BackupOptions,
    finish: impl FnOnce(&Repository, &mut Vec<String>) -> Result<()>,
) -> Result<BackupReport> {
    let started = Timestamp::now();
    let mut tags = retained_tags(repo, opts, started)?;
    let paths = vec![format!("/{filename}").into_bytes()];
    let hostname = opts.hostname.clone().unwrap_or_else(sysinfo::hostname);
    let parent = find_parent(repo, &opts.parent, &hostname, &paths)?;
    let chunker = Chunker::new(repo.keys(), &repo.config().chunker);
    let mut writer = PackWriter::new(repo);
    let (content, size) = match source {
        StreamSource::Reader(reader) => {
            save_stream(&mut writer, &chunker, reader, "standard input")?
        }
        StreamSource::Command(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(Error::Invalid("no command given to read from".into()));
            };
            let shown = argv
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ");
            let mut child = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| Error::io(format!("cannot run {shown:?}"), e))?;
            let stdout = child.stdout.take().expect("stdout is piped");
            let saved = save_stream(&mut writer, &chunker, stdout, &shown);
            let status = child
                .wait()
                .map_err(|e| Error::io(format!("cannot wait for {shown:?}"), e))?;
            let saved = saved?;
            if !status.success() {
                return Err(Error::Invalid(format!(
                    "command {shown:?} failed ({status}): no snapshot was saved"
                )));
            }
            saved
        }
    };
    finish(repo, &mut tags)?;
    let now = Timestamp::now();
    let (uid, gid) = sysinfo::ids();
    let mut names = NameCache::default();
    let node = Node {
        name: filename.as_bytes().to_vec(),
        kind: NodeKind::File { content },
        mode: 0o644,
        uid,
        gid,
        user: names.user(uid),
        group: names.group(gid),
        mtime: now,
        ctime: now,
        size,
        inode: 0,
        device: 0,
        links: 1,
        xattrs: Vec::new(),
    };
    let tree = save_tree(&mut writer, vec![node])?;
    let summary = Summary {
        files_new: 1,
        bytes_read: size,
        total_size: size,
        ..Summary::default()
    };
    let draft = Draft {
        started,
        time: opts.time.unwrap_or(started),
        hostname,
        paths,
        tags,
        parent: parent.map(|(id, _)| id),
        tree,
        summary,
        skipped: Vec::new(),
    };
    let reused = writer.reused_packs();
    let written = writer.finish()?;
    commit(repo, written, reused, draft)
}

fn save_stream(
    writer: &mut PackWriter<'_>,
    chunker: &Chunker,
    reader: impl Read,
    what: &str,
) -> Result<(Vec<BlobId>, u64)> {
    let mut content = Vec::new();
    let mut size = 0;
    for chunk in chunker.chunks(reader) {
        let chunk = chunk.map_err(|e| Error::io(format!("cannot read {what}"), e))?;
        size += chunk.len() as u64;
        content.push(writer.save(BlobKind::Data, chunk)?);
    }
    Ok((content, size))
}

/// Indexes `packs`, the packs a writer stored, once they and the packs
/// `reused` from the index are all confirmed on storage, so that snapshots
/// using them can be written next. `what` names the operation for messages.
/// Nothing is committed by a session that has not kept its lock records
/// fresh (SPEC.md §15.1, §15.5).
pub(crate) fn commit_packs(
    repo: &mut Repository,
    packs: Vec<IndexPack>,
    reused: HashSet<PackId>,
    what: &str,
) -> Result<()> {
    repo.session().map_or(Ok(()), |s| s.check_fresh())?;
    // The snapshot needs the packs it shares with earlier ones as long as
    // those it wrote, where storage keeps files (SPEC §2.6).
    let shared: Vec<String> = reused.iter().map(|p| p.to_hex()).collect();
    repo.backend().keep(FileKind::Pack, &shared)?;
    let mut used = reused;
    used.extend(packs.iter().map(|p| p.id));
    // Before the index, so that a failed operation leaves no index file
    // naming a pack that is gone, which later backups would deduplicate
    // against; after it, because from then on a prune that lists the index
    // keeps the packs.
    session::confirm_packs(repo, &used, what)?;
    match repo.save_index(packs)? {
        Some(_) => session::confirm_packs(repo, &used, what),
        // No index file written: nothing changed since the confirmation.
        None => Ok(()),
    }
}

/// Everything a snapshot records that the backup gathered.
struct Draft {
    started: Timestamp,
    time: Timestamp,
    hostname: String,
    paths: Vec<Vec<u8>>,
    tags: Vec<String>,
    parent: Option<SnapshotId>,
    tree: BlobId,
    summary: Summary,
    skipped: Vec<Skipped>,
}

/// The last steps of every backup, in the order that keeps the repository
/// valid at any instant: the packs are written (by `finish`), then the index
/// that lists them, then the snapshot. Nothing is committed by a session
/// that has not kept its lock records fresh, nor once a pack the snapshot
/// would use (written, or `reused` from the index) is gone: a prune that
/// took the session for over may have deleted it (SPEC.md §15.5).
fn commit(
    repo: &mut Repository,
    (packs, stats): Written,
    reused: HashSet<PackId>,
    draft: Draft,
) -> Result<BackupReport> {
    commit_packs(repo, packs, reused, "backup")?;
    let mut summary = draft.summary;
    summary.data_blobs_added = stats.data_blobs;
    summary.tree_blobs_added = stats.tree_blobs;
    summary.bytes_added = stats.bytes;
    summary.bytes_added_stored = stats.bytes_stored;
    summary.started = draft.started;
    summary.finished = Timestamp::now();
    let (uid, gid) = sysinfo::ids();
    let snapshot = Snapshot {
        version: 1,
        time: draft.time,
        hostname: draft.hostname,
        username: sysinfo::username(),
        uid,
        gid,
        paths: draft.paths,
        tags: draft.tags,
        tree: draft.tree,
        parent: draft.parent,
        summary,
        skipped: draft
            .skipped
            .iter()
            .map(|s| SkippedEntry {
                path: s.path.as_os_str().as_bytes().to_vec(),
                reason: s.error.to_string(),
            })
            .collect(),
        program: concat!("cairn ", env!("CARGO_PKG_VERSION")).into(),
    };
    let id = repo.save_snapshot(&snapshot)?;
    if let Some(cache) = repo.parent_cache() {
        // Only the next backup's speed depends on it.
        let _ = cache.finish(&id, &snapshot);
    }
    Ok(BackupReport {
        id,
        snapshot,
        skipped: draft.skipped,
    })
}

/// Stores a tree of `nodes`; a put-only key also remembers it for its next
/// backup.
fn save_tree(writer: &mut PackWriter<'_>, nodes: Vec<Node>) -> Result<BlobId> {
    let encoded = Tree::new(nodes).encode();
    match writer.repo().parent_cache() {
        None => writer.save(BlobKind::Tree, encoded),
        Some(cache) => {
            let id = writer.save(BlobKind::Tree, encoded.clone())?;
            cache.keep_tree(&id, &encoded);
            Ok(id)
        }
    }
}

/// The snapshot to compare against, if any. A put-only key reads no
/// snapshot: its parent is the last backup of these paths it remembers.
fn find_parent(
    repo: &Repository,
    choice: &ParentChoice,
    hostname: &str,
    paths: &[Vec<u8>],
) -> Result<Option<(SnapshotId, Snapshot)>> {
    if let Some(cache) = repo.parent_cache() {
        let remembered = cache.start(hostname, paths);
        return match choice {
            ParentChoice::None => Ok(None),
            ParentChoice::Snapshot(id) => Err(Error::Invalid(format!(
                "a put-only key cannot take snapshot {id} as the parent: it cannot read it"
            ))),
            ParentChoice::Auto | ParentChoice::AutoAmong(_) => Ok(remembered),
        };
    }
    match choice {
        ParentChoice::None => Ok(None),
        ParentChoice::Snapshot(id) => Ok(Some((*id, repo.load_snapshot(id)?))),
        ParentChoice::Auto => newest_fitting(repo, hostname, paths, |_| true),
        ParentChoice::AutoAmong(own) => {
            let own: HashSet<&SnapshotId> = own.iter().collect();
            match newest_fitting(repo, hostname, paths, |id| own.contains(id))? {
                Some(found) => Ok(Some(found)),
                None => newest_fitting(repo, hostname, paths, |_| true),
            }
        }
    }
}

/// The newest snapshot that `allowed` admits with this host name and these
/// paths and that is not dated in the future. A damaged old snapshot must
/// not stop new backups: it is passed over.
fn newest_fitting(
    repo: &Repository,
    hostname: &str,
    paths: &[Vec<u8>],
    allowed: impl Fn(&SnapshotId) -> bool,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    let latest = Timestamp::now()
        .secs
        .saturating_add(MAX_CLOCK_SKEW.as_secs() as i64);
    Ok(repo
        .readable_snapshots()?
        .0
        .into_iter()
        .rev()
        .find(|(id, s)| {
            s.hostname == hostname && s.paths == paths && s.time.secs <= latest && allowed(id)
        }))
}

/// The absolute form of a path to back up, without following a final symlink.
fn absolute(p: &Path) -> Result<PathBuf> {
    let err = |e| Error::SourcePath(p.to_path_buf(), e);
    let abs = match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent.canonicalize().map_err(err)?.join(name)
        }
        _ => p.canonicalize().map_err(err)?,
    };
    std::fs::symlink_metadata(&abs).map_err(err)?;
    Ok(abs)
}

/// The root of a snapshot mirrors absolute paths: `/home/ann/docs` becomes
/// `home` → `ann` → `docs`, the directories above a backed-up path being
/// recorded with their own metadata only.
enum Source {
    Real(PathBuf),
    Virtual {
        path: PathBuf,
        children: BTreeMap<Vec<u8>, Source>,
    },
}

fn insert(root: &mut Source, abs: &Path) {
    let names: Vec<&OsStr> = abs
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        *root = Source::Real(abs.to_path_buf());
        return;
    }
    let mut node = root;
    let mut here = PathBuf::from("/");
    for (i, name) in names.iter().enumerate() {
        here.push(name);
        let children = match node {
            Source::Real(_) => return, // already covered by a path above it
            Source::Virtual { children, .. } => children,
        };
        let key = name.as_bytes().to_vec();
        if i + 1 == names.len() {
            children.insert(key, Source::Real(here.clone()));
            return;
        }
        node = children.entry(key).or_insert_with(|| Source::Virtual {
            path: here.clone(),
            children: BTreeMap::new(),
        });
    }
}
