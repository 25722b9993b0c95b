//! The key files of a repository: several passwords for the same master
//! secrets (SPEC.md §3).
//!
//! Adding a key writes one new key file, removing one deletes one file, and
//! changing the password does both, the new file first, so that a crash in
//! between leaves both passwords working, never neither. No other object
//! changes.
//!
//! A key file's KDF parameters are in the clear, but who made it and when is
//! sealed under its own password: [`list`] knows that only for the key the
//! repository was opened with.
//!
//! ```
//! use cairn_engine::{backend::LocalBackend, keys, InitOptions, Repository};
//! use cairn_format::key::KdfParams;
//! let dir = tempfile::tempdir().unwrap();
//! let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
//! let repo = Repository::init(LocalBackend::new(dir.path()), b"old", &opts).unwrap();
//! keys::add(&repo, b"second", KdfParams::argon2id(64, 1, 1)).unwrap();
//! assert_eq!(keys::list(&repo).unwrap().len(), 2);
//! assert!(Repository::open(LocalBackend::new(dir.path()), b"second").is_ok());
//! ```

use crate::backend::unique_prefix;
use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::repository::{seal_key, Repository};
use cairn_format::crypto::MasterKeys;
use cairn_format::key::{read_key_header, KdfParams, KeyInfo};
use cairn_format::keyring::{Keyring, Role};
use cairn_format::KeyId;
use std::sync::Arc;

/// One key file, as far as it can be known without its password.
#[derive(Debug)]
pub struct KeyEntry {
    /// The key file's ID (the hash of its bytes).
    pub id: KeyId,
    /// Its key derivation parameters and role (stored in the clear), or why
    /// they cannot be read (a damaged or malformed file).
    pub kdf: Result<(KdfParams, Role)>,
    /// Who made it and when. This is sealed under the key's own password,
    /// so it is known only for the key in use.
    pub info: Option<KeyInfo>,
    /// True for the key file the repository was opened with.
    pub current: bool,
}

/// Every key file, in the order of their IDs.
pub fn list(repo: &Repository) -> Result<Vec<KeyEntry>> {
    let current = repo.key_id();
    let mut ids = repo.key_ids()?;
    ids.sort();
    Ok(ids
        .into_iter()
        .map(|id| {
            let in_use = current == Some(id);
            KeyEntry {
                id,
                kdf: read_kdf(repo, &id),
                info: if in_use {
                    repo.key_info().cloned()
                } else {
                    None
                },
                current: in_use,
            }
        })
        .collect())
}

/// The clear-text KDF parameters and role of key file `id`, after checking
/// its hash.
pub(crate) fn read_kdf(repo: &Repository, id: &KeyId) -> Result<(KdfParams, Role)> {
    let bytes = repo.read_verified(FileKind::Key, &id.to_hex())?;
    let (header, _) =
        read_key_header(&bytes).map_err(|e| Error::format(format!("key file {id}"), e))?;
    Ok((header.kdf, header.role))
}

/// Finds a key file by its full ID or a unique prefix of it; the error names
/// `text`.
pub fn find(repo: &Repository, text: &str) -> Result<KeyId> {
    let names = repo.key_ids()?.iter().map(|id| id.to_hex()).collect();
    match unique_prefix(names, text) {
        Ok(Some(one)) => Ok(KeyId::from_hex(&one).expect("key IDs are hex")),
        Ok(None) => Err(Error::Invalid(format!("no key matches {text:?}"))),
        Err(many) => Err(Error::Invalid(format!(
            "key prefix {text:?} is ambiguous: it matches {many} keys"
        ))),
    }
}

/// Adds a key file that opens the repository with `new_password`; returns
/// its ID. The file is durable when this returns.
pub fn add(repo: &Repository, new_password: &[u8], kdf: KdfParams) -> Result<KeyId> {
    repo.full_key("add keys")?;
    write_key(repo, repo.keys(), new_password, kdf).map(|(id, _)| id)
}

/// Adds a put-only key file (SPEC.md §3.6) that opens the repository with
/// `new_password`: with it, backups work and deduplicate, but nothing
/// sealed in the repository can be read back. Only for a repository with
/// key epochs (made with a version-2 config).
pub fn add_put_only(repo: &Repository, new_password: &[u8], kdf: KdfParams) -> Result<KeyId> {
    repo.full_key("add keys")?;
    let keys = repo.keys();
    let keyring = keyring(repo)?;
    let put_only = MasterKeys {
        repo_id: keys.repo_id,
        data_key: [0; 32],
        id_key: keys.id_key,
        chunker_key: keys.chunker_key,
        padding: keys.padding,
        keyring: Some(Arc::new(keyring.put_only())),
    };
    write_key(repo, &put_only, new_password, kdf).map(|(id, _)| id)
}

/// The key epochs of the key in use; an error for a repository made before
/// them (with a version-1 config).
pub(crate) fn keyring(repo: &Repository) -> Result<&Arc<Keyring>> {
    repo.keys().keyring.as_ref().ok_or_else(|| {
        Error::Invalid(
            "this repository was made before key roles and epochs (its config is of version 1): \
             make a new one with `cairn init` and `cairn copy` into it"
                .into(),
        )
    })
}

/// Writes a key file for `password` that holds `keys`; returns its ID and
/// metadata.
pub(crate) fn write_key(
    repo: &Repository,
    keys: &MasterKeys,
    password: &[u8],
    kdf: KdfParams,
) -> Result<(KeyId, KeyInfo)> {
    if password.is_empty() {
        return Err(Error::Invalid("the new password is empty".into()));
    }
    let (file, info) = seal_key(keys, password, kdf)?;
    Ok((KeyId(repo.store_file(FileKind::Key, &file)?), info))
}

