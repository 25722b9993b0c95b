//! Changing the tags of existing snapshots.
//!
//! Snapshot files are never modified: a snapshot with new tags is a new file
//! with a new ID. It is written before the old file is removed, so a crash in
//! between leaves both (the same tree under two IDs), never neither.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::repository::Repository;
use cairn_format::lock::Operation;
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};

/// How to change the tags of a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagChange {
    /// Tags to add when missing.
    pub add: Vec<String>,
    /// Tags to remove when present.
    pub remove: Vec<String>,
    /// Replace all tags with these; cannot be combined with `add` or `remove`.
    pub set: Option<Vec<String>>,
    /// Hold the snapshot until then ([`crate::hold`]), in place of any
    /// hold it has; a hold that lasts can only be extended.
    pub hold_until: Option<Timestamp>,
}

impl TagChange {
    /// Checks the change makes sense: something to do, `set` alone, no tag both
    /// added and removed, no empty tag and no tag with a comma (which filters
    /// use to separate tags).
    pub fn validate(&self) -> Result<()> {
        if self.set.is_some() && !(self.add.is_empty() && self.remove.is_empty()) {
            return Err(Error::Invalid(
                "setting tags cannot be combined with adding or removing them".into(),
            ));
        }
        if self.set.is_none()
            && self.add.is_empty()
            && self.remove.is_empty()
            && self.hold_until.is_none()
        {
            return Err(Error::Invalid(
                "no tag change given: add, remove or set tags, or hold".into(),
            ));
        }
        if let Some(both) = self.add.iter().find(|t| self.remove.contains(t)) {
            return Err(Error::Invalid(format!(
                "tag {both:?} is both added and removed"
            )));
        }
        let all = self
            .add
            .iter()
            .chain(&self.remove)
            .chain(self.set.iter().flatten());
        for tag in all {
            if tag.is_empty() || tag.contains(',') {
                return Err(Error::Invalid(format!(
                    "invalid tag {tag:?}: tags are not empty and contain no comma"
                )));
            }
            crate::hold::check_tag(tag)?;
        }
        Ok(())
    }

    /// The tags `current` has after this change: existing tags keep their
    /// order, new ones follow in the order given, each tag once.
    pub fn apply(&self, current: &[String]) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        let base = self.set.as_deref().unwrap_or(current);
        let hold = self.hold_until.map(crate::hold::tag);
        // A new hold takes the place of every hold tag there was.
        let kept = |tag: &String| match &hold {
            Some(new) if tag.starts_with(crate::hold::PREFIX) => tag == new,
            _ => !self.remove.contains(tag),
        };
        for tag in base.iter().chain(&self.add).chain(&hold) {
            if kept(tag) && !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        tags
    }
}

/// True when `a` and `b` hold the same tags, ignoring order and repeats.
fn same_tags(a: &[String], b: &[String]) -> bool {
    let sorted = |t: &[String]| {
        let mut v = t.to_vec();
        v.sort();
        v.dedup();
        v
    };
    sorted(a) == sorted(b)
}

impl Repository {
    /// Stores `new` as a new snapshot file, then removes the file of `old`;
    /// returns the new ID. If removing fails, both files remain and the
    /// error says so.
    pub fn rewrite_snapshot(&self, old: &SnapshotId, new: &Snapshot) -> Result<SnapshotId> {
        let id = self.save_snapshot(new)?;
        if id == *old {
            return Ok(id);
        }
        self.backend()
            .remove(FileKind::Snapshot, &old.to_hex())
            .map_err(|e| {
                Error::Invalid(format!(
                    "snapshot {old} was rewritten as {id}, but the old file could not be removed: {e}"
                ))
            })?;
        Ok(id)
    }
}

/// Applies `change` to the tags of each snapshot in `ids` (each once, in the
/// order given) and returns `(old ID, new ID)` for every snapshot rewritten.
/// A snapshot whose set of tags stays the same is left alone.
///
/// Everything is checked and every snapshot read before anything is written.
/// The rewrite runs in a session, so that a prune keeps what the new
/// snapshots use (SPEC.md §15).
pub fn change_tags(
    repo: &Repository,
    ids: &[SnapshotId],
    change: &TagChange,
) -> Result<Vec<(SnapshotId, SnapshotId)>> {
    change.validate()?;
    // Begun before the snapshots are read, so that a prune running meanwhile
    // waits for the rewrite instead of deleting what the copies will use.
    let session = repo.start_session(Operation::Rewrite)?;
    let mut todo: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for id in ids {
        if todo.iter().any(|(seen, _)| seen == id) {
            continue;
        }
        todo.push((*id, repo.load_snapshot(id)?));
    }
    todo.retain(|(_, s)| !same_tags(&change.apply(&s.tags), &s.tags));
    let now = Timestamp::now();
    for (id, s) in &todo {
        crate::hold::check_kept(id, &s.tags, &change.apply(&s.tags), now)?;
    }
    let mut changed = Vec::new();
    for (id, snapshot) in todo {
        let new = Snapshot {
            tags: change.apply(&snapshot.tags),
            ..snapshot
        };
        session.check_fresh()?;
        changed.push((id, repo.rewrite_snapshot(&id, &new)?));
    }
    session.end()?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn apply_adds_removes_and_sets() {
        let add = TagChange {
            add: tags(&["b", "c", "c"]),
            ..Default::default()
        };
        assert_eq!(add.apply(&tags(&["a", "b"])), tags(&["a", "b", "c"]));
        let remove = TagChange {
            remove: tags(&["a", "x"]),
            ..Default::default()
        };
        assert_eq!(remove.apply(&tags(&["a", "b", "a"])), tags(&["b"]));
        let both = TagChange {
            add: tags(&["n"]),
            remove: tags(&["a"]),
            set: None,
            hold_until: None,
        };
        assert_eq!(both.apply(&tags(&["a", "b"])), tags(&["b", "n"]));
        let set = TagChange {
            set: Some(tags(&["z", "y", "z"])),
            ..Default::default()
        };
        assert_eq!(set.apply(&tags(&["a"])), tags(&["z", "y"]));
        let clear = TagChange {
            set: Some(vec![]),
            ..Default::default()
        };
        assert!(clear.apply(&tags(&["a"])).is_empty());
        let until = Timestamp {
            secs: 2_000_000_000,
            nanos: 0,
        };
        let hold = TagChange {
            hold_until: Some(until),
            ..Default::default()
        };
        let old_hold = crate::hold::tag(Timestamp {
            secs: 1_900_000_000,
            nanos: 0,
        });
        assert_eq!(
            hold.apply(&tags(&["a", &old_hold])),
            tags(&["a", &crate::hold::tag(until)])
        );
        assert!(same_tags(&tags(&["a", "b"]), &tags(&["b", "a", "a"])));
        assert!(!same_tags(&tags(&["a"]), &tags(&["a", "b"])));
    }

    #[test]
    fn validate_refuses_what_cannot_be_meant() {
        let bad = [
            TagChange::default(),
            TagChange {
                add: tags(&["a"]),
                set: Some(tags(&["b"])),
                ..Default::default()
            },
            TagChange {
                add: tags(&["a"]),
                remove: tags(&["a"]),
                set: None,
                hold_until: None,
            },
            TagChange {
                add: tags(&[""]),
                ..Default::default()
            },
            TagChange {
                set: Some(tags(&["a,b"])),
                ..Default::default()
            },
        ];
        for change in bad {
            assert!(change.validate().is_err(), "{change:?}");
        }
        let clear = TagChange {
            set: Some(vec![]),
            ..Default::default()
        };
        assert!(clear.validate().is_ok());
    }
}
