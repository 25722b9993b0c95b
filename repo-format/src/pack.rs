//! Pack files: sealed blobs back to back, then a sealed header that lists them.
//!
//! Layout: `blob envelope* || header envelope || header_len u32 LE || "CPK1"`.
//! A pack is named by the unkeyed BLAKE3 of all its bytes ([`crate::id::PackId`]).

use crate::codec::{self, Versioned};
use crate::config::MAX_CHUNK_CEILING;
use crate::crypto::{max_envelope_len, MasterKeys, ObjectType, ENVELOPE_OVERHEAD};
use crate::error::{FormatError, Result};
use crate::id::BlobId;
use crate::tree::MAX_TREE_LEN;
use serde::{Deserialize, Serialize};

/// Magic bytes at the very end of a pack.
pub const PACK_MAGIC: &[u8; 4] = b"CPK1";
/// Length of the trailer after the header envelope.
pub const TRAILER_LEN: usize = 8;
/// Largest decoded pack header accepted.
pub const MAX_HEADER_LEN: usize = 64 * 1024 * 1024;
/// Largest sealed header a trailer may announce: the largest header stored
/// raw in a padded frame (a frame is never longer than its plaintext, codec
/// byte and padding), in its envelope.
pub const MAX_SEALED_HEADER_LEN: u32 = 69_206_016;
const _: () = assert!(MAX_SEALED_HEADER_LEN as usize == max_envelope_len(MAX_HEADER_LEN));

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BlobKind {
    /// A chunk of file content (postcard variant 0).
    Data,
    /// A serialized [`crate::tree::Tree`] (postcard variant 1).
    Tree,
}

impl BlobKind {
    /// Largest plaintext a blob of this kind may have.
    pub fn max_len(self) -> usize {
        match self {
            BlobKind::Data => MAX_CHUNK_CEILING as usize,
            BlobKind::Tree => MAX_TREE_LEN,
        }
    }

    /// The envelope role of blobs of this kind.
    pub fn object_type(self) -> ObjectType {
        match self {
            BlobKind::Data => ObjectType::DataBlob,
            BlobKind::Tree => ObjectType::TreeBlob,
        }
    }
}

/// Where one blob lies in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// The blob's ID.
    pub id: BlobId,
    /// Offset of the blob's envelope from the start of the pack.
    pub offset: u64,
    /// Length of the envelope in bytes.
    pub length: u32,
    /// Length of the plaintext (before compression).
    pub raw_length: u32,
}

impl PackEntry {
    /// Checks the bounds readers rely on (SPEC §9.2, §10): the envelope ends
    /// at or before `end`, computed without overflow; it holds at least the
    /// envelope overhead and a codec byte, and at most the largest plaintext
    /// of its kind in a padded frame; and the plaintext is no longer than that.
    /// `what` names the file for messages.
    pub fn check_bounds(&self, end: u64, what: &'static str) -> Result<()> {
        let stop = self.offset.checked_add(u64::from(self.length));
        let envelope = ENVELOPE_OVERHEAD + 1..=max_envelope_len(self.kind.max_len());
        if stop.is_none_or(|stop| stop > end) || !envelope.contains(&(self.length as usize)) {
            return Err(FormatError::malformed(
                what,
                format!("blob {} lies outside its pack", self.id.short()),
            ));
        }
        if self.raw_length as usize > self.kind.max_len() {
            return Err(FormatError::malformed(
                what,
                format!(
                    "blob {} claims {} bytes, more than a {} can hold",
                    self.id.short(),
                    self.raw_length,
                    self.kind.object_type().name()
                ),
            ));
        }
        Ok(())
    }
}

/// The list of blobs in a pack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeader {
    /// Structure version, 1.
    pub version: u32,
    /// Entries in the order their envelopes appear.
    pub blobs: Vec<PackEntry>,
}

impl Versioned for PackHeader {
    const WHAT: &'static str = "pack header";
    const VERSION: u32 = 1;
}

impl PackHeader {
    /// Seals the header and appends it with the trailer to `pack`.
    pub fn append_to(&self, pack: &mut Vec<u8>, keys: &MasterKeys) {
        let sealed = keys.seal(ObjectType::PackHeader, None, &codec::encode(self), Some(3));
        pack.extend_from_slice(&sealed);
        pack.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        pack.extend_from_slice(PACK_MAGIC);
    }

