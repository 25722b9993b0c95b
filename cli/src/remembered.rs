//! What this machine remembers about each repository it used, in
//! `$XDG_CACHE_HOME/cairn/repos/<location hash>/` (or `~/.cache/...`):
//!
//! - `key`: the key file that last opened it, tried first the next time, so
//!   that key files planted in the repository do not cost an open their key
//!   derivations (SPEC.md §3.4);
//! - `snapshots`: the snapshots backups from here wrote, among which a backup
//!   picks its parent, so that a snapshot another key holder wrote under this
//!   host's name is not taken as one (SPEC.md §11.2).
//!
//! - `parents/`: for a put-only key, which cannot read snapshots back, the
//!   last snapshot and trees of each set of paths it backed up, sealed under
//!   a secret of its key file (`cairn_engine::parent_cache`).
//!
//! The first two are not secret (both are file names in storage), and
//! losing any of them only costs time or that protection: everything here
//! is best effort.

use cairn_format::{KeyId, SnapshotId};
use std::path::{Path, PathBuf};

/// Snapshot IDs kept: far more than any retention policy keeps of one machine.
const SNAPSHOTS_KEPT: usize = 4096;

/// The user's cache folder: `$XDG_CACHE_HOME`, or `~/.cache`; none when
/// no home is known.
pub fn cache_home() -> Option<PathBuf> {
    xdg_home("XDG_CACHE_HOME", ".cache")
}

/// The folder the XDG variable `var` names, or else `fallback` in the
/// home folder; none when neither is known.
pub fn xdg_home(var: &str, fallback: &str) -> Option<PathBuf> {
    let value = |name| {
        std::env::var_os(name)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    };
    value(var).or_else(|| Some(value("HOME")?.join(fallback)))
}

/// Where what is remembered of the repository at `location` is kept.
fn dir(location: &str) -> Option<PathBuf> {
    let cache = cache_home()?;
    // The same repository reached by another relative path is the same one.
    let location = std::fs::canonicalize(location).unwrap_or_else(|_| PathBuf::from(location));
    let name = blake3::hash(location.as_os_str().as_encoded_bytes()).to_hex();
    Some(cache.join("cairn/repos").join(&name[..32]))
}

/// Where a put-only key keeps its parent cache for the repository at `location`.
pub fn parents(location: &str) -> Option<PathBuf> {
    Some(dir(location)?.join("parents"))
}

/// The key ID that last opened the repository at `location`, if known.
pub fn key(location: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir(location)?.join("key")).ok()?;
    let id = text.trim();
    KeyId::from_hex(id).map(|_| id.to_string())
}

/// Records that `key` opened the repository at `location`.
pub fn remember_key(location: &str, key: &KeyId) {
    if self::key(location).as_deref() != Some(&key.to_hex()) {
        if let Some(dir) = dir(location) {
            let _ = write(&dir, "key", &key.to_hex());
        }
    }
}

/// The snapshots backups from this machine wrote to the repository at `location`.
pub fn own_snapshots(location: &str) -> Vec<SnapshotId> {
    dir(location)
        .and_then(|d| std::fs::read_to_string(d.join("snapshots")).ok())
        .map(|text| text.lines().filter_map(SnapshotId::from_hex).collect())
        .unwrap_or_default()
}

/// Records that a backup from this machine wrote `id` to the repository at `location`.
pub fn remember_snapshot(location: &str, id: &SnapshotId) {
    let Some(dir) = dir(location) else { return };
    let mut ids = own_snapshots(location);
    ids.push(*id);
    let skip = ids.len().saturating_sub(SNAPSHOTS_KEPT);
    let text: String = ids[skip..].iter().map(|i| i.to_hex() + "\n").collect();
    let _ = write(&dir, "snapshots", &text);
}

/// Writes `text` to `dir/name` under a temporary name, then renames it.
fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}
