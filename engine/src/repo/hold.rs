//! Compliance holds (SPEC.md §11.5): a snapshot tagged
//! `hold-until=TIME` is not removed before that time, by `forget` (with a
//! policy or by name) or by `run`'s keep rules, on any host; and a hold can
//! be extended, never shortened or removed while it lasts.
//!
//! ```
//! use cairn_engine::hold;
//! use cairn_format::Timestamp;
//! let until = Timestamp { secs: 1_900_000_000, nanos: 0 };
//! let tags = vec![hold::tag(until)];
//! assert_eq!(tags[0], "hold-until=2030-03-17T17:46:40Z");
//! assert!(hold::holds(&tags, Timestamp { secs: 1_800_000_000, nanos: 0 }));
//! assert!(!hold::holds(&tags, until));
//! ```

use crate::error::{Error, Result};
use cairn_format::{SnapshotId, Timestamp};

/// What every hold tag starts with.
pub const PREFIX: &str = "hold-until=";

/// How a hold tag that cannot be read counts: as a hold without end, so
/// that damage or a mistake never frees a snapshot early.
const FOREVER: Timestamp = Timestamp {
    secs: i64::MAX,
    nanos: 0,
};

/// The tag that holds a snapshot until `until`.
pub fn tag(until: Timestamp) -> String {
    format!("{PREFIX}{}", text(until))
}

/// `until` as the tag writes it (RFC 3339, UTC).
pub fn text(until: Timestamp) -> String {
    match until == FOREVER {
        true => "an unreadable date (for ever)".into(),
        false => jiff::Timestamp::new(until.secs, until.nanos as i32)
            .map_or_else(|_| format!("@{}", until.secs), |t| t.to_string()),
    }
}

/// The date of a hold tag: `None` for another tag, [`FOREVER`] for one
/// whose date cannot be read.
fn date(tag: &str) -> Option<Timestamp> {
    let text = tag.strip_prefix(PREFIX)?;
    Some(
        text.parse::<jiff::Timestamp>()
            .map_or(FOREVER, |t| Timestamp {
                secs: t.as_second(),
                nanos: t.subsec_nanosecond() as u32,
            }),
    )
}

/// Until when `tags` hold their snapshot: the latest of their holds.
pub fn until(tags: &[String]) -> Option<Timestamp> {
    tags.iter().filter_map(|t| date(t)).max()
}

/// True when `tags` hold their snapshot at `now`.
pub fn holds(tags: &[String], now: Timestamp) -> bool {
    until(tags).is_some_and(|u| u > now)
}

/// Makes `tags` hold their snapshot for `days` days from `from` (a retained
/// backup's hold, SPEC §2.6), unless they hold it longer already.
pub fn hold_for(tags: &mut Vec<String>, from: Timestamp, days: u32) {
    let until = Timestamp {
        secs: from.secs + i64::from(days) * 86_400,
        nanos: 0,
    };
    if self::until(tags).is_none_or(|held| held < until) {
        tags.retain(|t| !t.starts_with(PREFIX));
        tags.push(tag(until));
    }
}

/// `tags` without hold tags.
pub fn without_holds(tags: &[String]) -> Vec<&String> {
    tags.iter().filter(|t| !t.starts_with(PREFIX)).collect()
}

/// Refuses a hold tag whose date cannot be read, before it is written.
pub fn check_tag(tag: &str) -> Result<()> {
    match date(tag) {
        Some(FOREVER) => Err(Error::Invalid(format!(
            "invalid hold {tag:?}: give {PREFIX} and an RFC 3339 time, such as {PREFIX}2027-01-31T00:00:00Z"
        ))),
        _ => Ok(()),
    }
}

/// Fails when snapshot `id`, with `tags`, is held at `now`.
pub fn check_removable(id: &SnapshotId, tags: &[String], now: Timestamp) -> Result<()> {
    match until(tags).filter(|u| *u > now) {
        Some(u) => Err(Error::Invalid(format!(
            "snapshot {} is held until {}: it cannot be removed before then",
            id.short(),
            text(u)
        ))),
        None => Ok(()),
    }
}

/// Fails when changing the tags of snapshot `id` from `old` to `new` would
/// end or shorten a hold that lasts at `now`.
pub fn check_kept(id: &SnapshotId, old: &[String], new: &[String], now: Timestamp) -> Result<()> {
    match (until(old).filter(|u| *u > now), until(new)) {
        (Some(held), kept) if kept < Some(held) => Err(Error::Invalid(format!(
            "snapshot {} is held until {}: a hold can be extended, not shortened or removed",
            id.short(),
            text(held)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    #[test]
    fn holds_last_until_their_latest_date_and_only_grow() {
        let id = SnapshotId([1; 32]);
        let short = vec![tag(at(100)), "x".into()];
        let long = vec![tag(at(100)), tag(at(200))];
        assert_eq!(until(&long), Some(at(200)));
        assert!(holds(&short, at(99)) && !holds(&short, at(100)));
        assert!(check_removable(&id, &short, at(99)).is_err());
        assert!(check_removable(&id, &short, at(100)).is_ok());
        assert!(check_kept(&id, &short, &long, at(50)).is_ok());
        assert!(check_kept(&id, &long, &short, at(50)).is_err());
        assert!(check_kept(&id, &long, &[], at(50)).is_err());
        assert!(check_kept(&id, &long, &[], at(300)).is_ok());
    }

    #[test]
    fn an_unreadable_hold_holds_for_ever_and_is_refused_when_written() {
        let bad = vec![format!("{PREFIX}next tuesday")];
        assert!(holds(&bad, at(i64::MAX - 1)));
        assert!(check_tag(&bad[0]).is_err());
        assert!(check_tag(&tag(at(5))).is_ok());
        assert!(check_tag("other").is_ok());
        assert_eq!(date(&tag(at(5))), Some(at(5)));
    }
}
