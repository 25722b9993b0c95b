//! Journal entries: small records of what happened to a repository that no
//! snapshot shows — a step that failed, a check and what it found, a prune —
//! kept in the repository so that every host that opens it sees the same
//! history (SPEC.md §17).
//!
//! Each entry is one sealed file in `journal/`, named by the hash of its
//! bytes, created once and never changed.

use crate::codec::{self, Versioned};
use crate::crypto::{MasterKeys, ObjectType};
use crate::error::{FormatError, Result};
use crate::id::SnapshotId;
use crate::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// Largest decoded journal entry accepted.
pub const MAX_JOURNAL_LEN: usize = 64 * 1024;
/// Longest text (a name, a message, a problem) an entry holds, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Most problems a check entry lists: with every text at its longest, an
/// entry still fits in [`MAX_JOURNAL_LEN`].
pub const MAX_PROBLEMS: usize = 8;

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Structure version, 1.
    pub version: u32,
    /// When it happened.
    pub time: Timestamp,
    /// Host it happened on.
    pub hostname: String,
    /// User it ran as.
    pub username: String,
    /// What happened.
    pub event: Event,
}

/// What a journal entry records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A step of a policy run failed (postcard variant 0).
    Failure(Failure),
    /// Part or all of the repository was checked (postcard variant 1).
    Check(CheckResult),
    /// The repository was pruned (postcard variant 2).
    Prune(PruneResult),
    /// A snapshot of a source was restored and verified as a recovery
    /// would, to measure its recovery time (postcard variant 3).
    Drill(DrillResult),
}

/// A failed step of a policy's source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The source, by its name in the policy.
    pub source: String,
    /// The repository the step was for, by its name in the policy (it may
    /// be another one than the repository holding the entry).
    pub repository: String,
    /// The step: `backup`, `before`, `after`, `copy`, `keep`, `prune`,
    /// `check` or `open`.
    pub step: String,
    /// What went wrong.
    pub message: String,
}

/// A check of the repository holding the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The share of pack data read whole (`all`, `3/7`, `10%`, or a byte
    /// count), or empty when only the structure was checked.
    pub subset: String,
    /// When the data read was group `group` of `groups` (1-based); both 0
    /// otherwise. Rolling checks go on with the next group.
    pub group: u32,
    /// How many groups; see `group`.
    pub groups: u32,
    /// Packs in the index.
    pub packs: u64,
    /// Packs read whole.
    pub packs_read: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// How long it took, in nanoseconds.
    pub duration_nanos: u64,
    /// How many problems it found; 0 when the repository is sound.
    pub problems: u64,
    /// The first problems, at most [`MAX_PROBLEMS`].
    pub first_problems: Vec<String>,
}

/// A prune of the repository holding the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneResult {
    /// Packs deleted.
    pub packs_removed: u64,
    /// Bytes those packs held.
    pub bytes_freed: u64,
    /// How long it took, in nanoseconds.
    pub duration_nanos: u64,
}

/// A restore drill of a policy's source from the repository holding the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillResult {
    /// The source, by its name in the policy.
    pub source: String,
    /// The repository restored from, by its name in the policy.
    pub repository: String,
    /// The snapshot restored.
    pub snapshot: SnapshotId,
    /// From the start of the restore to the end of verification, in
    /// nanoseconds: the measured recovery time.
    pub duration_nanos: u64,
    /// Bytes of file content restored.
    pub bytes: u64,
    /// Files restored and verified.
    pub files: u64,
    /// Whether everything restored, verified, and passed the source's own
    /// verification.
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub reason: String,
}

impl Versioned for JournalEntry {
    const WHAT: &'static str = "journal entry";
    const VERSION: u32 = 1;

    fn validate(&self) -> Result<()> {
        if !self.time.is_valid() {
            return Err(FormatError::malformed(
                Self::WHAT,
                "nanoseconds out of range",
            ));
        }
        if let Event::Check(c) = &self.event {
            if c.first_problems.len() > MAX_PROBLEMS {
                return Err(FormatError::malformed(Self::WHAT, "too many problems"));
            }
            if c.group > c.groups || (c.groups > 0 && c.group == 0) {
                return Err(FormatError::malformed(Self::WHAT, "group out of range"));
            }
        }
        match self.clone().texts().iter().any(|t| t.len() > MAX_TEXT_LEN) {
            true => Err(FormatError::malformed(Self::WHAT, "text too long")),
            false => Ok(()),
        }
    }
}

