//! PostgreSQL's write-ahead log archive (SPEC.md §19): the files a
//! cluster's `archive_command` hands over, each sealed in `wal/` under its
//! cluster and its own name, so that archiving reads no index, takes no
//! lock, and `restore_command` finds a file with one read.
//!
//! ```
//! use cairn_engine::{backend::LocalBackend, wal, InitOptions, Repository};
//! use cairn_format::key::KdfParams;
//! let dir = tempfile::tempdir().unwrap();
//! let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
//! let repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
//! let name = "000000010000000000000001";
//! assert_eq!(wal::archive(&repo, "main", name, b"log").unwrap(), wal::Archived::Stored);
//! assert_eq!(wal::archive(&repo, "main", name, b"log").unwrap(), wal::Archived::AlreadyThere);
//! assert!(wal::archive(&repo, "main", name, b"other").is_err());
//! assert_eq!(wal::fetch(&repo, "main", name).unwrap().unwrap(), b"log");
//! assert!(wal::fetch(&repo, "main", "00000002.history").unwrap().is_none());
//! ```

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::repository::Repository;
use cairn_format::keyring::Role;
use cairn_format::wal::{self, WalHeader, WalName, MAX_WAL_FILE_LEN};
use cairn_format::Timestamp;
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

/// What [`archive`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Archived {
    /// The file was stored.
    Stored,
    /// The same bytes were archived before under this name; nothing was written.
    AlreadyThere,
}

/// The storage name of the archived file `name` of `cluster`, once both are
/// checked.
fn stored_name(repo: &Repository, cluster: &str, name: &str) -> Result<String> {
    checked(cluster, name)?;
    Ok(wal::storage_name(repo.keys(), cluster, name))
}

/// Checks a cluster name and a file name before they name anything.
fn checked<'a>(cluster: &str, name: &'a str) -> Result<WalName<'a>> {
    if !wal::valid_cluster(cluster) {
        return Err(Error::Invalid(format!(
            "invalid cluster name {cluster:?}: use 1 to {} letters, digits, `-`, `_` or `.`",
            wal::MAX_CLUSTER_LEN
        )));
    }
    WalName::parse(name).ok_or_else(|| {
        Error::Invalid(format!(
            "{name:?} is not the name of a WAL segment, history or backup file"
        ))
    })
}

/// Archives `content` as the file `name` of `cluster`. A file archived
/// before under that name is left as it is: the same bytes are
/// [`Archived::AlreadyThere`], other bytes are an error (PostgreSQL's
/// contract for `archive_command`).
pub fn archive(repo: &Repository, cluster: &str, name: &str, content: &[u8]) -> Result<Archived> {
    archive_with(repo, cluster, name, content.len() as u64, || Ok(content))
}

/// Like [`archive`], reading the file at `path` as it is compressed (the
/// file is read whole only to compare it with one archived before).
pub fn archive_file(repo: &Repository, cluster: &str, name: &str, path: &Path) -> Result<Archived> {
    let io = |e| Error::io(format!("cannot read {}", path.display()), e);
    let len = std::fs::metadata(path).map_err(io)?.len();
    archive_with(repo, cluster, name, len, || File::open(path).map_err(io))
}

/// Archives the `len` bytes `open` gives; see [`archive`].
fn archive_with<R: Read>(
    repo: &Repository,
    cluster: &str,
    name: &str,
    len: u64,
    open: impl Fn() -> Result<R>,
) -> Result<Archived> {
    checked(cluster, name)?;
    if len > MAX_WAL_FILE_LEN as u64 {
        return Err(Error::Invalid(format!(
            "WAL file {name} is {len} bytes, more than the largest segment PostgreSQL makes (1 GiB)"
        )));
    }
    let read_error = |e| Error::io(format!("cannot read WAL file {name}"), e);
    if repo.role() == Role::PutOnly {
        // It cannot read the stored file to compare: a file of this name is
        // taken to be this one (PostgreSQL archives a name again only after
        // a crash, with the same content; SPEC §19.3).
        match repo
            .backend()
            .read(FileKind::Wal, &stored_name(repo, cluster, name)?)
        {
            Ok(_) => return Ok(Archived::AlreadyThere),
            Err(Error::Missing(_)) => {}
            Err(e) => return Err(e),
        }
    } else if let Some(stored) = fetch(repo, cluster, name)? {
        let mut content = Vec::new();
        open()?.read_to_end(&mut content).map_err(read_error)?;
        return match stored == content {
            true => Ok(Archived::AlreadyThere),
            false => Err(Error::Invalid(format!(
                "WAL file {name} of cluster {cluster} is already archived with other content; \
                 the archived file is kept as it is (is another cluster archiving \
                 under the same cluster name?)"
            ))),
        };
    }
    let header = WalHeader {
        version: 1,
        cluster: cluster.to_string(),
        name: name.to_string(),
        archived: Timestamp::now(),
    };
    let level = repo.config().compression.zstd_level();
    let sealed = header
        .seal_from(open()?, len, repo.keys(), level)
        .map_err(read_error)?;
    repo.backend()
        .create(FileKind::Wal, &stored_name(repo, cluster, name)?, &sealed)?;
    Ok(Archived::Stored)
}

