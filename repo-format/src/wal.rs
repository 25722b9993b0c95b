//! The PostgreSQL write-ahead log archive (SPEC.md §19): each file that a
//! cluster's `archive_command` hands over (a WAL segment, a timeline
//! history file, a backup history file) is one sealed file in `wal/`, named
//! by the cluster and the file's own name so that `restore_command` finds
//! it with one read, and created once, never changed.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::{FormatError, Result};
use crate::frame::{CODEC_NONE, CODEC_ZSTD};
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

fn shorter() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file is shorter than when it was opened",
    )
}

/// Largest WAL file accepted: PostgreSQL's largest segment size, 1 GiB.
pub const MAX_WAL_FILE_LEN: usize = 1 << 30;
/// Largest decoded archive file: a WAL file and its header.
pub const MAX_WAL_LEN: usize = MAX_WAL_FILE_LEN + 4096;
/// Longest cluster name, in bytes.
pub const MAX_CLUSTER_LEN: usize = 64;
/// Hex digits of the cluster tag that starts a storage name.
const TAG_HEX: usize = 16;

/// What precedes a WAL file's bytes in the plaintext of its archive file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalHeader {
    /// Structure version, 1.
    pub version: u32,
    /// The cluster, by the name the archiver was given.
    pub cluster: String,
    /// PostgreSQL's name for the file.
    pub name: String,
    /// When it was archived.
    pub archived: Timestamp,
}

impl Versioned for WalHeader {
    const WHAT: &'static str = "WAL file";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if !valid_cluster(&self.cluster) {
            return Err(FormatError::malformed(Self::WHAT, "invalid cluster name"));
        }
        if WalName::parse(&self.name).is_none() {
            return Err(FormatError::malformed(Self::WHAT, "invalid WAL file name"));
        }
        if !self.archived.is_valid() {
            return Err(FormatError::malformed(
                Self::WHAT,
                "nanoseconds out of range",
            ));
        }
        Ok(())
    }
}

impl WalHeader {
    /// Seals the header followed by the `len` bytes `content` yields,
    /// compressed at `level` as they are read, so that the WAL file is never
    /// held whole (which, for a process started once per segment, costs
    /// more in fresh pages than the copy itself); the zstd frame states its
    /// size (SPEC.md §5). Fails if `content` does not yield exactly `len` bytes.
    pub fn seal_from(
        &self,
        content: impl Read,
        len: u64,
        keys: &MasterKeys,
        level: Option<i32>,
    ) -> io::Result<Vec<u8>> {
        let head = codec::encode(self);
        let mut content = content.take(len);
        let framed = match level {
            Some(level) => {
                let mut z = zstd::stream::Encoder::new(vec![CODEC_ZSTD], level)?;
                z.include_contentsize(true)?;
                z.set_pledged_src_size(Some(head.len() as u64 + len))?;
                z.write_all(&head)?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match content.read(&mut buf)? {
                        0 => break,
                        n => z.write_all(&buf[..n])?,
                    }
                }
                if content.limit() > 0 {
                    return Err(shorter());
                }
                z.finish()?
            }
            None => {
                let mut framed = vec![CODEC_NONE];
                framed.extend_from_slice(&head);
                content.read_to_end(&mut framed)?;
                if framed.len() as u64 != 1 + head.len() as u64 + len {
                    return Err(shorter());
                }
                framed
            }
        };
        Ok(keys.seal_framed(ObjectType::Wal, None, &[], framed))
    }

    /// Authenticates and decodes an archive file: its header and the WAL
    /// file's bytes.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<(WalHeader, Vec<u8>)> {
        let mut plain = keys.open(ObjectType::Wal, None, bytes, MAX_WAL_LEN)?;
        let (header, rest) = codec::decode_prefix::<WalHeader>(&plain)?;
        if rest.len() > MAX_WAL_FILE_LEN {
            return Err(FormatError::malformed(Self::WHAT, "WAL file too large"));
        }
        let start = plain.len() - rest.len();
        plain.drain(..start);
        Ok((header, plain))
    }
}