/// Cuts `text` to at most [`MAX_TEXT_LEN`] bytes, at a character boundary.
pub(crate) fn cut(text: &mut String) {
    let mut end = text.len().min(MAX_TEXT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

impl JournalEntry {
    /// Every text of the entry.
    fn texts(&mut self) -> Vec<&mut String> {
        let mut texts = vec![&mut self.hostname, &mut self.username];
        match &mut self.event {
            Event::Failure(f) => texts.extend([
                &mut f.source,
                &mut f.repository,
                &mut f.step,
                &mut f.message,
            ]),
            Event::Check(c) => {
                texts.push(&mut c.subset);
                texts.extend(&mut c.first_problems);
            }
            Event::Drill(d) => texts.extend([&mut d.source, &mut d.repository, &mut d.reason]),
            Event::Prune(_) => {}
        }
        texts
    }

    /// Cuts every text to [`MAX_TEXT_LEN`] bytes, at a character boundary,
    /// and drops problems beyond [`MAX_PROBLEMS`], so that the entry is valid.
    pub fn fit(&mut self) {
        if let Event::Check(c) = &mut self.event {
            c.first_problems.truncate(MAX_PROBLEMS);
        }
        self.texts().into_iter().for_each(cut);
    }

    /// Seals the entry.
    pub fn seal(&self, keys: &MasterKeys) -> Vec<u8> {
        keys.seal(
            ObjectType::JournalEntry,
            None,
            &codec::encode(self),
            Some(3),
        )
    }

    /// Authenticates and decodes a sealed entry.
    pub fn open(bytes: &[u8], keys: &MasterKeys) -> Result<JournalEntry> {
        codec::decode(&keys.open(ObjectType::JournalEntry, None, bytes, MAX_JOURNAL_LEN)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> JournalEntry {
        JournalEntry {
            version: 1,
            time: Timestamp {
                secs: 1_800_000_000,
                nanos: 7,
            },
            hostname: "h".into(),
            username: "u".into(),
            event: Event::Failure(Failure {
                source: "db".into(),
                repository: "offsite".into(),
                step: "backup".into(),
                message: "pg_dump failed (exit status: 1)".into(),
            }),
        }
    }

    #[test]
    fn entries_round_trip_and_are_bound_to_their_role() {
        let keys = MasterKeys::generate();
        let sealed = failure().seal(&keys);
        assert_eq!(JournalEntry::open(&sealed, &keys).unwrap(), failure());
        assert!(crate::lock::LockRecord::open(&sealed, &keys).is_err());
        let other = MasterKeys::generate();
        assert!(JournalEntry::open(&sealed, &other).is_err());
    }

    #[test]
    fn the_encoding_is_pinned() {
        // SPEC.md §17.2 works through these bytes.
        let bytes = codec::encode(&failure());
        let mut expected = vec![1, 0x80, 0xc8, 0xce, 0xb4, 0x0d, 7, 1, b'h', 1, b'u', 0];
        expected.extend([2, b'd', b'b', 7]);
        expected.extend(b"offsite");
        expected.push(6);
        expected.extend(b"backup");
        expected.push(31);
        expected.extend(b"pg_dump failed (exit status: 1)");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_drill_round_trips() {
        let mut entry = failure();
        entry.event = Event::Drill(DrillResult {
            source: "db".into(),
            repository: "offsite".into(),
            snapshot: SnapshotId([9; 32]),
            duration_nanos: 1_500_000_000,
            bytes: 4096,
            files: 1,
            passed: false,
            reason: "pg_restore failed".into(),
        });
        let keys = MasterKeys::generate();
        assert_eq!(
            JournalEntry::open(&entry.seal(&keys), &keys).unwrap(),
            entry
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        let mut long = failure();
        if let Event::Failure(f) = &mut long.event {
            f.message = "x".repeat(MAX_TEXT_LEN + 1);
        }
        assert!(codec::decode::<JournalEntry>(&codec::encode(&long)).is_err());
        let check = |group, groups, problems: usize| {
            let mut e = failure();
            e.event = Event::Check(CheckResult {
                subset: "2/7".into(),
                group,
                groups,
                packs: 9,
                packs_read: 2,
                bytes_read: 100,
                duration_nanos: 5,
                problems: problems as u64,
                first_problems: vec!["p".into(); problems],
            });
            codec::decode::<JournalEntry>(&codec::encode(&e))
        };
        assert!(check(2, 7, 1).is_ok());
        assert!(check(0, 0, 0).is_ok());
        assert!(check(8, 7, 0).is_err());
        assert!(check(0, 7, 0).is_err());
        assert!(check(1, 7, MAX_PROBLEMS + 1).is_err());
    }

    #[test]
    fn fit_cuts_at_a_character_boundary_and_the_largest_entry_fits() {
        let mut entry = failure();
        entry.hostname = "é".repeat(MAX_TEXT_LEN);
        entry.fit();
        assert!(entry.hostname.len() <= MAX_TEXT_LEN && entry.hostname.len() >= MAX_TEXT_LEN - 1);
        assert_eq!(entry.username, "u");

        let long = "x".repeat(2 * MAX_TEXT_LEN);
        entry.event = Event::Check(CheckResult {
            subset: long.clone(),
            group: 0,
            groups: 0,
            packs: u64::MAX,
            packs_read: u64::MAX,
            bytes_read: u64::MAX,
            duration_nanos: u64::MAX,
            problems: u64::MAX,
            first_problems: vec![long.clone(); 2 * MAX_PROBLEMS],
        });
        entry.username = long;
        entry.fit();
        let bytes = codec::encode(&entry);
        assert!(bytes.len() <= MAX_JOURNAL_LEN, "{}", bytes.len());
        assert!(codec::decode::<JournalEntry>(&bytes).is_ok());
    }
}
