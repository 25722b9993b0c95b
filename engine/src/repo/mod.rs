//! The repository itself: the opened [`repository::Repository`] and its
//! keys, index and sessions, and the pipeline that turns data into stored
//! blobs (chunker, bundles, packer), the compliance holds that keep
//! snapshots from removal, and the audit log.

pub mod audit;
pub mod bundle;
pub mod chunker;
pub mod hold;
pub mod index;
pub(crate) mod index_table;
pub mod keys;
pub mod lease;
pub mod packer;
pub mod parent_cache;
pub mod repository;
pub mod session;
