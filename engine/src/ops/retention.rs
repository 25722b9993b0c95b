//! Retention policies: which snapshots `cairn forget` keeps, and why.
//!
//! Pure logic, no I/O. Snapshots are grouped (by default by host and paths),
//! each group is sorted newest first, and every rule of the [`Policy`] marks the
//! snapshots it keeps with its [`Reason`]. Calendar buckets (hour, day, ISO
//! week, month, year) are taken in the given time zone.
//!
//! ```
//! use cairn_engine::retention::{apply, Policy, DEFAULT_GROUP_BY};
//! let policy = Policy { daily: Some(7), within: Some("1m".parse().unwrap()), ..Default::default() };
//! let groups = apply(&[], &policy, &DEFAULT_GROUP_BY, &jiff::tz::TimeZone::UTC).unwrap();
//! assert!(groups.is_empty());
//! assert!(apply(&[], &Policy::default(), &DEFAULT_GROUP_BY, &jiff::tz::TimeZone::UTC).is_err());
//! ```

use crate::error::{Error, Result};
pub use crate::select::{GroupBy, GroupKey};
use cairn_format::snapshot::Snapshot;
use cairn_format::SnapshotId;
use jiff::tz::TimeZone;
use jiff::{Span, Zoned};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The grouping `forget` uses when none is given: host and paths, as restic.
pub const DEFAULT_GROUP_BY: GroupBy = GroupBy {
    host: true,
    paths: true,
    tags: false,
};

/// What to keep in each group. A count of `Some(0)` keeps nothing, like `None`.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Keep the N newest snapshots.
    pub last: Option<u32>,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    pub hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest days that have one.
    pub daily: Option<u32>,
    /// Keep the newest snapshot of each of the N newest ISO weeks that have one.
    pub weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest months that have one.
    pub monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest years that have one.
    pub yearly: Option<u32>,
    /// Keep every snapshot within this duration of the group's newest.
    pub within: Option<Within>,
    /// Keep the newest snapshot of each hour within this duration of the newest.
    pub within_hourly: Option<Within>,
    /// Keep the newest snapshot of each day within this duration of the newest.
    pub within_daily: Option<Within>,
    /// Keep the newest snapshot of each ISO week within this duration of the newest.
    pub within_weekly: Option<Within>,
    /// Keep the newest snapshot of each month within this duration of the newest.
    pub within_monthly: Option<Within>,
    /// Keep the newest snapshot of each year within this duration of the newest.
    pub within_yearly: Option<Within>,
    /// Keep every snapshot that has any of these tags.
    pub tags: Vec<String>,
}

impl Policy {
    /// True when the policy can keep nothing: no positive count, no duration, no tag.
    pub fn is_empty(&self) -> bool {
        self.rules().next().is_none() && self.tags.is_empty()
    }

    /// The rules, in [`Reason`] order, without the tag rule.
    fn rules(&self) -> impl Iterator<Item = Rule> {
        use Period::*;
        let counts = [
            (Reason::Last, None, self.last),
            (Reason::Hourly, Some(Hour), self.hourly),
            (Reason::Daily, Some(Day), self.daily),
            (Reason::Weekly, Some(Week), self.weekly),
            (Reason::Monthly, Some(Month), self.monthly),
            (Reason::Yearly, Some(Year), self.yearly),
        ];
        let withins = [
            (Reason::Within, None, self.within),
            (Reason::WithinHourly, Some(Hour), self.within_hourly),
            (Reason::WithinDaily, Some(Day), self.within_daily),
            (Reason::WithinWeekly, Some(Week), self.within_weekly),
            (Reason::WithinMonthly, Some(Month), self.within_monthly),
            (Reason::WithinYearly, Some(Year), self.within_yearly),
        ];
        let counts = counts.into_iter().filter_map(|(reason, period, n)| {
            let limit = n.filter(|&n| n > 0)? as usize;
            Some(Rule {
                reason,
                period,
                limit: Some(limit),
                within: None,
            })
        });
        let withins = withins.into_iter().filter_map(|(reason, period, w)| {
            Some(Rule {
                reason,
                period,
                limit: None,
                within: Some(w?),
            })
        });
        counts.chain(withins)
    }
}

