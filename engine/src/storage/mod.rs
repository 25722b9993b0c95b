//! Where repository files live: the [`backend::Backend`] trait, the local,
//! S3 and SFTP backends, the wrapper that repeats failed requests, and the
//! local cache of a remote repository's metadata.

pub mod backend;
pub mod cache;
