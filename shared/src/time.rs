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

    /// Whole seconds from `self` until `later`, zero if `later` is not after `self`.
    pub fn secs_until(self, later: Timestamp) -> u64 {
        later.0.saturating_sub(self.0) / 1000
    }
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
    fn plus_saturates() {
        let t = Timestamp::from_millis(u64::MAX - 1);
        assert_eq!(t.plus(Duration::from_secs(10)).as_millis(), u64::MAX);
    }
}