/// The archived file `name` of `cluster`, authenticated; `None` when it
/// was never archived (or was removed).
pub fn fetch(repo: &Repository, cluster: &str, name: &str) -> Result<Option<Vec<u8>>> {
    let stored = stored_name(repo, cluster, name)?;
    let bytes = match repo.backend().read(FileKind::Wal, &stored) {
        Ok(bytes) => bytes,
        Err(Error::Missing(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let what = || format!("WAL file {name} of cluster {cluster}");
    let (header, content) =
        WalHeader::open(&bytes, repo.keys()).map_err(|e| Error::format(what(), e))?;
    if header.cluster != cluster || header.name != name {
        return Err(Error::Invalid(format!(
            "{}: the repository holds {} of cluster {} in its place: it was tampered with",
            what(),
            header.name,
            header.cluster
        )));
    }
    Ok(Some(content))
}

/// The names of the archived files of `cluster`, in name order.
pub fn list(repo: &Repository, cluster: &str) -> Result<Vec<String>> {
    let tag = wal::cluster_tag(repo.keys(), cluster);
    let mut names: Vec<String> = repo
        .backend()
        .list(FileKind::Wal)?
        .iter()
        .filter_map(|stored| match wal::split_storage_name(stored) {
            Some((t, name)) if t == tag => Some(name.name.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Reads and authenticates every file of every cluster's archive, and
/// checks each is stored under its own name; returns how many files there
/// are and the problems found.
pub fn verify(repo: &Repository) -> Result<(usize, Vec<Error>)> {
    let stored = repo.backend().list(FileKind::Wal)?;
    let mut problems = Vec::new();
    for name in &stored {
        let checked = repo.backend().read(FileKind::Wal, name).and_then(|bytes| {
            let (header, _) = WalHeader::open(&bytes, repo.keys())
                .map_err(|e| Error::format(format!("WAL file {name}"), e))?;
            match wal::storage_name(repo.keys(), &header.cluster, &header.name) == *name {
                true => Ok(()),
                false => Err(Error::Invalid(format!(
                    "WAL file {name} holds {} of cluster {}: it was moved or tampered with",
                    header.name, header.cluster
                ))),
            }
        });
        if let Err(e) = checked {
            problems.push(e);
        }
    }
    Ok((stored.len(), problems))
}

/// Seals again, in place, every archived file sealed in a key epoch before
/// `current` (a key rotation's rewrite, [`crate::rotate`]); returns how
/// many. A replacement is atomic, so a file is always one sealing or the other.
pub(crate) fn reseal(repo: &Repository, current: u32) -> Result<usize> {
    let mut resealed = 0;
    for name in repo.backend().list(FileKind::Wal)? {
        let bytes = repo.backend().read(FileKind::Wal, &name)?;
        if cairn_format::keyring::sealed_epoch(&bytes).is_some_and(|e| e >= current) {
            continue;
        }
        let (header, content) = WalHeader::open(&bytes, repo.keys())
            .map_err(|e| Error::format(format!("WAL file {name}"), e))?;
        let level = repo.config().compression.zstd_level();
        let sealed = header
            .seal_from(&content[..], content.len() as u64, repo.keys(), level)
            .map_err(|e| Error::io(format!("cannot seal WAL file {name} again"), e))?;
        repo.backend().replace(FileKind::Wal, &name, &sealed)?;
        resealed += 1;
    }
    Ok(resealed)
}

/// When storage received the archived file `name` of `cluster`.
pub fn archived_at(repo: &Repository, cluster: &str, name: &str) -> Result<SystemTime> {
    let stored = stored_name(repo, cluster, name)?;
    repo.backend().modified(FileKind::Wal, &stored)
}

/// Whether storage keeps the archived file `name` of `cluster` from
/// deletion now (S3 Object Lock, SPEC §2.6).
pub fn retained(repo: &Repository, cluster: &str, name: &str) -> Result<bool> {
    let stored = stored_name(repo, cluster, name)?;
    let until = repo.backend().retained_until(FileKind::Wal, &stored)?;
    Ok(until.is_some_and(|t| t > SystemTime::now()))
}

/// Removes the archived file `name` of `cluster`.
pub fn remove(repo: &Repository, cluster: &str, name: &str) -> Result<()> {
    let stored = stored_name(repo, cluster, name)?;
    repo.backend().remove(FileKind::Wal, &stored)
}

/// Copies the archived files of `cluster` that `dst` lacks from `src`, each
/// authenticated in `src` and sealed again for `dst`; returns how many.
pub fn copy(src: &Repository, dst: &Repository, cluster: &str) -> Result<usize> {
    let present: HashSet<String> = list(dst, cluster)?.into_iter().collect();
    let mut copied = 0;
    for name in list(src, cluster)? {
        if present.contains(&name) {
            continue;
        }
        let content = fetch(src, cluster, &name)?
            .ok_or_else(|| Error::Missing(format!("WAL file {name} of cluster {cluster}")))?;
        archive(dst, cluster, &name, &content)?;
        copied += 1;
    }
    Ok(copied)
}
