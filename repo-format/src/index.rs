//! Index files: which blobs each pack holds, so readers need not open pack headers.
//!
//! In a repository with key epochs an index file has two parts (SPEC §10.1):
//! `"CIX2" || tags_len u32 LE || tags envelope || entries envelope`. The
//! entries are content, which only a full key opens; the tags, readable by
//! a put-only key too, say which blobs are stored (and in which pack) to
//! whoever can compute a blob's ID, and nothing else.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::{FormatError, Result};
use crate::id::{BlobId, PackId};
use crate::pack::{BlobKind, PackEntry};
use serde::{Deserialize, Serialize};

/// Largest decoded index file accepted.
pub const MAX_INDEX_LEN: usize = 512 * 1024 * 1024;
/// Largest decoded tags part of an index file accepted.
pub const MAX_TAGS_LEN: usize = 256 * 1024 * 1024;
/// Magic at the start of a two-part index file.
pub const INDEX_MAGIC: &[u8; 4] = b"CIX2";

/// What a put-only key reads of an index file: a tag for each blob, and
/// the pack that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupTags {
    /// Structure version, 1.
    pub version: u32,
    /// The packs the index file describes.
    pub packs: Vec<PackId>,
    /// One entry per blob.
    pub tags: Vec<DedupTag>,
}

/// A blob's tag and the position of its pack in [`DedupTags::packs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupTag {
    /// [`dedup_tag`] of the blob.
    pub tag: [u8; 16],
    /// Index into `packs`.
    pub pack: u32,
}

impl Versioned for DedupTags {
    const WHAT: &'static str = "index file's deduplication tags";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if self
            .tags
            .iter()
            .any(|t| t.pack as usize >= self.packs.len())
        {
            return Err(FormatError::malformed(Self::WHAT, "a tag names no pack"));
        }
        Ok(())
    }
}

/// The tag of a blob: the first 16 bytes of BLAKE3 keyed with a key derived
/// from `id_key`, over the kind's byte and the blob ID. Whoever holds
/// `id_key` can compute it for content it has, and only then.
pub fn dedup_tag(keys: &MasterKeys, kind: BlobKind, id: &BlobId) -> [u8; 16] {
    let key = blake3::derive_key("cairn 2026-12-07 deduplication tag v1", &keys.id_key);
    let mut h = blake3::Hasher::new_keyed(&key);
    h.update(&[kind as u8]).update(&id.0);
    h.finalize().as_bytes()[..16].try_into().expect("16 bytes")
}

/// The blobs of one pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    /// The pack.
    pub id: PackId,
    /// Its blobs, as in its header.
    pub blobs: Vec<PackEntry>,
}

/// One index file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    /// Structure version, 1.
    pub version: u32,
    /// The packs this file describes.
    pub packs: Vec<IndexPack>,
}

impl Versioned for IndexFile {
    const WHAT: &'static str = "index file";
    const VERSION: u32 = 1;
}

impl IndexFile {
    /// Seals the index file: in two parts in a repository with key epochs,
    /// the entries bound to the tags beside them.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        let entries = crate::frame::encode(&codec::encode(self), Some(3));
        if keys.keyring.is_none() {
            return keys.seal_framed(ObjectType::Index, None, &[], entries);
        }
        let tags = keys.seal(
            ObjectType::DedupTags,
            None,
            &codec::encode(&self.tags(keys)),
            Some(3),
        );
        let entries = keys.seal_framed(
            ObjectType::Index,
            None,
            blake3::hash(&tags).as_bytes(),
            entries,
        );
        let mut out = Vec::with_capacity(8 + tags.len() + entries.len());
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&(tags.len() as u32).to_le_bytes());
        out.extend_from_slice(&tags);
        out.extend_from_slice(&entries);
        out
    }

    /// The deduplication tags of this file's blobs, as a writer lists them.
    pub fn tags(&self, keys: &MasterKeys) -> DedupTags {
        let tags = self
            .packs
            .iter()
            .enumerate()
            .flat_map(|(n, p)| {
                p.blobs.iter().map(move |e| DedupTag {
                    tag: dedup_tag(keys, e.kind, &e.id),
                    pack: n as u32,
                })
            })
            .collect();
        DedupTags {
            version: DedupTags::VERSION,
            packs: self.packs.iter().map(|p| p.id).collect(),
            tags,
        }
    }

    /// Authenticates and decodes an index file, checking the bounds of
    /// every entry (SPEC §10). A put-only key cannot: [`FormatError::NotReadable`].
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<IndexFile> {
        let (entries, tail) = match keys.keyring {
            Some(_) => {
                let (tags, entries) = split(bytes)?;
                (entries, *blake3::hash(tags).as_bytes())
            }
            None => (bytes, [0; 32]),
        };
        let tail: &[u8] = if keys.keyring.is_some() { &tail } else { &[] };
        let framed = keys.open_framed(ObjectType::Index, None, tail, entries)?;
        let file: IndexFile =
            codec::decode(&crate::frame::decode(&framed, MAX_INDEX_LEN, "index file")?)?;
        for e in file.packs.iter().flat_map(|p| &p.blobs) {
            e.check_bounds(u64::MAX, "index file")?;
        }
        Ok(file)
    }

    /// Authenticates and decodes the tags of an index file of a repository
    /// with key epochs: what a put-only key reads of it.
    pub fn open_tags(bytes: &[u8], keys: &MasterKeys) -> Result<DedupTags> {
        let (tags, _) = split(bytes)?;
        codec::decode(&keys.open(ObjectType::DedupTags, None, tags, MAX_TAGS_LEN)?)
    }
}

/// The tags envelope and the entries envelope of a two-part index file.
fn split(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    let bad = || FormatError::malformed("index file", "not a two-part index file");
    let rest = bytes.strip_prefix(INDEX_MAGIC).ok_or_else(bad)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(bad());
    }
    Ok(rest.split_at(len))
}