    /// Where the sealed header lies, given the last [`TRAILER_LEN`] bytes of a pack of `pack_len` bytes.
    pub fn locate(trailer: &[u8], pack_len: u64) -> Result<(u64, u32)> {
        if trailer.len() != TRAILER_LEN || &trailer[4..] != PACK_MAGIC {
            return Err(FormatError::malformed("pack", "missing CPK1 trailer"));
        }
        let len = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        // Unauthenticated: refused before anything is read or allocated for it.
        if len > MAX_SEALED_HEADER_LEN {
            return Err(FormatError::malformed(
                "pack",
                format!("header length {len} exceeds the largest a header can have"),
            ));
        }
        let start = pack_len
            .checked_sub(TRAILER_LEN as u64 + u64::from(len))
            .ok_or_else(|| FormatError::malformed("pack", "header length exceeds the pack"))?;
        Ok((start, len))
    }

    /// Authenticates and decodes a sealed header that starts at `header_start`,
    /// checking every entry lies before it.
    pub fn open(sealed: &[u8], header_start: u64, keys: &MasterKeys) -> Result<PackHeader> {
        let plain = keys.open(ObjectType::PackHeader, None, sealed, MAX_HEADER_LEN)?;
        let header: PackHeader = codec::decode(&plain)?;
        for e in &header.blobs {
            e.check_bounds(header_start, "pack header")?;
        }
        Ok(header)
    }
}

/// Seals one blob's plaintext for storage in a pack.
pub fn seal_blob(
    keys: &MasterKeys,
    kind: BlobKind,
    id: &BlobId,
    plaintext: &[u8],
    level: Option<i32>,
) -> Vec<u8> {
    keys.seal(kind.object_type(), Some(&id.0), plaintext, level)
}

/// Authenticates and decrypts one blob, then checks its plaintext hashes to `id`
/// and has the length the index announced.
pub fn open_blob(
    keys: &MasterKeys,
    kind: BlobKind,
    id: &BlobId,
    sealed: &[u8],
    raw_length: u32,
) -> Result<Vec<u8>> {
    let mut plain = Vec::new();
    open_blob_into(keys, kind, id, sealed, raw_length, &mut plain)?;
    Ok(plain)
}

/// [`open_blob`] into `plain`, replacing what it held; on failure it is
/// left empty, never holding unchecked bytes.
pub fn open_blob_into(
    keys: &MasterKeys,
    kind: BlobKind,
    id: &BlobId,
    sealed: &[u8],
    raw_length: u32,
    plain: &mut Vec<u8>,
) -> Result<()> {
    let limit = (raw_length as usize).min(kind.max_len());
    keys.open_into(kind.object_type(), Some(&id.0), sealed, limit, plain)?;
    let fault = if plain.len() != raw_length as usize {
        FormatError::malformed(
            kind.object_type().name(),
            format!("{} bytes where the index says {raw_length}", plain.len()),
        )
    } else {
        let actual = keys.blob_id(plain);
        if actual == *id {
            return Ok(());
        }
        FormatError::HashMismatch {
            what: kind.object_type().name(),
            expected: id.to_hex(),
            actual: actual.to_hex(),
        }
    };
    plain.clear();
    Err(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(len: u32) -> Vec<u8> {
        let mut t = len.to_le_bytes().to_vec();
        t.extend_from_slice(PACK_MAGIC);
        t
    }

    #[test]
    fn a_header_length_beyond_the_largest_header_is_refused_unread() {
        let pack_len = 4u64 << 30;
        let (start, len) = PackHeader::locate(&trailer(MAX_SEALED_HEADER_LEN), pack_len).unwrap();
        assert_eq!(start + u64::from(len) + TRAILER_LEN as u64, pack_len);
        for len in [MAX_SEALED_HEADER_LEN + 1, u32::MAX] {
            let err = PackHeader::locate(&trailer(len), pack_len).unwrap_err();
            assert!(err.to_string().contains("header length"), "{err}");
        }
        assert!(
            PackHeader::locate(&trailer(100), 50).is_err(),
            "longer than the pack"
        );
    }
}
