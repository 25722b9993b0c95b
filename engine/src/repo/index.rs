//! The in-memory index: where each blob lies, in about 31 bytes per blob.
//!
//! Index files are loaded into one table sorted by blob ID and cut into
//! 65,536 buckets by the first two bytes of the ID. An entry keeps the next
//! 14 bytes, so a lookup matches 128 bits of the ID. IDs are keyed hashes:
//! nobody without the repository's ID key can make two blobs share 128 bits,
//! and among 10^9 blobs an accidental match has a probability below 10^-20.
//! Reading stays safe even then: the full ID is bound into every blob's
//! authentication (SPEC.md §4.2), so a wrong match fails to open instead of
//! returning wrong data.
//!
//! Blobs added after loading, and the rare entry whose numbers do not fit the
//! compact form, live in a small map beside the table.

use cairn_format::index::IndexFile;
use cairn_format::pack::PackEntry;
use cairn_format::{BlobId, BlobKind, PackId};
use rayon::prelude::*;
use std::collections::HashMap;

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Offset of its envelope in the pack.
    pub offset: u64,
    /// Length of its envelope.
    pub length: u32,
    /// Length of its plaintext.
    pub raw_length: u32,
}

const BUCKETS: usize = 1 << 16;
const KEY_LEN: usize = 14;
/// Set in an entry's pack number for tree blobs.
const TREE_BIT: u32 = 1 << 31;

/// One blob in the table: ID bytes 2..16, pack number (top bit: tree),
/// offset, length and plaintext length, little-endian, 30 bytes with no padding.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct Entry([u8; KEY_LEN + 16]);

