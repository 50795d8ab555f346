//! Wall-clock instants as Unix milliseconds, and the clock the handlers read them from.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant, in milliseconds since the Unix epoch (UTC).
///
/// Milliseconds rather than seconds because the polling interval check (RFC 8628 §3.5)
/// needs sub-second tolerance; DynamoDB's TTL attribute, which must be seconds, is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down: the unit of DynamoDB TTL attributes.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The instant `duration` later, saturating instead of overflowing.
    pub fn plus(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// The instant `duration` earlier, saturating at the epoch.
    pub fn minus(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-11-22T10:17:53Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// Whole seconds from `self` until `later`, zero if `later` is not after `self`.
    pub fn secs_until(self, later: Timestamp) -> u64 {
        later.0.saturating_sub(self.0) / 1000
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Where handlers get "now" from, so that tests can move time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock before 1970 is a broken host; treating it as the epoch keeps every
        // record expired rather than crashing on a request.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_and_secs_until_agree() {
        let t = Timestamp::from_millis(1_700_000_000_500);
        let later = t.plus(Duration::from_secs(600));
        assert_eq!(t.secs_until(later), 600);
        assert_eq!(later.secs_until(t), 0);
        assert_eq!(later.as_secs(), 1_700_000_600);
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_566_656_122_999).to_rfc3339(),
            "2019-08-24T14:15:22Z"
        );
        // A leap day, and the turn of a century that is a leap year.
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_392_000_000).to_rfc3339(),
            "2026-11-23T00:00:00Z"
        );
    }

    #[test]
    fn plus_saturates() {
        let t = Timestamp::from_millis(u64::MAX - 1);
        assert_eq!(t.plus(Duration::from_secs(10)).as_millis(), u64::MAX);
    }
}
