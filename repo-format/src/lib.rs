//! # cairn-format
//!
//! The bytes of a cairn repository, format version 1: identifiers, the sealed
//! envelope, and the encoding of every file and blob. `SPEC.md` at the root of
//! the workspace is the normative description; this crate is its reference
//! implementation. It does no file or network I/O.
//!
//! ```
//! use cairn_format::{crypto::{MasterKeys, ObjectType}, snapshot::Snapshot};
//! let keys = MasterKeys::generate();
//! let sealed = keys.seal(ObjectType::Snapshot, None, b"plaintext", Some(3));
//! assert_eq!(keys.open(ObjectType::Snapshot, None, &sealed, 1024).unwrap(), b"plaintext");
//! ```
#![warn(missing_docs)]

pub mod audit;
pub mod codec;
pub mod config;
pub mod crypto;
pub mod error;
pub mod frame;
pub mod id;
pub mod index;
pub mod journal;
pub mod key;
pub mod keyring;
pub mod lock;
pub mod pack;
pub mod snapshot;
pub mod timestamp;
pub mod tree;
pub mod wal;

pub use error::{FormatError, Result};
pub use id::{
    AuditId, BlobId, IndexId, JournalId, KeyId, LockId, MarkId, PackId, RepoId, SnapshotId,
};
pub use pack::BlobKind;
pub use timestamp::Timestamp;