/// A calendar duration such as `1y5m7d2h`: years (`y`), months (`m`), weeks
/// (`w`), days (`d`) and hours (`h`), each at most once and in that order.
/// It is subtracted from a time in its time zone with calendar arithmetic, so
/// `1m` before 31 March is the end of February and `1d` spans a 23-hour day.
#[derive(Clone, Copy, Debug)]
pub struct Within {
    span: Span,
}

impl FromStr for Within {
    type Err = Error;

    fn from_str(text: &str) -> Result<Within> {
        let bad = || {
            Error::Invalid(format!(
                "invalid duration {text:?}: expected e.g. 30d or 1y5m7d2h \
                 (units y, m, w, d, h, each at most once, in that order)"
            ))
        };
        let units = ['y', 'm', 'w', 'd', 'h'];
        if text.is_empty() {
            return Err(bad());
        }
        let (mut span, mut rest, mut next_unit) = (Span::new(), text, 0);
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (number, tail) = rest.split_at(digits);
            let n: i64 = number.parse().map_err(|_| bad())?;
            let unit = tail.chars().next().ok_or_else(bad)?;
            let skipped = units[next_unit..]
                .iter()
                .position(|&u| u == unit)
                .ok_or_else(bad)?;
            next_unit += skipped + 1;
            span = match unit {
                'y' => span.try_years(n),
                'm' => span.try_months(n),
                'w' => span.try_weeks(n),
                'd' => span.try_days(n),
                _ => span.try_hours(n),
            }
            .map_err(|_| bad())?;
            rest = &tail[1..];
        }
        Ok(Within { span })
    }
}

impl Within {
    /// The earliest time within the duration of `newest`; `None` when that is
    /// before the earliest representable time, so that everything is within.
    fn earliest(&self, newest: &Zoned) -> Option<jiff::Timestamp> {
        newest.checked_sub(self.span).ok().map(|t| t.timestamp())
    }
}

/// Why a snapshot is kept: the policy option that keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// One of the `last` newest.
    Last,
    /// Newest of its hour.
    Hourly,
    /// Newest of its day.
    Daily,
    /// Newest of its ISO week.
    Weekly,
    /// Newest of its month.
    Monthly,
    /// Newest of its year.
    Yearly,
    /// Within the duration of the newest.
    Within,
    /// Newest of its hour, within the duration.
    WithinHourly,
    /// Newest of its day, within the duration.
    WithinDaily,
    /// Newest of its ISO week, within the duration.
    WithinWeekly,
    /// Newest of its month, within the duration.
    WithinMonthly,
    /// Newest of its year, within the duration.
    WithinYearly,
    /// Has one of the policy's tags.
    Tag,
    /// Under a compliance hold that has not ended ([`crate::hold`]).
    Hold,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Last => "last",
            Reason::Hourly => "hourly",
            Reason::Daily => "daily",
            Reason::Weekly => "weekly",
            Reason::Monthly => "monthly",
            Reason::Yearly => "yearly",
            Reason::Within => "within",
            Reason::WithinHourly => "within-hourly",
            Reason::WithinDaily => "within-daily",
            Reason::WithinWeekly => "within-weekly",
            Reason::WithinMonthly => "within-monthly",
            Reason::WithinYearly => "within-yearly",
            Reason::Tag => "tag",
            Reason::Hold => "hold",
        })
    }
}

/// The verdict on one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot.
    pub id: SnapshotId,
    /// Why it is kept, in [`Reason`] order; empty means remove it.
    pub reasons: Vec<Reason>,
}

/// The verdicts on one group of snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// What the group's snapshots share (paths and tags as sorted sets).
    pub key: GroupKey,
    /// One per snapshot, newest first.
    pub decisions: Vec<Decision>,
}

/// Calendar bucket sizes, in the time zone given to [`apply`].
#[derive(Clone, Copy)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The bucket of `t`: equal for two times exactly when they share the period.
    /// Hours are by local clock, so the two passes of a repeated hour share one.
    fn bucket(self, t: &Zoned) -> (i16, i8, i8, i8) {
        match self {
            Period::Hour => (t.year(), t.month(), t.day(), t.hour()),
            Period::Day => (t.year(), t.month(), t.day(), 0),
            Period::Week => {
                let week = t.date().iso_week_date();
                (week.year(), week.week(), 0, 0)
            }
            Period::Month => (t.year(), t.month(), 0, 0),
            Period::Year => (t.year(), 0, 0, 0),
        }
    }
}

