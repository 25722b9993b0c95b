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

pub mod audit;
pub mod backend;
pub mod backup;
pub mod browse;
pub mod bundle;
pub mod cache;
pub mod check;
pub mod chunker;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod error;
pub mod filter;
pub mod find;
pub mod hold;
pub mod index;
mod index_table;
pub mod journal;
pub mod keys;
mod lister;
mod lost;
mod nesting;
pub mod packer;
pub mod parent_cache;
pub mod progress;
pub mod prune;
pub mod repair;
pub mod repository;
pub mod restore;
pub mod retention;
pub mod rotate;
pub mod select;
pub mod session;
pub mod source;
pub mod stats;
pub mod sysinfo;
pub mod tag;
pub mod wal;

pub use error::{Error, Result};
pub use repository::{InitOptions, Repository};
