//! Reading any range of a file of a snapshot, blob by blob, for views that
//! read files out of order (`cairn mount`). Blobs read are kept in a cache
//! bounded in bytes, so that reading a file in small pieces reads each blob
//! once.

use crate::error::{Error, Result};
use crate::repository::Repository;
use cairn_format::tree::Node;
use cairn_format::{BlobId, BlobKind};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Where a file's bytes are: its blobs, each with the file offset it starts at.
#[derive(Clone, Debug)]
pub struct FileLayout {
    /// The blobs and their starts in the file, in order.
    pieces: Vec<(u64, BlobId)>,
    /// For a bundled file: where it starts in its bundle, and its content ID.
    bundled: Option<(u64, BlobId)>,
    size: u64,
}

impl FileLayout {
    /// The layout of the file `node`, from the sizes the index records;
    /// an error when a blob is not in the index or the sizes do not add up
    /// to the file's.
    pub fn of(repo: &Repository, node: &Node) -> Result<FileLayout> {
        let Some(data) = node.kind.file_data() else {
            return Err(Error::Invalid("not a regular file".into()));
        };
        let bundled = data.id.map(|id| (data.offset, id));
        if bundled.is_some() {
            return Ok(FileLayout {
                pieces: vec![(0, data.blobs[0])],
                bundled,
                size: node.size,
            });
        }
        let mut pieces = Vec::with_capacity(data.blobs.len());
        let mut at = 0u64;
        for id in data.blobs {
            let loc = repo
                .index()
                .get(BlobKind::Data, id)
                .ok_or_else(|| Error::Missing(format!("data blob {id}")))?;
            pieces.push((at, *id));
            at += u64::from(loc.raw_length);
        }
        if at != node.size {
            return Err(Error::Invalid(format!(
                "{}: its blobs hold {at} bytes, not the recorded {}",
                String::from_utf8_lossy(&node.name),
                node.size
            )));
        }
        Ok(FileLayout {
            pieces,
            bundled,
            size: node.size,
        })
    }

    /// Up to `len` bytes of the file from `offset` (fewer at its end), each
    /// blob authenticated as it is read or taken from `cache`.
    pub fn read(
        &self,
        repo: &Repository,
        cache: &mut BlobCache,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        let end = self.size.min(offset.saturating_add(len as u64));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let first = self.pieces.partition_point(|(start, _)| *start <= offset);
        for i in first.saturating_sub(1)..self.pieces.len() {
            let at = offset + out.len() as u64;
            if at >= end {
                break;
            }
            let (start, id) = &self.pieces[i];
            let next = self.pieces.get(i + 1).map_or(self.size, |(s, _)| *s);
            let blob = cache.get(repo, id)?;
            let content = match self.bundled {
                Some((bundle_at, content_id)) => {
                    repo.bundled_content(&blob, bundle_at, self.size, &content_id)?
                }
                None => &blob[..],
            };
            if content.len() as u64 != next - start {
                return Err(Error::Invalid(format!(
                    "data blob {id} holds {} bytes, not the {} its index records",
                    content.len(),
                    next - start
                )));
            }
            out.extend_from_slice(
                &content[(at - start) as usize..(end.min(next) - start) as usize],
            );
        }
        Ok(out)
    }
}

/// Blobs read lately, up to a number of bytes; the oldest read goes first.
pub struct BlobCache {
    blobs: HashMap<BlobId, Arc<Vec<u8>>>,
    order: VecDeque<BlobId>,
    bytes: usize,
    limit: usize,
}

impl BlobCache {
    /// A cache holding at most `limit` bytes of blobs (and always the last one).
    pub fn new(limit: usize) -> BlobCache {
        BlobCache {
            blobs: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// The plaintext of data blob `id`, read and authenticated unless cached.
    pub fn get(&mut self, repo: &Repository, id: &BlobId) -> Result<Arc<Vec<u8>>> {
        if let Some(blob) = self.blobs.get(id) {
            return Ok(blob.clone());
        }
        let blob = Arc::new(repo.read_blob(BlobKind::Data, id)?);
        while self.bytes + blob.len() > self.limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.blobs.remove(&old) {
                self.bytes -= gone.len();
            }
        }
        self.bytes += blob.len();
        self.order.push_back(*id);
        self.blobs.insert(*id, blob.clone());
        Ok(blob)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;
    use crate::backup::{backup, BackupOptions};
    use crate::InitOptions;
    use cairn_format::key::KdfParams;

    #[test]
    fn any_range_reads_as_the_file_and_the_cache_stays_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            kdf: KdfParams::argon2id(64, 1, 1),
            ..Default::default()
        };
        let mut repo =
            Repository::init(LocalBackend::new(dir.path().join("repo")), b"pw", &opts).unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let mut x = 7u64;
        let content: Vec<u8> = (0..5 << 20)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        std::fs::write(src.join("f"), &content).unwrap();
        let report = backup(
            &mut repo,
            std::slice::from_ref(&src),
            &BackupOptions::default(),
        )
        .unwrap();
        let path = src.join("f");
        let node = crate::browse::find_node(&repo, &report.snapshot.tree, &path)
            .unwrap()
            .unwrap();
        let layout = FileLayout::of(&repo, &node).unwrap();
        assert!(layout.pieces.len() > 2, "{} blobs", layout.pieces.len());
        let limit = 1 << 20;
        let mut cache = BlobCache::new(limit);
        let len = content.len() as u64;
        for (offset, n) in [
            (0, 10),
            (len - 5, 100),
            (1_500_000, 2_000_000),
            (len, 1),
            (3, 0),
        ] {
            let got = layout.read(&repo, &mut cache, offset, n).unwrap();
            let end = len.min(offset + n as u64) as usize;
            assert_eq!(got, &content[offset.min(len) as usize..end], "at {offset}");
            // Within the bound, but for a single blob larger than it.
            assert!(cache.bytes() <= limit || cache.order.len() == 1);
            assert!(!cache.order.is_empty() || n == 0 || offset == len);
        }
        let whole = layout.read(&repo, &mut cache, 0, content.len()).unwrap();
        assert_eq!(whole, content);
    }
}
