//! Lengths of time as a policy file writes them: `30s`, `15m`, `1h`, `7d`,
//! `4w`, or several units from the largest down, as in `1h30m`.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A length of time of whole seconds, at least one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(Duration);

/// The longest interval read: about a century. Longer ones are mistakes,
/// and would overflow the clock arithmetic of what uses them.
const LONGEST: u64 = 36_525 * 86_400;

/// The units, largest first, with their length in seconds.
const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

impl Interval {
    /// The length of time.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// An interval of `seconds` (at least one).
    pub fn from_secs(seconds: u64) -> Option<Interval> {
        (seconds > 0).then(|| Interval(Duration::from_secs(seconds)))
    }
}

impl FromStr for Interval {
    type Err = String;

    fn from_str(text: &str) -> Result<Interval, String> {
        let bad = || {
            format!(
                "{text:?} is not a length of time: expected a number and a unit, \
                 s, m, h, d or w (as 30s, 15m, 1h, 7d, 4w, or 1h30m)"
            )
        };
        let (mut seconds, mut rest, mut next_unit) = (0u64, text, 0);
        if text.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (number, tail) = rest.split_at(digits);
            let n: u64 = number.parse().map_err(|_| bad())?;
            let unit = tail.chars().next().ok_or_else(bad)?;
            let skipped = UNITS[next_unit..]
                .iter()
                .position(|&(u, _)| u == unit)
                .ok_or_else(bad)?;
            let (_, length) = UNITS[next_unit + skipped];
            next_unit += skipped + 1;
            seconds = n
                .checked_mul(length)
                .and_then(|s| s.checked_add(seconds))
                .filter(|&s| s <= LONGEST)
                .ok_or_else(|| format!("{text:?} is longer than any backup will wait"))?;
            rest = &tail[unit.len_utf8()..];
        }
        Interval::from_secs(seconds).ok_or_else(|| format!("{text:?} is no time at all"))
    }
}

impl fmt::Display for Interval {
    /// The shortest form [`Interval::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0.as_secs();
        for (unit, length) in UNITS {
            if left >= length {
                write!(f, "{}{unit}", left / length)?;
                left %= length;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Interval, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        text.parse::<Interval>().unwrap().duration().as_secs()
    }

    #[test]
    fn each_unit_and_a_combination_read_as_their_seconds() {
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("15m"), 900);
        assert_eq!(secs("1h"), 3_600);
        assert_eq!(secs("7d"), 604_800);
        assert_eq!(secs("4w"), 2_419_200);
        assert_eq!(secs("1h30m"), 5_400);
        assert_eq!(secs("2d12h"), 216_000);
    }

    #[test]
    fn anything_else_is_refused_with_the_text_named() {
        for bad in [
            "", "15", "m", "1h 30m", "30m1h", "1m1m", "1y", "-1h", "0s", "1.5h", "1hx",
        ] {
            let e = bad.parse::<Interval>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert!("99999999999999999999w".parse::<Interval>().is_err());
        assert!("30000000000000w".parse::<Interval>().is_err());
    }

    #[test]
    fn display_reads_back_as_the_same_interval() {
        for text in ["30s", "15m", "1h30m", "1w2d3h4m5s", "4w"] {
            let i: Interval = text.parse().unwrap();
            assert_eq!(i.to_string(), text);
            assert_eq!(i.to_string().parse::<Interval>().unwrap(), i);
        }
    }
}
