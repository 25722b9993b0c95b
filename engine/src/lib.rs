//! # cairn-engine
//!
//! The cairn backup engine: open or create a [`Repository`] on a [`backend::Backend`],
//! take snapshots with [`backup::backup`], browse them with [`browse`], and write
//! them back with [`restore::restore`]. The library never prints and never exits;
//! every operation returns plain data or an [`Error`] naming what is at fault.
//!
//! ```
//! use cairn_engine::{backend::LocalBackend, backup, restore, InitOptions, Repository};
//! use cairn_format::key::KdfParams;
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("src")).unwrap();
//! std::fs::write(dir.path().join("src/hello.txt"), b"hello").unwrap();
//! let opts = InitOptions { kdf: KdfParams::argon2id(64, 1, 1), ..Default::default() };
//! let mut repo = Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
//! let report = backup::backup(&mut repo, &[dir.path().join("src")], &Default::default()).unwrap();
//! let out = dir.path().join("out");
//! restore::restore(&repo, &report.snapshot, Some(&dir.path().join("src")), &out).unwrap();
//! assert_eq!(std::fs::read(out.join("src/hello.txt")).unwrap(), b"hello");
//! ```
//!
//! ## Map
//!
//! The modules are grouped in four layers; each uses only those below it
//! (and the error type, progress counters and host names at the top), and
//! no two modules import each other (`tests/engine_structure.rs` checks
//! both):
//!
//! | layer | what lives there |
//! |---|---|
//! | [`ops`] | operations: backup (walk, filters), restore, copy, forget's retention, prune, check, repair, key rotation, the WAL archive, the journal |
//! | [`query`] | reading snapshots: select, browse, find, diff, dump, read_at, stats, tags |
//! | [`repo`] | the opened repository: keys, sessions, index, chunker, bundles, packer, holds, audit log |
//! | [`storage`] | the [`backend::Backend`] trait, local, S3 and SFTP storage, retries, the metadata cache |
//!
//! Every module is also reachable by its short name (`cairn_engine::backup`).
#![warn(missing_docs)]
// The library never prints, never exits and never reads the environment:
// what it reports is returned, what it needs is passed in (the methods are
// listed in engine/clippy.toml).
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::dbg_macro,
    clippy::exit,
    clippy::disallowed_methods
)]

pub mod error;
pub mod ops;
pub mod progress;
pub mod query;
pub mod repo;
pub mod storage;
pub mod sysinfo;

// Every module by its short path too (`cairn_engine::backup`), as the
// engine's own code names them.
pub use ops::{
    backup, check, copy, filter, journal, prune, repair, restore, retention, rotate, source, wal,
};
pub(crate) use ops::{lister, lost};
pub(crate) use query::nesting;
pub use query::{browse, diff, dump, find, read_at, select, stats, tag};
pub(crate) use repo::index_table;
pub use repo::{
    audit, bundle, chunker, hold, index, keys, packer, parent_cache, repository, session,
};
pub use storage::{backend, cache};

pub use error::{Error, Result};
pub use repository::{InitOptions, Repository};
