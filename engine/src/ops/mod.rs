//! The operations that change a repository or write its data back: backup
//! (with its source walk and filters), restore, copy, retention (`forget`),
//! prune, check, repair, key rotation, the PostgreSQL WAL archive, and the
//! journal that records checks, prunes and failed steps.

pub mod backup;
pub mod check;
pub mod copy;
pub mod filter;
pub(crate) mod index_writer;
pub mod journal;
pub(crate) mod lister;
pub(crate) mod lost;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod rotate;
pub mod source;
pub mod wal;