/// Removes key file `id`. Refuses to remove the only key file (nothing could
/// open the repository any more) and the key the repository was opened with
/// (so that a password is never removed by one who does not know another).
///
/// Two processes that each remove the other's key at the same time can still
/// leave none: key files are not locked.
pub fn remove(repo: &Repository, id: &KeyId) -> Result<()> {
    repo.full_key("remove keys")?;
    let ids = repo.key_ids()?;
    if !ids.contains(id) {
        return Err(Error::Invalid(format!("no key file {id}")));
    }
    if ids.len() == 1 {
        return Err(Error::Invalid(format!(
            "key {} is the only key: without it nothing can open the repository",
            id.short()
        )));
    }
    if repo.key_id() == Some(*id) {
        return Err(Error::Invalid(format!(
            "cannot remove key {}: it is the key in use; open the repository with another password first",
            id.short()
        )));
    }
    repo.backend().remove(FileKind::Key, &id.to_hex())
}

/// Changes the password of the key in use: adds a key file for
/// `new_password`, then removes the old one. A crash in between leaves both
/// keys working. Afterwards the repository counts the new key as in use;
/// returns its ID.
pub fn change_password(
    repo: &mut Repository,
    new_password: &[u8],
    kdf: KdfParams,
) -> Result<KeyId> {
    repo.full_key("change keys")?;
    let old = repo
        .key_id()
        .ok_or_else(|| Error::Invalid("the key in use is not known".into()))?;
    let (new, info) = write_key(repo, repo.keys(), new_password, kdf)?;
    repo.backend()
        .remove(FileKind::Key, &old.to_hex())
        .map_err(|e| {
            Error::Invalid(format!(
                "key {new} was added, but the old key {old} could not be removed: {e}"
            ))
        })?;
    repo.set_key(new, info);
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use crate::InitOptions;
    use std::path::Path;

    fn cheap() -> KdfParams {
        KdfParams::argon2id(64, 1, 1)
    }

    fn init(dir: &Path) -> Repository {
        let opts = InitOptions {
            kdf: cheap(),
            ..Default::default()
        };
        Repository::init(LocalBackend::new(dir), b"first", &opts).unwrap()
    }

    fn open(dir: &Path, password: &[u8]) -> Result<Repository> {
        Repository::open_keys(LocalBackend::new(dir), password)
    }

    #[test]
    fn added_key_opens_and_list_marks_the_one_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let repo = init(dir.path());
        let first = repo.key_id().unwrap();
        let second = add(&repo, b"second", KdfParams::argon2id(72, 2, 1)).unwrap();
        let opened = open(dir.path(), b"second").unwrap();
        assert_eq!(opened.key_id(), Some(second));
        assert_eq!(opened.config().repo_id, repo.config().repo_id);
        assert_eq!(open(dir.path(), b"first").unwrap().key_id(), Some(first));

        let entries = list(&opened).unwrap();
        assert_eq!(entries.len(), 2);
        for e in &entries {
            assert_eq!(e.current, e.id == second);
            assert_eq!(e.info.is_some(), e.id == second);
            let (kdf, role) = e.kdf.as_ref().unwrap();
            assert_eq!(*role, Role::Full);
            let expected = if e.id == second { (72, 2) } else { (64, 1) };
            assert_eq!((kdf.memory_kib, kdf.iterations), expected);
        }
        assert!(add(&repo, b"", cheap()).is_err());
    }

    #[test]
    fn remove_refuses_the_key_in_use_and_the_last_key() {
        let dir = tempfile::tempdir().unwrap();
        let repo = init(dir.path());
        let first = repo.key_id().unwrap();
        let err = remove(&repo, &first).unwrap_err().to_string();
        assert!(err.contains("only key"), "{err}");
        let second = add(&repo, b"second", cheap()).unwrap();
        let err = remove(&repo, &first).unwrap_err().to_string();
        assert!(err.contains("key in use"), "{err}");
        assert_eq!(repo.key_ids().unwrap().len(), 2);
        remove(&repo, &second).unwrap();
        assert_eq!(repo.key_ids().unwrap(), vec![first]);
        assert!(matches!(
            open(dir.path(), b"second"),
            Err(Error::WrongPassword)
        ));
        assert!(remove(&repo, &second).is_err());
    }

    #[test]
    fn change_password_replaces_the_key_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = init(dir.path());
        let old = repo.key_id().unwrap();
        let new = change_password(&mut repo, b"new", cheap()).unwrap();
        assert_ne!(new, old);
        assert_eq!(repo.key_id(), Some(new));
        assert_eq!(repo.key_ids().unwrap(), vec![new]);
        assert!(matches!(
            open(dir.path(), b"first"),
            Err(Error::WrongPassword)
        ));
        assert_eq!(open(dir.path(), b"new").unwrap().key_id(), Some(new));
    }

    #[test]
    fn find_takes_a_unique_prefix_and_names_what_matches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = init(dir.path());
        let first = repo.key_id().unwrap();
        let hex = first.to_hex();
        assert_eq!(find(&repo, &hex).unwrap(), first);
        assert_eq!(find(&repo, &hex[..3].to_uppercase()).unwrap(), first);
        for bad in ["", "xyz", &format!("{hex}0")] {
            let err = find(&repo, bad).unwrap_err().to_string();
            assert!(err.contains(&format!("no key matches {bad:?}")), "{err}");
        }
    }
}