impl Entry {
    fn new(id: &BlobId, kind: BlobKind, pack: u32, offset: u32, e: &PackEntry) -> Entry {
        let mut b = [0u8; KEY_LEN + 16];
        b[..KEY_LEN].copy_from_slice(&id.0[2..2 + KEY_LEN]);
        let pack = match kind {
            BlobKind::Data => pack,
            BlobKind::Tree => pack | TREE_BIT,
        };
        for (i, v) in [pack, offset, e.length, e.raw_length]
            .into_iter()
            .enumerate()
        {
            b[KEY_LEN + 4 * i..KEY_LEN + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        Entry(b)
    }

    fn field(&self, i: usize) -> u32 {
        let at = KEY_LEN + 4 * i;
        u32::from_le_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }

    /// What entries are sorted and searched by: the ID bytes, then the kind,
    /// as one number (fast to compare).
    fn sort_key(&self) -> u128 {
        key_of(&self.0[..KEY_LEN], self.field(0) & TREE_BIT != 0)
    }
}

fn key_of(id_part: &[u8], tree: bool) -> u128 {
    let mut b = [0u8; 16];
    b[..KEY_LEN].copy_from_slice(id_part);
    b[KEY_LEN] = u8::from(tree);
    u128::from_be_bytes(b)
}

/// Reorders `entries` (and `buckets`, the bucket of each entry, alongside)
/// so that entries are grouped by `digit(bucket)`, 0 to 255, in place
/// (American flag sort: one pass of swaps).
fn distribute(entries: &mut [Entry], buckets: &mut [u16], digit: impl Fn(u16) -> usize) {
    let mut ends = [0usize; 256];
    for &b in buckets.iter() {
        ends[digit(b)] += 1;
    }
    let mut next = [0usize; 256];
    let mut total = 0;
    for d in 0..256 {
        next[d] = total;
        total += ends[d];
        ends[d] = total;
    }
    for d in 0..256 {
        while next[d] < ends[d] {
            let i = next[d];
            let target = digit(buckets[i]);
            if target != d {
                let j = next[target];
                entries.swap(i, j);
                buckets.swap(i, j);
            }
            next[target] += 1;
        }
    }
}

/// The entries whose bytes are `bytes`, without a copy; `None` unless the
/// bytes are whole entries.
fn entries_from_bytes(bytes: Vec<u8>) -> Option<Vec<Entry>> {
    let size = std::mem::size_of::<Entry>();
    if bytes.len() % size != 0 || bytes.capacity() % size != 0 {
        return None;
    }
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    let (len, capacity) = (bytes.len() / size, bytes.capacity() / size);
    // SAFETY: `Entry` is a transparent wrapper of a byte array (alignment
    // 1, as the bytes' allocation), any bytes make one, and the allocation
    // holds exactly `capacity` of them.
    Some(unsafe { Vec::from_raw_parts(bytes.as_mut_ptr().cast::<Entry>(), len, capacity) })
}

/// The position of `key` in a sorted bucket. IDs are uniformly spread, so
/// the search starts where the key's value says it should be and usually
/// ends a few entries away: one or two cache misses, not one per halving.
fn find_in_bucket(bucket: &[Entry], key: u128) -> Option<usize> {
    if bucket.is_empty() {
        return None;
    }
    let guess = (((key >> 64) as u64 as u128 * bucket.len() as u128) >> 64) as usize;
    let mut i = guess.min(bucket.len() - 1);
    // Walk towards the key a few steps, then fall back to halving.
    for _ in 0..16 {
        let here = bucket[i].sort_key();
        if here == key {
            return Some(i);
        }
        let step_ok = if here < key {
            i + 1 < bucket.len()
        } else {
            i > 0
        };
        if !step_ok {
            return None;
        }
        let next = if here < key { i + 1 } else { i - 1 };
        let there = bucket[next].sort_key();
        if (here < key) != (there < key) && there != key {
            return None; // the key would sit between two neighbours
        }
        i = next;
    }
    bucket.binary_search_by_key(&key, Entry::sort_key).ok()
}

fn bucket_of(id: &BlobId) -> usize {
    usize::from(u16::from_be_bytes([id.0[0], id.0[1]]))
}

fn search_key(kind: BlobKind, id: &BlobId) -> u128 {
    key_of(&id.0[2..2 + KEY_LEN], kind == BlobKind::Tree)
}

/// Maps (kind, blob ID) to a location.
pub struct Index {
    packs: Vec<PackId>,
    /// Entries grouped by bucket, sorted within each; bucket `b` is
    /// `entries[starts[b]..starts[b + 1]]` once sorted.
    entries: Vec<Entry>,
    starts: Vec<u32>,
    /// While entries are being added: the bucket of each entry (the first two
    /// ID bytes, which entries do not keep). Empty once sorted.
    buckets: Vec<u16>,
    extra: HashMap<(BlobKind, BlobId), BlobLocation>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            packs: Vec::new(),
            entries: Vec::new(),
            starts: vec![0; BUCKETS + 1],
            buckets: Vec::new(),
            extra: HashMap::new(),
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("blobs", &self.len())
            .field("packs", &self.packs.len())
            .finish()
    }
}

impl Index {
    /// Builds an index from loaded index files. A blob listed more than once
    /// (in two packs) is indexed at one of its listings.
    pub fn from_files(files: impl IntoIterator<Item = IndexFile>) -> Index {
        let mut loader = IndexLoader::default();
        for file in files {
            loader.push(&file);
        }
        loader.finish()
    }

    /// Bytes of one entry of the table, as an index table file stores it.
    pub(crate) const ENTRY_LEN: usize = std::mem::size_of::<Entry>();

    /// An index over a table read back from an index table file: the
    /// entries' bytes, in buckets starting at `starts`, naming packs by
    /// their number in `packs`. `None` unless the buckets cover the
    /// entries exactly and every entry names a pack.
    pub(crate) fn from_table(
        packs: Vec<PackId>,
        starts: Vec<u32>,
        bytes: Vec<u8>,
    ) -> Option<Index> {
        let entries = entries_from_bytes(bytes)?;
        let ordered = starts.len() == BUCKETS + 1
            && starts[0] == 0
            && starts.windows(2).all(|w| w[0] <= w[1])
            && starts[BUCKETS] as usize == entries.len();
        let named = entries
            .par_iter()
            .all(|e| ((e.field(0) & !TREE_BIT) as usize) < packs.len());
        (ordered && named).then(|| Index {
            packs,
            entries,
            starts,
            buckets: Vec::new(),
            extra: HashMap::new(),
        })
    }