/// One keep rule: walking newest first, keep a snapshot when its bucket
/// (its own when `period` is `None`) differs from the last one kept, stopping
/// after `limit` or at the first snapshot older than `within` of the newest.
struct Rule {
    reason: Reason,
    period: Option<Period>,
    limit: Option<usize>,
    within: Option<Within>,
}

impl Rule {
    /// Adds the rule's reason to the reasons of the snapshots it keeps;
    /// `times` is newest first and not empty.
    fn mark(&self, times: &[Zoned], reasons: &mut [Vec<Reason>]) {
        let earliest = self.within.and_then(|w| w.earliest(&times[0]));
        let (mut kept, mut last) = (0, None);
        for (time, reasons) in times.iter().zip(reasons) {
            if self.limit.is_some_and(|n| kept == n)
                || earliest.is_some_and(|e| time.timestamp() < e)
            {
                break;
            }
            let bucket = self.period.map(|p| p.bucket(time));
            if bucket.is_none() || bucket != last {
                reasons.push(self.reason);
                kept += 1;
                last = bucket;
            }
        }
    }
}

/// Groups `snapshots` by `group_by` and decides, for each, whether `policy`
/// keeps it and why. Groups come ordered by key, decisions newest first (time,
/// then ID, descending). Local times are taken in `tz`. A snapshot under a
/// compliance hold is kept whatever the policy says ([`Reason::Hold`]).
///
/// Fails when the policy is empty, or a snapshot's time is out of range.
pub fn apply(
    snapshots: &[(SnapshotId, Snapshot)],
    policy: &Policy,
    group_by: &GroupBy,
    tz: &TimeZone,
) -> Result<Vec<Group>> {
    if policy.is_empty() {
        return Err(Error::Invalid(
            "no retention policy given; refusing to remove every snapshot".into(),
        ));
    }
    let now = cairn_format::Timestamp::now();
    let mut groups: BTreeMap<GroupKey, Vec<(&SnapshotId, &Snapshot)>> = BTreeMap::new();
    for (id, snapshot) in snapshots {
        groups
            .entry(GroupKey::of(snapshot, *group_by))
            .or_default()
            .push((id, snapshot));
    }
    groups
        .into_iter()
        .map(|(key, mut list)| {
            list.sort_by(|a, b| (b.1.time, b.0).cmp(&(a.1.time, a.0)));
            let times = list
                .iter()
                .map(|(id, s)| {
                    jiff::Timestamp::new(s.time.secs, s.time.nanos as i32)
                        .map(|t| t.to_zoned(tz.clone()))
                        .map_err(|e| {
                            Error::Invalid(format!("snapshot {} has a bad time: {e}", id.short()))
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let mut reasons = vec![Vec::new(); list.len()];
            for rule in policy.rules() {
                rule.mark(&times, &mut reasons);
            }
            let decisions = list
                .iter()
                .zip(reasons)
                .map(|((id, snapshot), mut reasons)| {
                    if snapshot.tags.iter().any(|t| policy.tags.contains(t)) {
                        reasons.push(Reason::Tag);
                    }
                    if crate::hold::holds(&snapshot.tags, now) {
                        reasons.push(Reason::Hold);
                    }
                    Decision { id: **id, reasons }
                })
                .collect();
            Ok(Group { key, decisions })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_format::Timestamp;
    use jiff::civil::DateTime;
    use jiff::tz::Offset;

    /// Central European time: 02:00 -> 03:00 on the last Sunday of March,
    /// 03:00 -> 02:00 on the last Sunday of October (2026-03-29, 2026-10-25).
    fn cet() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    /// The instant of local time `text` ("2026-03-29 01:30") in `tz`. A time in
    /// a repeated hour must name its offset ("2026-10-25 02:30+02"), which is
    /// checked against the zone.
    fn instant(tz: &TimeZone, text: &str) -> Timestamp {
        let (civil, offset) = match text.split_once('+') {
            Some((civil, hours)) => {
                let offset = Offset::from_hours(hours.parse().unwrap()).unwrap();
                (civil, Some(offset))
            }
            None => (text, None),
        };
        let dt: DateTime = civil.parse().unwrap();
        let t = match offset {
            Some(offset) => {
                let t = offset.to_timestamp(dt).unwrap();
                assert_eq!(tz.to_offset(t), offset, "{text} is not a time in the zone");
                t
            }
            None => tz.to_ambiguous_timestamp(dt).unambiguous().unwrap(),
        };
        Timestamp {
            secs: t.as_second(),
            nanos: t.subsec_nanosecond() as u32,
        }
    }

    /// Snapshot number `n` (its ID is `n` in every byte).
    fn snap(
        n: usize,
        time: Timestamp,
        host: &str,
        paths: &[&str],
        tags: &[&str],
    ) -> (SnapshotId, Snapshot) {
        crate::select::tests::snapshot(n as u8, time, host, paths, tags)
    }

    /// Runs `apply` and returns each input snapshot's reasons, space-separated,
    /// in input order; checks that decisions come newest first.
    fn reasons(
        list: &[(SnapshotId, Snapshot)],
        policy: &Policy,
        by: GroupBy,
        tz: &TimeZone,
    ) -> Vec<String> {
        let groups = apply(list, policy, &by, tz).unwrap();
        let mut found = BTreeMap::new();
        for group in &groups {
            let times: Vec<_> = group
                .decisions
                .iter()
                .map(|d| list[d.id.0[0] as usize].1.time)
                .collect();
            assert!(
                times.is_sorted_by(|a, b| a >= b),
                "not newest first: {times:?}"
            );
            for d in &group.decisions {
                let words: Vec<_> = d.reasons.iter().map(Reason::to_string).collect();
                found.insert(d.id.0[0] as usize, words.join(" "));
            }
        }
        assert_eq!(found.len(), list.len(), "every snapshot gets one decision");
        found.into_values().collect()
    }

    fn within(text: &str) -> Option<Within> {
        Some(text.parse().unwrap())
    }

    /// A hand-worked case: snapshots as local times in `tz`, each with the
    /// reasons (space-separated, "" for removed) it must get.
    struct Case {
        name: &'static str,
        tz: TimeZone,
        policy: Policy,
        snapshots: &'static [(&'static str, &'static str)],
    }

    fn cases() -> Vec<Case> {
        let utc = TimeZone::UTC;
        vec![
            Case {
                name: "last 3 of 5, given out of order",
                tz: utc.clone(),
                policy: Policy {
                    last: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-01-03 10:00", "last"),
                    ("2026-01-01 10:00", ""),
                    ("2026-01-05 10:00", "last"),
                    ("2026-01-02 10:00", ""),
                    ("2026-01-04 10:00", "last"),
                ],
            },
            Case {
                name: "last 1 with equal times: the larger ID counts as newer",
                tz: utc.clone(),
                policy: Policy {
                    last: Some(1),
                    ..Default::default()
                },
                snapshots: &[("2026-01-01 10:00", ""), ("2026-01-01 10:00", "last")],
            },
            Case {
                name: "daily 2, several a day: newest of each of the two newest days",
                tz: utc.clone(),
                policy: Policy {
                    daily: Some(2),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-02-01 08:00", ""),
                    ("2026-02-01 20:00", ""),
                    ("2026-02-02 00:00", ""),
                    ("2026-02-02 12:00", ""),
                    ("2026-02-02 23:59", "daily"),
                    ("2026-02-03 09:00", "daily"),
                ],
            },
            Case {
                name: "daily 3 across the 23-hour spring-forward day",
                tz: cet(),
                policy: Policy {
                    daily: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-03-28 23:30", "daily"),
                    ("2026-03-29 00:30", ""),
                    ("2026-03-29 03:30", ""),
                    ("2026-03-29 23:30", "daily"),
                    ("2026-03-30 00:30", "daily"),
                ],
            },
            Case {
                name: "daily 3 across the 25-hour fall-back day",
                tz: cet(),
                policy: Policy {
                    daily: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-10-24 23:30", "daily"),
                    ("2026-10-25 00:30", ""),
                    ("2026-10-25 02:30+02", ""),
                    ("2026-10-25 02:30+01", ""),
                    ("2026-10-25 23:30", "daily"),
                    ("2026-10-26 00:30", "daily"),
                ],
            },
            Case {
                name: "hourly 3: both passes of the repeated 02:00 hour are one bucket",
                tz: cet(),
                policy: Policy {
                    hourly: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-10-25 01:30", "hourly"),
                    ("2026-10-25 02:10+02", ""),
                    ("2026-10-25 02:50+02", ""),
                    ("2026-10-25 02:10+01", ""),
                    ("2026-10-25 02:40+01", "hourly"),
                    ("2026-10-25 03:30", "hourly"),
                ],
            },
            // 2026-12-31 is a Thursday, so Mon 2026-12-28 .. Sun 2027-01-03 is
            // ISO week 2026-W53, and 2027-W01 starts on Mon 2027-01-04.
            Case {
                name: "weekly 3 across the year boundary (ISO weeks, from Monday)",
                tz: utc.clone(),
                policy: Policy {
                    weekly: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-12-21 12:00", ""),
                    ("2026-12-27 12:00", "weekly"),
                    ("2026-12-28 12:00", ""),
                    ("2027-01-01 12:00", ""),
                    ("2027-01-03 12:00", "weekly"),
                    ("2027-01-05 12:00", "weekly"),
                ],
            },
            Case {
                name: "monthly 3 after a five-month gap reaches back before it",
                tz: utc.clone(),
                policy: Policy {
                    monthly: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-01-15 12:00", ""),
                    ("2026-02-10 12:00", ""),
                    ("2026-02-20 12:00", "monthly"),
                    ("2026-03-05 12:00", "monthly"),
                    ("2026-09-01 12:00", ""),
                    ("2026-09-30 12:00", "monthly"),
                ],
            },
            Case {
                name: "monthly 2: the same month a year apart is another month",
                tz: utc.clone(),
                policy: Policy {
                    monthly: Some(2),
                    ..Default::default()
                },
                snapshots: &[
                    ("2025-09-01 12:00", ""),
                    ("2025-09-30 12:00", "monthly"),
                    ("2026-09-30 12:00", "monthly"),
                ],
            },
            Case {
                name: "yearly 3",
                tz: utc.clone(),
                policy: Policy {
                    yearly: Some(3),
                    ..Default::default()
                },
                snapshots: &[
                    ("2024-06-01 12:00", ""),
                    ("2024-12-31 23:00", "yearly"),
                    ("2025-03-01 12:00", ""),
                    ("2025-12-31 23:59", "yearly"),
                    ("2026-01-01 00:00", "yearly"),
                ],
            },
            // Tue 03-03 and Mon 03-02 are one ISO week; Sun 03-01 and Fri 02-27
            // the week before; 03-01 is in March, 02-27 in February.
            Case {
                name: "daily 2 + weekly 2 + monthly 2, reasons overlap",
                tz: utc.clone(),
                policy: Policy {
                    daily: Some(2),
                    weekly: Some(2),
                    monthly: Some(2),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-03-03 10:00", "daily weekly monthly"),
                    ("2026-03-02 10:00", "daily"),
                    ("2026-03-01 10:00", "weekly"),
                    ("2026-02-27 10:00", "monthly"),
                    ("2026-02-20 10:00", ""),
                    ("2026-01-30 10:00", ""),
                ],
            },
            Case {
                name: "within 2d and within-daily 7d, boundaries included",
                tz: utc.clone(),
                policy: Policy {
                    within: within("2d"),
                    within_daily: within("7d"),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-05-10 12:00", "within within-daily"),
                    ("2026-05-10 08:00", "within"),
                    ("2026-05-08 12:00", "within within-daily"),
                    ("2026-05-08 11:59", ""),
                    ("2026-05-05 09:00", "within-daily"),
                    ("2026-05-03 12:00", "within-daily"),
                    ("2026-05-02 23:00", ""),
                ],
            },
            Case {
                name: "within 1m of 03-31 reaches back to 02-28, not 30 days",
                tz: utc.clone(),
                policy: Policy {
                    within: within("1m"),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-03-31 12:00", "within"),
                    ("2026-03-03 12:00", "within"),
                    ("2026-02-28 12:00", "within"),
                    ("2026-02-28 11:59", ""),
                ],
            },
            Case {
                name: "within 1d over the spring-forward day is 23 hours",
                tz: cet(),
                policy: Policy {
                    within: within("1d"),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-03-29 12:00", "within"),
                    ("2026-03-28 12:00", "within"),
                    ("2026-03-28 11:30", ""),
                ],
            },
            Case {
                name: "within 1w2d3h",
                tz: utc.clone(),
                policy: Policy {
                    within: within("1w2d3h"),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-05-10 12:00", "within"),
                    ("2026-05-01 09:00", "within"),
                    ("2026-05-01 08:59", ""),
                ],
            },
            Case {
                name: "within-monthly 1y keeps the newest of each month of the last year",
                tz: utc.clone(),
                policy: Policy {
                    within_monthly: within("1y"),
                    last: Some(1),
                    ..Default::default()
                },
                snapshots: &[
                    ("2026-05-10 12:00", "last within-monthly"),
                    ("2026-05-01 12:00", ""),
                    ("2026-01-20 12:00", "within-monthly"),
                    ("2025-05-10 12:00", "within-monthly"),
                    ("2025-05-10 11:00", ""),
                ],
            },
        ]
    }

    #[test]
    fn hand_worked_cases() {
        for case in cases() {
            let list: Vec<_> = case
                .snapshots
                .iter()
                .enumerate()
                .map(|(n, (time, _))| snap(n, instant(&case.tz, time), "h", &["/x"], &[]))
                .collect();
            let expected: Vec<_> = case.snapshots.iter().map(|(_, r)| r.to_string()).collect();
            let got = reasons(&list, &case.policy, DEFAULT_GROUP_BY, &case.tz);
            assert_eq!(got, expected, "case: {}", case.name);
        }
    }

    #[test]
    fn time_zone_decides_the_day() {
        // The same instants: 23:00Z on 06-01 is 01:00 on 06-02 in CEST (+02).
        let list: Vec<_> = ["2026-06-01 23:00", "2026-06-01 20:00", "2026-05-31 23:30"]
            .iter()
            .enumerate()
            .map(|(n, t)| snap(n, instant(&TimeZone::UTC, t), "h", &["/x"], &[]))
            .collect();
        let policy = Policy {
            daily: Some(2),
            ..Default::default()
        };
        // UTC days: 06-01, 06-01, 05-31.
        assert_eq!(
            reasons(&list, &policy, DEFAULT_GROUP_BY, &TimeZone::UTC),
            ["daily", "", "daily"]
        );
        // CET days: 06-02, 06-01, 06-01.
        assert_eq!(
            reasons(&list, &policy, DEFAULT_GROUP_BY, &cet()),
            ["daily", "daily", ""]
        );
    }

    #[test]
    fn tags_keep_whatever_else_happens() {
        let utc = TimeZone::UTC;
        let at = |t| instant(&utc, t);
        let list = [
            snap(0, at("2026-01-01 10:00"), "h", &["/x"], &["keep"]),
            snap(
                1,
                at("2026-01-02 10:00"),
                "h",
                &["/x"],
                &["other", "monthly"],
            ),
            snap(2, at("2026-01-03 10:00"), "h", &["/x"], &["other"]),
            snap(3, at("2026-01-04 10:00"), "h", &["/x"], &["keep"]),
        ];
        let policy = Policy {
            last: Some(1),
            tags: vec!["keep".into(), "monthly".into()],
            ..Default::default()
        };
        let by = "host".parse().unwrap();
        assert_eq!(
            reasons(&list, &policy, by, &utc),
            ["tag", "tag", "", "last tag"]
        );
    }

    #[test]
    fn groups_are_separate_unless_merged() {
        let utc = TimeZone::UTC;
        let at = |t| instant(&utc, t);
        let list = [
            snap(0, at("2026-01-01 10:00"), "b", &["/x", "/y"], &["t", "u"]),
            snap(1, at("2026-01-02 10:00"), "a", &["/y", "/x"], &["u", "t"]),
            snap(2, at("2026-01-03 10:00"), "b", &["/y", "/x"], &[]),
            snap(3, at("2026-01-04 10:00"), "a", &["/x", "/y"], &[]),
        ];
        let last1 = Policy {
            last: Some(1),
            ..Default::default()
        };
        let parse = |s: &str| s.parse::<GroupBy>().unwrap();

        assert_eq!(
            reasons(&list, &last1, DEFAULT_GROUP_BY, &utc),
            ["", "", "last", "last"]
        );
        assert_eq!(
            reasons(&list, &last1, parse(""), &utc),
            ["", "", "", "last"]
        );
        assert_eq!(
            reasons(&list, &last1, parse("tags"), &utc),
            ["", "last", "", "last"]
        );
        assert_eq!(
            reasons(&list, &last1, parse("tags,host"), &utc),
            ["last", "last", "last", "last"]
        );

        let groups = apply(&list, &last1, &parse("paths,host"), &utc).unwrap();
        let keys: Vec<_> = groups.iter().map(|g| &g.key).collect();
        let key = |host: &str| GroupKey {
            hostname: Some(host.into()),
            paths: Some(vec![b"/x".to_vec(), b"/y".to_vec()]),
            tags: None,
        };
        assert_eq!(keys, [&key("a"), &key("b")]);
        assert_eq!(
            groups[0]
                .decisions
                .iter()
                .map(|d| d.id.0[0])
                .collect::<Vec<_>>(),
            [3, 1]
        );
    }

    #[test]
    fn empty_policy_is_refused() {
        let list = [snap(0, Timestamp::default(), "h", &["/x"], &[])];
        for policy in [
            Policy::default(),
            Policy {
                daily: Some(0),
                last: Some(0),
                ..Default::default()
            },
        ] {
            assert!(policy.is_empty());
            let err = apply(&list, &policy, &DEFAULT_GROUP_BY, &TimeZone::UTC).unwrap_err();
            assert!(err.to_string().contains("no retention policy"), "{err}");
        }
        for policy in [
            Policy {
                last: Some(1),
                ..Default::default()
            },
            Policy {
                within: within("0h"),
                ..Default::default()
            },
            Policy {
                tags: vec!["t".into()],
                ..Default::default()
            },
        ] {
            assert!(!policy.is_empty(), "{policy:?}");
        }
    }

    #[test]
    fn within_parses_restic_durations() {
        let span = |text: &str| text.parse::<Within>().unwrap().span.fieldwise();
        let ymwdh = |y, m, w, d, h| {
            Span::new()
                .years(y)
                .months(m)
                .weeks(w)
                .days(d)
                .hours(h)
                .fieldwise()
        };
        assert_eq!(span("1y5m7d2h"), ymwdh(1, 5, 0, 7, 2));
        assert_eq!(span("30d"), ymwdh(0, 0, 0, 30, 0));
        assert_eq!(span("12h"), ymwdh(0, 0, 0, 0, 12));
        assert_eq!(span("2w"), ymwdh(0, 0, 2, 0, 0));
        for bad in [
            "", "d", "5", "1d1d", "1d1y", "1x", "-1d", "1 d", "1D", "99999y", "1d2",
        ] {
            let err = bad.parse::<Within>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn group_by_parses() {
        assert_eq!(
            DEFAULT_GROUP_BY,
            GroupBy {
                host: true,
                paths: true,
                tags: false
            }
        );
        assert_eq!("".parse::<GroupBy>().unwrap(), GroupBy::default());
        let err = "host,colour".parse::<GroupBy>().unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn reasons_display_as_options() {
        let all = [
            Reason::Last,
            Reason::Hourly,
            Reason::Daily,
            Reason::Weekly,
            Reason::Monthly,
            Reason::Yearly,
            Reason::Within,
            Reason::WithinHourly,
            Reason::WithinDaily,
            Reason::WithinWeekly,
            Reason::WithinMonthly,
            Reason::WithinYearly,
            Reason::Tag,
            Reason::Hold,
        ];
        let names: Vec<_> = all.iter().map(Reason::to_string).collect();
        assert_eq!(
            names.join(" "),
            "last hourly daily weekly monthly yearly within within-hourly \
             within-daily within-weekly within-monthly within-yearly tag hold"
        );
    }
}
