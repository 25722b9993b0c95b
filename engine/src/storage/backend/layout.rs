//! Where each repository file lives below the repository's root: the same
//! names on every backend (SPEC §2), as `/`-separated relative paths.

use super::FileKind;
use crate::error::{Error, Result};

/// The directories below the root that hold files other than the config.
pub(crate) const DIRS: [&str; 9] = [
    "keys",
    "data",
    "index",
    "snapshots",
    "locks",
    "marks",
    "journal",
    "audit",
    "wal",
];

/// True when `name` is a file name the repository uses: 64 lowercase hex digits.
pub(crate) fn is_hex_id(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `name` is a name files of `kind` have: an ID, or for the WAL
/// archive a cluster tag and a PostgreSQL file name (SPEC §19.1).
pub(crate) fn valid_name(kind: FileKind, name: &str) -> bool {
    match kind {
        FileKind::Wal => cairn_format::wal::split_storage_name(name).is_some(),
        _ => is_hex_id(name),
    }
}

/// The directory holding `name` of `kind`, relative to the root (empty for
/// the root itself): packs fan out into `data/<first 2 hex digits>/`.
pub(crate) fn dir(kind: FileKind, name: &str) -> String {
    match kind {
        FileKind::Config => String::new(),
        FileKind::Key => "keys".into(),
        FileKind::Pack => format!("data/{}", name.get(..2).unwrap_or("00")),
        FileKind::Index => "index".into(),
        FileKind::Snapshot => "snapshots".into(),
        FileKind::Lock => "locks".into(),
        FileKind::Mark => "marks".into(),
        FileKind::Journal => "journal".into(),
        FileKind::Audit => "audit".into(),
        FileKind::Wal => "wal".into(),
    }
}

/// The path of `name` of `kind` relative to the root. A name that is not an
/// ID is refused, so that no name can reach outside its directory.
pub(crate) fn path(kind: FileKind, name: &str) -> Result<String> {
    match kind {
        FileKind::Config => Ok("config".into()),
        _ if valid_name(kind, name) => Ok(format!("{}/{name}", dir(kind, name))),
        _ => Err(Error::Invalid(format!(
            "invalid {} name {name:?}",
            kind.name()
        ))),
    }
}

/// The name of the file of `kind` at `path` (relative to the root), when
/// `path` is where a file of that kind belongs; `None` for anything else.
pub(crate) fn name_at(kind: FileKind, path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let expected = self::path(kind, name).ok()?;
    (expected == path && kind != FileKind::Config).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_fan_out_and_other_names_are_refused() {
        let id = "ab".repeat(32);
        assert_eq!(path(FileKind::Pack, &id).unwrap(), format!("data/ab/{id}"));
        assert_eq!(path(FileKind::Config, "x").unwrap(), "config");
        assert!(path(FileKind::Key, "../config").is_err());
        assert!(path(FileKind::Key, &id.to_uppercase()).is_err());
        let wal = "0123456789abcdef.000000010000000000000002";
        assert_eq!(path(FileKind::Wal, wal).unwrap(), format!("wal/{wal}"));
        assert!(path(FileKind::Wal, "0123456789abcdef.../x").is_err());
        assert!(path(FileKind::Key, wal).is_err());
        assert_eq!(
            name_at(FileKind::Pack, &format!("data/ab/{id}")),
            Some(&*id)
        );
        assert_eq!(name_at(FileKind::Pack, &format!("data/cd/{id}")), None);
        assert_eq!(name_at(FileKind::Key, &format!("keys/{id}")), Some(&*id));
        assert_eq!(name_at(FileKind::Key, &format!("keys/x/{id}")), None);
        assert_eq!(name_at(FileKind::Index, "index/.tmp-1"), None);
    }
}