    /// What an index table file stores: the packs in the order the table
    /// numbers them, the start of each bucket, and the entries' bytes.
    /// `None` while some blobs live in the side map.
    pub(crate) fn table_parts(&self) -> Option<(&[PackId], &[u32], &[u8])> {
        debug_assert!(self.buckets.is_empty(), "index used before sorting");
        let entries = &self.entries[..];
        // SAFETY: `Entry` is a transparent wrapper of a byte array (size
        // 30, alignment 1): a slice of them is a slice of bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                entries.as_ptr().cast::<u8>(),
                std::mem::size_of_val(entries),
            )
        };
        self.extra
            .is_empty()
            .then_some((&self.packs[..], &self.starts[..], bytes))
    }

    /// Adds every blob of one pack.
    pub fn add_pack(&mut self, pack: PackId, entries: &[PackEntry]) {
        for e in entries {
            if self.get(e.kind, &e.id).is_none() {
                let loc = BlobLocation {
                    pack,
                    offset: e.offset,
                    length: e.length,
                    raw_length: e.raw_length,
                };
                self.extra.insert((e.kind, e.id), loc);
            }
        }
        // Keep the side map small: fold it into the table now and then.
        if self.extra.len() > (self.entries.len() / 4).max(BUCKETS) {
            self.compact();
        }
    }

    /// Moves the side map's blobs into the table (those that fit its
    /// compact form), which is then sorted again. They are added pack by
    /// pack, so that each pack is numbered once.
    pub(crate) fn compact(&mut self) {
        let mut extra: Vec<_> = std::mem::take(&mut self.extra).into_iter().collect();
        extra.sort_unstable_by_key(|&(_, loc)| (loc.pack, loc.offset));
        for group in extra.chunk_by(|a, b| a.1.pack == b.1.pack) {
            let entries: Vec<PackEntry> = group
                .iter()
                .map(|&((kind, id), loc)| PackEntry {
                    kind,
                    id,
                    offset: loc.offset,
                    length: loc.length,
                    raw_length: loc.raw_length,
                })
                .collect();
            self.push_pack(group[0].1.pack, &entries);
        }
        self.sort();
    }

    /// Adds everything an index file describes.
    pub fn add_file(&mut self, file: &IndexFile) {
        for p in &file.packs {
            self.add_pack(p.id, &p.blobs);
        }
    }

    /// Appends entries without sorting; `sort` must follow.
    fn push_pack(&mut self, pack: PackId, blobs: &[PackEntry]) {
        if self.buckets.len() < self.entries.len() {
            // The table was sorted: note the bucket of every entry in it.
            self.buckets = (0..BUCKETS)
                .flat_map(|b| {
                    let n = self.starts[b + 1] - self.starts[b];
                    std::iter::repeat_n(b as u16, n as usize)
                })
                .collect();
        }
        let number = match self.packs.last() {
            Some(last) if *last == pack => self.packs.len() - 1,
            _ => {
                self.packs.push(pack);
                self.packs.len() - 1
            }
        };
        for e in blobs {
            match (u32::try_from(number), u32::try_from(e.offset)) {
                (Ok(n), Ok(offset)) if n < TREE_BIT => {
                    self.entries.push(Entry::new(&e.id, e.kind, n, offset, e));
                    self.buckets.push(bucket_of(&e.id) as u16);
                }
                _ => {
                    let loc = BlobLocation {
                        pack,
                        offset: e.offset,
                        length: e.length,
                        raw_length: e.raw_length,
                    };
                    self.extra.entry((e.kind, e.id)).or_insert(loc);
                }
            }
        }
    }

    /// Puts added entries in place: each is moved to its bucket in place,
    /// then each bucket is sorted and stripped of repeats.
    fn sort(&mut self) {
        let mut counts = vec![0u32; BUCKETS];
        for &b in &self.buckets {
            counts[usize::from(b)] += 1;
        }
        let mut starts = vec![0u32; BUCKETS + 1];
        for b in 0..BUCKETS {
            starts[b + 1] = starts[b] + counts[b];
        }
        // Move entries to their buckets in place: by the first ID byte, then
        // within each of those 256 ranges (in parallel) by the second.
        let table = &mut self.entries;
        distribute(table, &mut self.buckets, |b| usize::from(b >> 8));
        let mut ranges = Vec::with_capacity(256);
        let (mut entries, mut buckets) = (&mut table[..], &mut self.buckets[..]);
        for hi in 0..256 {
            let len = (starts[(hi + 1) << 8] - starts[hi << 8]) as usize;
            let (e, e_rest) = entries.split_at_mut(len);
            let (b, b_rest) = buckets.split_at_mut(len);
            ranges.push((e, b));
            (entries, buckets) = (e_rest, b_rest);
        }
        ranges
            .into_par_iter()
            .for_each(|(e, b)| distribute(e, b, |b| usize::from(b & 0xff)));
        // Sort the buckets (in parallel), then keep one listing of each blob.
        let mut buckets = Vec::with_capacity(BUCKETS);
        let mut rest = &mut table[..];
        for b in 0..BUCKETS {
            let (bucket, tail) = rest.split_at_mut((starts[b + 1] - starts[b]) as usize);
            buckets.push(bucket);
            rest = tail;
        }
        buckets
            .into_par_iter()
            .for_each(|bucket| bucket.sort_unstable_by_key(Entry::sort_key));
        let mut kept = 0usize;
        let mut new_starts = vec![0u32; BUCKETS + 1];
        for b in 0..BUCKETS {
            let (s, e) = (starts[b] as usize, starts[b + 1] as usize);
            new_starts[b] = kept as u32;
            for i in s..e {
                if i > s && table[i].sort_key() == table[i - 1].sort_key() {
                    continue;
                }
                table[kept] = table[i];
                kept += 1;
            }
        }
        new_starts[BUCKETS] = kept as u32;
        table.truncate(kept);
        table.shrink_to_fit();
        self.starts = new_starts;
        self.buckets = Vec::new();
    }

    /// The location of a blob.
    pub fn get(&self, kind: BlobKind, id: &BlobId) -> Option<BlobLocation> {
        debug_assert!(self.buckets.is_empty(), "index used before sorting");
        let b = bucket_of(id);
        let bucket = &self.entries[self.starts[b] as usize..self.starts[b + 1] as usize];
        let key = search_key(kind, id);
        match find_in_bucket(bucket, key) {
            Some(i) => {
                let e = &bucket[i];
                Some(BlobLocation {
                    pack: self.packs[(e.field(0) & !TREE_BIT) as usize],
                    offset: u64::from(e.field(1)),
                    length: e.field(2),
                    raw_length: e.field(3),
                })
            }
            None => self.extra.get(&(kind, *id)).copied(),
        }
    }

    /// Adds to `ends`, for each pack, where the last blob the index lists
    /// in it ends: as far as a reader of blobs ever needs to read it.
    pub fn pack_ends(&self, ends: &mut HashMap<PackId, u64>) {
        let mut by_number = vec![0u64; self.packs.len()];
        for e in self.entries.iter() {
            let n = (e.field(0) & !TREE_BIT) as usize;
            let end = u64::from(e.field(1)) + u64::from(e.field(2));
            by_number[n] = by_number[n].max(end);
        }
        let listed = self.packs.iter().zip(by_number);
        let extra = self
            .extra
            .values()
            .map(|l| (&l.pack, l.offset + u64::from(l.length)));
        for (pack, end) in listed.chain(extra) {
            let known = ends.entry(*pack).or_default();
            *known = (*known).max(end);
        }
    }

    /// True when the blob is stored.
    pub fn contains(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.get(kind, id).is_some()
    }

    /// Number of blobs indexed.
    pub fn len(&self) -> usize {
        self.entries.len() + self.extra.len()
    }

    /// Number of blobs in the side map rather than the table.
    pub(crate) fn extra_len(&self) -> usize {
        self.extra.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Numbers for its blobs.
    pub fn numbering(&self) -> Numbering<'_> {
        let mut extra: Vec<_> = self.extra.keys().copied().collect();
        extra.sort_unstable();
        Numbering { index: self, extra }
    }

    /// Bytes of memory the index holds, estimated from its tables' capacities.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.entries.capacity() * size_of::<Entry>()
            + self.starts.capacity() * size_of::<u32>()
            + self.packs.capacity() * size_of::<PackId>()
            + self.buckets.capacity() * size_of::<u16>()
            + self.extra.capacity()
                * (size_of::<(BlobKind, BlobId)>() + size_of::<BlobLocation>() + 1)
    }
}

