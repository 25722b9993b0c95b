//! For tests: a local backend whose every call first passes a gate, which
//! may count it or refuse it.

use super::{Backend, FileKind, LocalBackend};
use crate::error::Result;
use std::time::SystemTime;

/// The calls a gate is told of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Create,
    Read,
    ReadAt,
    Other,
}

/// A local backend; `gate` sees each call (and the kind of file) first,
/// and an error from it is the call's result.
pub(crate) struct Gated<F> {
    pub(crate) inner: LocalBackend,
    pub(crate) gate: F,
}

impl<F: Fn(Call, FileKind) -> Result<()> + Send + Sync> Backend for Gated<F> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create_repository(&self) -> Result<()> {
        self.inner.create_repository()
    }
    fn exists(&self) -> Result<bool> {
        self.inner.exists()
    }
    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        (self.gate)(Call::Create, kind)?;
        self.inner.create(kind, name, bytes)
    }
    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        (self.gate)(Call::Create, kind)?;
        self.inner.replace(kind, name, bytes)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        (self.gate)(Call::Read, kind)?;
        self.inner.read(kind, name)
    }
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        (self.gate)(Call::ReadAt, kind)?;
        self.inner.read_at(kind, name, offset, length)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        (self.gate)(Call::Other, kind)?;
        self.inner.size(kind, name)
    }
    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        (self.gate)(Call::Other, kind)?;
        self.inner.modified(kind, name)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        (self.gate)(Call::Other, kind)?;
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        (self.gate)(Call::Other, kind)?;
        self.inner.remove(kind, name)
    }
}