/// True for a cluster name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
pub fn valid_cluster(name: &str) -> bool {
    (1..=MAX_CLUSTER_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The storage name of the archive file of `name` for `cluster`:
/// `<tag>.<name>`, where the tag is the first 8 bytes, in hex, of the keyed
/// hash of the cluster name, so that storage does not show the name.
pub fn storage_name(keys: &MasterKeys, cluster: &str, name: &str) -> String {
    format!("{}.{name}", cluster_tag(keys, cluster))
}

/// The tag that starts the storage names of `cluster`'s files.
pub fn cluster_tag(keys: &MasterKeys, cluster: &str) -> String {
    let mut plain = b"cairn wal cluster\0".to_vec();
    plain.extend_from_slice(cluster.as_bytes());
    hex_lower(&keys.blob_id(&plain).0[..TAG_HEX / 2])
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a storage name into its cluster tag and WAL file name; `None`
/// when it is not one.
pub fn split_storage_name(stored: &str) -> Option<(&str, WalName<'_>)> {
    let (tag, name) = stored.split_at_checked(TAG_HEX)?;
    let name = name.strip_prefix('.')?;
    let tag_ok = tag
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    Some((tag, WalName::parse(name).filter(|_| tag_ok)?))
}

/// A file name PostgreSQL archives, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalName<'a> {
    /// The whole name.
    pub name: &'a str,
    /// Its timeline.
    pub timeline: u32,
    /// What it is.
    pub kind: WalKind,
}

/// The kinds of file PostgreSQL archives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalKind {
    /// A segment: `TTTTTTTTXXXXXXXXYYYYYYYY`, of log `X` and segment `Y`
    /// within it.
    Segment(Position),
    /// A segment cut short at a timeline switch: a segment's name then `.partial`.
    Partial(Position),
    /// A backup history file: a segment's name, `.`, an offset in hex, `.backup`.
    Backup(Position),
    /// A timeline history file: `TTTTTTTT.history`.
    History,
}

/// Where a segment lies in the log: the high and low halves of its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// `X`: the log (the high 32 bits of its starting LSN).
    pub log: u32,
    /// `Y`: the segment within the log.
    pub seg: u32,
}

impl Position {
    /// The segment holding `lsn`, for segments of `segment_size` bytes.
    pub fn of_lsn(lsn: u64, segment_size: u64) -> Position {
        let number = lsn / segment_size;
        let per_log = segments_per_log(segment_size);
        Position {
            log: (number / per_log) as u32,
            seg: (number % per_log) as u32,
        }
    }

    /// The segment after this one.
    pub fn next(self, segment_size: u64) -> Position {
        if u64::from(self.seg) + 1 >= segments_per_log(segment_size) {
            Position {
                log: self.log + 1,
                seg: 0,
            }
        } else {
            Position {
                log: self.log,
                seg: self.seg + 1,
            }
        }
    }
}

/// How many segments of `segment_size` bytes one log (4 GiB of LSNs) holds.
fn segments_per_log(segment_size: u64) -> u64 {
    (1u64 << 32) / segment_size.max(1)
}

/// True for a segment size PostgreSQL allows: a power of two from 1 MiB to 1 GiB.
pub fn valid_segment_size(size: u64) -> bool {
    size.is_power_of_two() && ((1 << 20)..=(1 << 30)).contains(&size)
}

/// Parses 8 uppercase hex digits.
fn upper_hex(text: &str) -> Option<u32> {
    let ok = text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    ok.then(|| u32::from_str_radix(text, 16).ok())?
}

/// Parses a segment's 24-digit name: timeline and position.
fn segment(text: &str) -> Option<(u32, Position)> {
    if text.len() != 24 || !text.is_ascii() {
        return None;
    }
    let timeline = upper_hex(&text[..8])?;
    let log = upper_hex(&text[8..16])?;
    let seg = upper_hex(&text[16..])?;
    Some((timeline, Position { log, seg }))
}

impl<'a> WalName<'a> {
    /// Parses a name PostgreSQL archives; `None` for anything else.
    pub fn parse(name: &'a str) -> Option<WalName<'a>> {
        let (timeline, kind) = if let Some(tli) = name.strip_suffix(".history") {
            (upper_hex(tli)?, WalKind::History)
        } else if let Some(seg) = name.strip_suffix(".partial") {
            let (t, p) = segment(seg)?;
            (t, WalKind::Partial(p))
        } else if let Some(rest) = name.strip_suffix(".backup") {
            let (seg, offset) = rest.split_once('.')?;
            upper_hex(offset)?;
            let (t, p) = segment(seg)?;
            (t, WalKind::Backup(p))
        } else {
            let (t, p) = segment(name)?;
            (t, WalKind::Segment(p))
        };
        (timeline != 0).then_some(WalName {
            name,
            timeline,
            kind,
        })
    }

    /// Where the file lies in the log; `None` for a history file.
    pub fn position(&self) -> Option<Position> {
        match self.kind {
            WalKind::Segment(p) | WalKind::Partial(p) | WalKind::Backup(p) => Some(p),
            WalKind::History => None,
        }
    }
}

/// Parses an LSN as PostgreSQL writes it: `X/Y`, each half in hex.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    let half = |t: &str| {
        let ok = (1..=8).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| u32::from_str_radix(t, 16).ok())?
    };
    Some((u64::from(half(high)?) << 32) | u64::from(half(low)?))
}