/// Numbers the blobs of an [`Index`] from 0 to [`Numbering::len`] − 1, so
/// that a mark per blob takes one bit (prune's record of what is used).
pub struct Numbering<'i> {
    index: &'i Index,
    /// The side map's keys, sorted: numbered after the table's entries.
    extra: Vec<(BlobKind, BlobId)>,
}

impl Numbering<'_> {
    /// How many numbers there are.
    pub fn len(&self) -> usize {
        self.index.entries.len() + self.extra.len()
    }

    /// True when the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of a blob, if it is indexed.
    pub fn number(&self, kind: BlobKind, id: &BlobId) -> Option<usize> {
        let b = bucket_of(id);
        let start = self.index.starts[b] as usize;
        let bucket = &self.index.entries[start..self.index.starts[b + 1] as usize];
        match find_in_bucket(bucket, search_key(kind, id)) {
            Some(i) => Some(start + i),
            None => self
                .extra
                .binary_search(&(kind, *id))
                .ok()
                .map(|i| self.index.entries.len() + i),
        }
    }
}

/// Builds an [`Index`] from index files given one at a time, so that they
/// need not all be decoded at once.
#[derive(Default)]
pub struct IndexLoader(Index);

impl IndexLoader {
    /// Adds the blobs of one index file.
    pub fn push(&mut self, file: &IndexFile) {
        for p in &file.packs {
            self.0.push_pack(p.id, &p.blobs);
        }
    }

