//! The key file that last opened each repository on this machine, tried
//! first the next time (SPEC.md §3.4), so that key files planted in the
//! repository do not cost an open their key derivations.
//!
//! Kept in `$XDG_CACHE_HOME/cairn/key-hints/` (or `~/.cache/...`), one file
//! per repository location holding a key ID, which is no secret: it is the
//! key file's name in storage. Losing it only costs the next open some time.

use cairn_format::KeyId;
use std::path::{Path, PathBuf};

/// Where the hint for the repository at `location` is kept.
fn path(location: &str) -> Option<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?).join(".cache"),
    };
    // The same repository reached by another relative path is the same one.
    let location = std::fs::canonicalize(location).unwrap_or_else(|_| PathBuf::from(location));
    let name = blake3::hash(location.as_os_str().as_encoded_bytes()).to_hex();
    Some(cache.join("cairn/key-hints").join(&name[..32]))
}

/// The key ID that last opened the repository at `location`, if known.
pub fn recall(location: &str) -> Option<String> {
    let text = std::fs::read_to_string(path(location)?).ok()?;
    let id = text.trim();
    KeyId::from_hex(id).map(|_| id.to_string())
}

/// Records that `key` opened the repository at `location`. Best effort: a
/// cache that cannot be written changes nothing but the next open's speed.
pub fn remember(location: &str, key: &KeyId) {
    let Some(file) = path(location) else { return };
    if recall(location).as_deref() == Some(&key.to_hex()) {
        return;
    }
    let _ = write(&file, &key.to_hex());
}

/// Writes `text` to `file` under a temporary name, then renames it.
fn write(file: &Path, text: &str) -> std::io::Result<()> {
    let dir = file.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file)
}