/// Writes an LSN as PostgreSQL does: `X/Y` in uppercase hex.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> WalHeader {
        WalHeader {
            version: 1,
            cluster: "main".into(),
            name: "000000010000000A000000FF".into(),
            archived: Timestamp {
                secs: 1_800_000_000,
                nanos: 7,
            },
        }
    }

    #[test]
    fn archive_files_round_trip_and_are_bound_to_their_role() {
        let keys = MasterKeys::generate();
        let content = vec![7u8; 100_000];
        let sealed = header()
            .seal_from(&content[..], content.len() as u64, &keys, Some(3))
            .unwrap();
        let raw = header()
            .seal_from(&content[..], content.len() as u64, &keys, None)
            .unwrap();
        assert_eq!(WalHeader::open(&raw, &keys).unwrap().1, content);
        assert!(header()
            .seal_from(&content[..10], 11, &keys, Some(3))
            .is_err());
        assert!(sealed.len() < 1000, "compressed: {}", sealed.len());
        assert_eq!(
            WalHeader::open(&sealed, &keys).unwrap(),
            (header(), content)
        );
        assert!(crate::journal::JournalEntry::open(&sealed, &keys).is_err());
        assert!(WalHeader::open(&sealed, &MasterKeys::generate()).is_err());
        let mut bad = header();
        bad.name = "../../config".into();
        let sealed = bad.seal_from(&b"x"[..], 1, &keys, None).unwrap();
        assert!(WalHeader::open(&sealed, &keys).is_err());
    }

    #[test]
    fn the_header_encodes_as_specified() {
        // SPEC.md §19.2.
        let bytes = codec::encode(&header());
        let mut expected = vec![0x01, 0x04];
        expected.extend_from_slice(b"main");
        expected.push(24);
        expected.extend_from_slice(b"000000010000000A000000FF");
        expected.extend_from_slice(&[0x80, 0xc8, 0xce, 0xb4, 0x0d, 0x07]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn names_parse_as_postgresql_makes_them() {
        let seg = WalName::parse("000000020000000A000000FF").unwrap();
        assert_eq!(seg.timeline, 2);
        assert_eq!(
            seg.kind,
            WalKind::Segment(Position {
                log: 0xA,
                seg: 0xFF
            })
        );
        assert_eq!(
            WalName::parse("00000002.history").unwrap().kind,
            WalKind::History
        );
        let backup = WalName::parse("000000010000000000000002.00000028.backup").unwrap();
        assert_eq!(backup.position(), Some(Position { log: 0, seg: 2 }));
        assert!(matches!(
            WalName::parse("000000010000000000000002.partial")
                .unwrap()
                .kind,
            WalKind::Partial(_)
        ));
        for bad in [
            "",
            "00000001000000000000000",
            "000000010000000000000002x",
            "000000010000000a00000002",
            "00000000.history",
            "000000000000000000000002",
            "../00000001.history",
            "000000010000000000000002.backup",
            "+0000001000000000000000",
        ] {
            assert_eq!(WalName::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn storage_names_hide_the_cluster_and_split_back() {
        let keys = MasterKeys::generate();
        let stored = storage_name(&keys, "main", "000000010000000000000003");
        assert!(!stored.contains("main"));
        let (tag, name) = split_storage_name(&stored).unwrap();
        assert_eq!(tag, cluster_tag(&keys, "main"));
        assert_ne!(tag, cluster_tag(&keys, "other"));
        assert_eq!(name.name, "000000010000000000000003");
        assert!(split_storage_name("0123456789abcdef.x").is_none());
        assert!(split_storage_name("0123456789ABCDEF.00000001.history").is_none());
        assert!(split_storage_name("0123456789abcdef/00000001.history").is_none());
    }

    #[test]
    fn positions_follow_the_segment_size() {
        let mb16 = 16 << 20;
        let p = Position::of_lsn(0x2_0200_0028, mb16);
        assert_eq!(p, Position { log: 2, seg: 2 });
        assert_eq!(
            Position { log: 0, seg: 0xFF }.next(mb16),
            Position { log: 1, seg: 0 }
        );
        assert_eq!(
            Position { log: 0, seg: 0xFF }.next(1 << 20),
            Position { log: 0, seg: 0x100 }
        );
        assert_eq!(parse_lsn("0/2000028"), Some(0x200_0028));
        assert_eq!(parse_lsn("A/FF"), Some(0xA_0000_00FF));
        assert_eq!(parse_lsn("0/"), None);
        assert_eq!(format_lsn(0xA_0000_00FF), "A/FF");
        assert!(valid_segment_size(16 << 20) && !valid_segment_size(3 << 20));
    }
}
