//! Bundles: the small files of one directory stored together in data blobs,
//! so that they share compression and do not each pay for a blob.
//!
//! A file smaller than [`SMALL_FILE`] is appended to the directory's open
//! bundle and recorded as a slice of it (`NodeKind::Bundled`). A bundle ends
//! after a file whose content ID selects it (content-defined, so that an
//! insertion or a change re-stores one bundle and the next ones line up again),
//! when it is large, and at the end of the directory. SPEC.md §12.4.

use cairn_format::BlobId;
use std::collections::HashMap;

/// Files smaller than this are bundled.
pub const SMALL_FILE: u64 = 256 * 1024;
/// A bundle holds at least this much before a content-defined end...
const MIN_BYTES: usize = 512 * 1024;
/// ...then ends after each file with a chance of its size over this, so a
/// bundle holds `MIN_BYTES + END_BYTES` on average whatever the file sizes...
const END_BYTES: u64 = 512 * 1024;
/// ...and always once it holds this much (it stays below `LIMIT_BYTES + SMALL_FILE`).
const LIMIT_BYTES: usize = 4096 * 1024 - SMALL_FILE as usize;

/// The open bundle of the directory being saved.
#[derive(Default)]
pub struct Bundle {
    bytes: Vec<u8>,
    /// Where each distinct content already in the bundle starts.
    offsets: HashMap<BlobId, u64>,
    /// Whether the last file added ends the bundle.
    ends: bool,
}

impl Bundle {
    /// Adds a file whose content ID is `id`; returns where it starts in the
    /// bundle. Content already in the bundle is not added again.
    pub fn add(&mut self, id: BlobId, data: &[u8]) -> u64 {
        if let Some(&offset) = self.offsets.get(&id) {
            return offset;
        }
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(data);
        self.offsets.insert(id, offset);
        let draw = u64::from(u32::from_le_bytes(id.0[..4].try_into().expect("4 bytes")));
        self.ends = self.bytes.len() >= LIMIT_BYTES
            || (self.bytes.len() >= MIN_BYTES && draw * END_BYTES < (data.len() as u64) << 32);
        offset
    }

    /// True when the bundle should be stored before another file is added.
    pub fn is_full(&self) -> bool {
        self.ends
    }

    /// The bundle's bytes, leaving it empty.
    pub fn take(&mut self) -> Vec<u8> {
        self.offsets.clear();
        self.ends = false;
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::id;

    #[test]
    fn repeated_content_is_stored_once() {
        let mut b = Bundle::default();
        assert_eq!(b.add(id(1), b"abc"), 0);
        assert_eq!(b.add(id(2), b"de"), 3);
        assert_eq!(b.add(id(1), b"abc"), 0);
        assert_eq!(b.take(), b"abcde");
        assert_eq!(b.add(id(1), b"abc"), 0, "an emptied bundle starts over");
    }

    #[test]
    fn bundles_end_by_content_between_the_bounds() {
        // 20,000 files of 4 KiB (80 MiB): every bundle ends within the bounds, and the
        // content-defined ends give a mean near MIN_BYTES + END_BYTES.
        let data = vec![7u8; 4096];
        let mut b = Bundle::default();
        let mut sizes = Vec::new();
        for n in 0..20_000 {
            b.add(id(n), &data);
            if b.is_full() {
                sizes.push(b.take().len());
            }
        }
        assert!(sizes.len() > 50, "{} bundles", sizes.len());
        assert!(sizes
            .iter()
            .all(|&s| s >= MIN_BYTES && s < LIMIT_BYTES + SMALL_FILE as usize));
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        let expected = MIN_BYTES + END_BYTES as usize;
        assert!(
            mean > expected * 3 / 4 && mean < expected * 5 / 4,
            "mean bundle {mean} bytes"
        );
    }
}
