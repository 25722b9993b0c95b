//! The engine's error type: every failure names the thing at fault.

use cairn_format::FormatError;
use std::path::PathBuf;

/// What went wrong, with enough context to tell the user what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No repository at the given location.
    #[error("no repository at {0}: run `cairn init` to create one")]
    RepositoryNotFound(String),
    /// `init` found a repository (or other files) already there.
    #[error("a repository already exists at {0}")]
    RepositoryExists(String),
    /// No key file opened with the password.
    #[error("wrong password: no key file in the repository opens with it")]
    WrongPassword,
    /// Repository bytes failed to decode or authenticate.
    #[error("{context}: {source}")]
    Format {
        /// Which object was being read.
        context: String,
        /// Why it failed.
        source: FormatError,
    },
    /// A file-system or storage operation failed.
    #[error("{context}: {source}")]
    Io {
        /// The operation and path.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Storage refused a request for a reason that retrying cannot fix
    /// (credentials, permissions, a missing bucket); the message says what to fix.
    #[error("{0}")]
    StorageRefused(String),
    /// Storage failed in a way that can pass when the request is repeated:
    /// a timeout, a dropped connection, a busy server, a truncated answer.
    #[error("{0}")]
    Transient(String),
    /// An object the repository refers to is not in storage.
    #[error("{0} is missing from the repository")]
    Missing(String),
    /// No snapshot matches the given name.
    #[error("no snapshot matches {0:?}: `cairn snapshots` lists them")]
    SnapshotNotFound(String),
    /// A snapshot ID prefix matches more than one snapshot.
    #[error("snapshot prefix {0:?} is ambiguous: it matches {1} snapshots; give more of the ID")]
    AmbiguousSnapshot(String, usize),
    /// A path is not in a snapshot.
    #[error("path {0:?} is not in the snapshot: `cairn ls SNAPSHOT` lists what it holds")]
    PathNotInSnapshot(String),
    /// A path given to back up does not exist or cannot be used.
    #[error("cannot back up {path}: {source}", path = .0.display(), source = .1)]
    SourcePath(PathBuf, std::io::Error),
    /// A snapshot's directories nest deeper than the format allows.
    #[error("{0}: directories nest deeper than {max} levels", max = cairn_format::tree::MAX_DEPTH)]
    TooDeep(String),
    /// Invalid argument or option.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a format error with the object being read.
    pub fn format(context: impl Into<String>, source: FormatError) -> Self {
        Error::Format {
            context: context.into(),
            source,
        }
    }

    /// True when repeating the request that failed may succeed: a
    /// [`Error::Transient`] storage failure, or an I/O error of a kind that
    /// a network or a busy server causes.
    pub fn is_transient(&self) -> bool {
        use std::io::ErrorKind::*;
        match self {
            Error::Transient(_) => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                TimedOut | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ),
            _ => false,
        }
    }

    /// True when repository bytes failed an integrity check.
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Format { source, .. } if source.is_integrity())
    }
}

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, Error>;