    /// The finished index.
    pub fn finish(mut self) -> Index {
        self.0.sort();
        self.0
    }

    /// Builds the index of the index files `sources`, decoding them with
    /// `decode` a few at a time on every core (so that decoded files do not
    /// pile up in memory), each batch added while the next is decoded.
    pub fn load<S: Sync, E: Send>(
        sources: &[S],
        decode: impl Fn(&S) -> std::result::Result<IndexFile, E> + Sync,
    ) -> std::result::Result<Index, E> {
        let mut loader = IndexLoader::default();
        let mut decoded: Vec<IndexFile> = Vec::new();
        for batch in sources.chunks(4 * rayon::current_num_threads()) {
            let (next, ()) = rayon::join(
                || {
                    batch
                        .par_iter()
                        .map(&decode)
                        .collect::<std::result::Result<Vec<_>, E>>()
                },
                || decoded.iter().for_each(|f| loader.push(f)),
            );
            decoded = next?;
        }
        decoded.iter().for_each(|f| loader.push(f));
        Ok(loader.finish())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cairn_format::index::IndexPack;

    /// Deterministic pseudo-random IDs (also used by other modules' tests).
    pub(crate) fn id(n: u64) -> BlobId {
        let mut b = [0u8; 32];
        // splitmix64, seeded with n spread over the whole state.
        let mut x = n.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(29) ^ n;
        for chunk in b.chunks_mut(8) {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        BlobId(b)
    }

    fn pack(n: u64) -> PackId {
        PackId(id(u64::MAX - n).0)
    }

    fn entry(n: u64, kind: BlobKind) -> PackEntry {
        PackEntry {
            kind,
            id: id(n),
            offset: n * 1000,
            length: (n % 5000) as u32 + 40,
            raw_length: (n % 7000) as u32,
        }
    }

    /// `blobs` blobs in packs of `per_pack`, every tenth one a tree.
    fn file(first: u64, blobs: u64, per_pack: u64) -> IndexFile {
        let packs = (first..first + blobs)
            .collect::<Vec<_>>()
            .chunks(per_pack as usize)
            .map(|ns| IndexPack {
                id: pack(ns[0] / per_pack),
                blobs: ns
                    .iter()
                    .map(|&n| {
                        entry(
                            n,
                            if n % 10 == 0 {
                                BlobKind::Tree
                            } else {
                                BlobKind::Data
                            },
                        )
                    })
                    .collect(),
            })
            .collect();
        IndexFile { version: 1, packs }
    }

    fn expected(n: u64, per_pack: u64) -> BlobLocation {
        let e = entry(n, BlobKind::Data);
        BlobLocation {
            pack: pack(n / per_pack),
            offset: e.offset,
            length: e.length,
            raw_length: e.raw_length,
        }
    }

    #[test]
    fn every_blob_is_found_with_its_kind_and_nothing_else() {
        let index = Index::from_files([file(0, 30_000, 100), file(30_000, 20_000, 100)]);
        assert_eq!(index.len(), 50_000);
        for n in 0..50_000 {
            let (kind, other) = if n % 10 == 0 {
                (BlobKind::Tree, BlobKind::Data)
            } else {
                (BlobKind::Data, BlobKind::Tree)
            };
            assert_eq!(index.get(kind, &id(n)), Some(expected(n, 100)), "blob {n}");
            assert!(!index.contains(other, &id(n)), "blob {n} as the other kind");
        }
        for n in 50_000..60_000 {
            assert!(!index.contains(BlobKind::Data, &id(n)));
        }
        // Same first 16 bytes, different rest: still the same blob by design.
        let mut near = id(1);
        near.0[31] ^= 1;
        assert!(index.contains(BlobKind::Data, &near));
        // Different in the bytes the table keeps: not found.
        let mut far = id(1);
        far.0[15] ^= 1;
        assert!(!index.contains(BlobKind::Data, &far));
    }

    #[test]
    fn compacting_added_blobs_numbers_each_pack_once() {
        let mut index = Index::from_files([file(0, 10_000, 100)]);
        assert_eq!(index.packs.len(), 100);
        index.add_file(&file(10_000, 5_000, 100));
        assert_eq!(index.extra_len(), 5_000);
        index.compact();
        assert_eq!(index.extra_len(), 0);
        assert_eq!(index.packs.len(), 150, "one number per pack, not per blob");
        for n in (0..15_000).step_by(7) {
            let kind = if n % 10 == 0 {
                BlobKind::Tree
            } else {
                BlobKind::Data
            };
            assert_eq!(index.get(kind, &id(n)), Some(expected(n, 100)), "blob {n}");
        }
    }

    #[test]
    fn repeated_listings_keep_one_and_additions_are_found() {
        let mut index = Index::from_files([file(0, 1000, 10), file(0, 1000, 10)]);
        assert_eq!(index.len(), 1000);
        // Enough additions to be folded into the table more than once.
        for f in 0..3 {
            let start = 1000 + f * 40_000;
            index.add_file(&file(start, 40_000, 50));
            index.add_file(&file(start, 10, 50)); // listed again: no change
        }
        assert_eq!(index.len(), 121_000);
        for n in (0..121_000).step_by(7) {
            let kind = if n % 10 == 0 {
                BlobKind::Tree
            } else {
                BlobKind::Data
            };
            let e = entry(n, kind);
            let got = index
                .get(kind, &id(n))
                .map(|l| (l.offset, l.length, l.raw_length));
            assert_eq!(got, Some((e.offset, e.length, e.raw_length)), "blob {n}");
        }
    }

    #[test]
    fn pack_ends_are_where_their_last_listed_blob_ends() {
        let files = [file(0, 300, 100)];
        let mut index = Index::from_files(files.clone());
        let mut big = entry(1000, BlobKind::Data);
        big.offset = 5 << 32;
        index.add_pack(pack(9), &[big]);
        let mut ends = HashMap::new();
        index.pack_ends(&mut ends);
        for p in &files[0].packs {
            let last = p.blobs.iter().map(|b| b.offset + u64::from(b.length)).max();
            assert_eq!(ends.get(&p.id).copied(), last);
        }
        assert_eq!(ends[&pack(9)], (5 << 32) + u64::from(big.length));
        assert_eq!(ends.len(), 4);
    }

    #[test]
    fn numbers_beyond_the_compact_form_are_kept_exactly() {
        let mut big = entry(7, BlobKind::Data);
        big.offset = 5 << 32;
        let index = Index::from_files([IndexFile {
            version: 1,
            packs: vec![IndexPack {
                id: pack(1),
                blobs: vec![big, entry(8, BlobKind::Data)],
            }],
        }]);
        assert_eq!(index.get(BlobKind::Data, &id(7)).unwrap().offset, 5 << 32);
        assert_eq!(index.get(BlobKind::Data, &id(8)).unwrap().offset, 8000);
    }

    #[test]
    fn a_million_blobs_take_at_most_32_bytes_each() {
        // Small packs (64 blobs) make the per-pack share larger than usual.
        let index = Index::from_files([file(0, 1_000_000, 64)]);
        let per_blob = index.memory_bytes() as f64 / index.len() as f64;
        assert!(per_blob <= 32.0, "{per_blob:.2} bytes per blob");
        // With about 15 blobs per bucket, lookups walk and search for real.
        for n in (0..1_000_000).step_by(97) {
            let kind = if n % 10 == 0 {
                BlobKind::Tree
            } else {
                BlobKind::Data
            };
            assert_eq!(
                index.get(kind, &id(n)).map(|l| l.offset),
                Some(n * 1000),
                "blob {n}"
            );
        }
        for n in 1_000_000..1_020_000 {
            assert!(
                !index.contains(BlobKind::Data, &id(n)),
                "blob {n} was never added"
            );
        }
    }
}
