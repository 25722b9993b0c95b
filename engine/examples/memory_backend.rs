//! A storage backend of your own: here, one that keeps every file in memory.
//!
//! ```sh
//! cargo run -p cairn-engine --example memory_backend -- SOURCE RESTORE_INTO
//! ```
//!
//! A backend stores named, immutable files of a few kinds; the engine does
//! the rest (chunking, encryption, packing, the index). Implementing the
//! trait is all it takes to keep a repository anywhere.
#![allow(
    clippy::disallowed_methods,
    reason = "an example reads its command line"
)]

use cairn_engine::backend::{Backend, FileKind};
use cairn_engine::backup::{backup, BackupOptions};
use cairn_engine::restore::restore;
use cairn_engine::{Error, InitOptions, Repository, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A file's bytes and the time it was stored.
type Stored = (Vec<u8>, SystemTime);

/// Files by kind and name.
#[derive(Clone, Default)]
struct Memory {
    files: Arc<Mutex<BTreeMap<(String, String), Stored>>>,
}

fn key(kind: FileKind, name: &str) -> (String, String) {
    (kind.name().to_string(), name.to_string())
}

impl Memory {
    fn get(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let files = self.files.lock().unwrap();
        match files.get(&key(kind, name)) {
            Some((bytes, _)) => Ok(bytes.clone()),
            None => Err(Error::Missing(format!("{} {name}", kind.name()))),
        }
    }
}

impl Backend for Memory {
    fn location(&self) -> String {
        "memory".into()
    }

    fn create_repository(&self) -> Result<()> {
        match self.exists()? {
            true => Err(Error::RepositoryExists(self.location())),
            false => Ok(()),
        }
    }

    fn exists(&self) -> Result<bool> {
        Ok(self.get(FileKind::Config, "config").is_ok())
    }

    /// Never replaces a file: files are named by their content, so one of
    /// the same name already holds these bytes (the config excepted).
    fn create(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        let mut files = self.files.lock().unwrap();
        let k = key(kind, name);
        if files.contains_key(&k) {
            return match kind {
                FileKind::Config => Err(Error::RepositoryExists(self.location())),
                _ => Ok(()),
            };
        }
        files.insert(k, (bytes.to_vec(), SystemTime::now()));
        Ok(())
    }

    fn replace(&self, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
        cairn_engine::backend::replaceable(kind)?;
        let mut files = self.files.lock().unwrap();
        files.insert(key(kind, name), (bytes.to_vec(), SystemTime::now()));
        Ok(())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.get(kind, name)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let bytes = self.get(kind, name)?;
        let range = offset as usize..(offset + length) as usize;
        match bytes.get(range) {
            Some(part) => Ok(part.to_vec()),
            None => Err(Error::Invalid(format!(
                "{} {name} is truncated",
                kind.name()
            ))),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        Ok(self.get(kind, name)?.len() as u64)
    }

    fn modified(&self, kind: FileKind, name: &str) -> Result<SystemTime> {
        let files = self.files.lock().unwrap();
        match files.get(&key(kind, name)) {
            Some((_, time)) => Ok(*time),
            None => Err(Error::Missing(format!("{} {name}", kind.name()))),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        let files = self.files.lock().unwrap();
        Ok(files
            .keys()
            .filter(|(k, _)| k == kind.name())
            .map(|(_, name)| name.clone())
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        match self.files.lock().unwrap().remove(&key(kind, name)) {
            Some(_) => Ok(()),
            None => Err(Error::Missing(format!("{} {name}", kind.name()))),
        }
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(source), Some(target)) = (args.next(), args.next()) else {
        return Err("usage: memory_backend SOURCE RESTORE_INTO".into());
    };
    let source = source.canonicalize()?;
    let storage = Memory::default();
    let mut repo = Repository::init(storage.clone(), b"example", &InitOptions::default())?;
    let report = backup(
        &mut repo,
        std::slice::from_ref(&source),
        &BackupOptions::default(),
    )?;
    let stored: usize = storage
        .files
        .lock()
        .unwrap()
        .values()
        .map(|(b, _)| b.len())
        .sum();
    println!("snapshot {}: {stored} bytes in memory", report.id);

    // Opened again from the same storage, as another process would.
    drop(repo);
    let repo = Repository::open(storage, b"example")?;
    let (_, snapshot) = repo.snapshots()?.pop().ok_or("no snapshot")?;
    let restored = restore(&repo, &snapshot, Some(&source), &target)?;
    println!(
        "restored {} files into {}",
        restored.files,
        target.display()
    );
    Ok(())
}
