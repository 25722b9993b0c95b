//! Points in time with nanosecond precision.

use serde::{Deserialize, Serialize};

/// Seconds and nanoseconds since the Unix epoch (UTC); seconds may be negative.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second, below 1,000,000,000.
    pub nanos: u32,
}

impl From<std::time::SystemTime> for Timestamp {
    /// The same instant; one before 1970 has negative `secs` and `nanos`
    /// counted forward from them, as everywhere (§12.3).
    fn from(time: std::time::SystemTime) -> Self {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let (secs, nanos) = if d.subsec_nanos() == 0 {
                    (-(d.as_secs() as i64), 0)
                } else {
                    (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
                };
                Timestamp { secs, nanos }
            }
        }
    }
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        std::time::SystemTime::now().into()
    }

    /// True when `nanos` is in range.
    pub fn is_valid(&self) -> bool {
        self.nanos < 1_000_000_000
    }
}
