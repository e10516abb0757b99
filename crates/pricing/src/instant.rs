//! Event time as integer nanoseconds since the Unix epoch.
//!
//! Windows are compared and shifted millions of times a second; an `i64` of nanoseconds is
//! exact for every timestamp an input can carry (1677–2262) and cheaper than a `Timestamp`.

use jiff::Timestamp;

/// Nanoseconds in one hour.
const HOUR_NS: i64 = 3_600_000_000_000;

/// A point in time taken from an event (never from the system clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub i64);

impl Instant {
    /// Earlier than any event: marks a window that was never opened.
    pub const NEVER: Instant = Instant(i64::MIN);

    /// Converts a parsed timestamp; `None` outside 1677–2262.
    pub fn from_timestamp(ts: Timestamp) -> Option<Instant> {
        i64::try_from(ts.as_nanosecond()).ok().map(Instant)
    }

    /// Parses an RFC 3339 timestamp (`2026-03-01T12:00:00Z`, any offset).
    pub fn parse(text: &str) -> Option<Instant> {
        text.parse::<Timestamp>()
            .ok()
            .and_then(Instant::from_timestamp)
    }

    /// The same instant as a `jiff` timestamp (for time-zone arithmetic and printing).
    pub fn to_timestamp(self) -> Timestamp {
        // Every i64 of nanoseconds is inside jiff's supported range.
        Timestamp::from_nanosecond(i128::from(self.0)).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// This instant plus whole hours; saturates at the end of representable time.
    pub fn plus_hours(self, hours: i64) -> Instant {
        Instant(self.0.saturating_add(hours * HOUR_NS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let at = Instant::parse("2026-03-01T12:00:00Z").expect("valid");
        assert_eq!(at.to_timestamp().to_string(), "2026-03-01T12:00:00Z");
        assert_eq!(
            at.plus_hours(24).to_timestamp().to_string(),
            "2026-03-02T12:00:00Z"
        );
        let offset = Instant::parse("2026-03-01T14:00:00+02:00").expect("valid");
        assert_eq!(offset, at);
    }

    #[test]
    fn refuses_non_timestamps() {
        assert_eq!(Instant::parse("yesterday"), None);
        assert_eq!(Instant::parse("2026-03-01"), None);
    }
}
