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
    ///
    /// The common UTC form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` is read directly (it is a large
    /// share of `wagate rate`'s time otherwise); everything else goes through `jiff`.
    pub fn parse(text: &str) -> Option<Instant> {
        parse_utc(text.as_bytes()).or_else(|| {
            text.parse::<Timestamp>()
                .ok()
                .and_then(Instant::from_timestamp)
        })
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

/// `YYYY-MM-DDTHH:MM:SS[.f…]Z` to nanoseconds; `None` for any other shape (including leap
/// seconds), which the caller hands to `jiff`.
fn parse_utc(b: &[u8]) -> Option<Instant> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0_i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let mut i = 19;
    let mut nanos = 0_i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = number(start, i)? * 10_i64.pow((9 - digits) as u32);
    }
    if i + 1 != b.len() || b[i] != b'Z' {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    seconds
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nanos))
        .map(Instant)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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

    proptest::proptest! {
        #[test]
        fn the_fast_utc_reader_agrees_with_jiff(
            seconds in -2_208_988_800_i64..7_258_118_400,
            nanos in 0_i64..1_000_000_000,
            digits in 0_usize..10,
        ) {
            let ts = Timestamp::new(seconds, 0).expect("in range");
            let fraction = format!("{nanos:09}");
            let text = if digits == 0 {
                ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                format!("{}.{}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"), &fraction[..digits])
            };
            let by_jiff = text.parse::<Timestamp>().ok().and_then(Instant::from_timestamp);
            proptest::prop_assert_eq!(parse_utc(text.as_bytes()), by_jiff, "{}", text);
        }
    }

    #[test]
    fn the_fast_reader_leaves_other_shapes_to_jiff() {
        for text in [
            "2026-02-29T00:00:00Z",
            "2026-03-01T12:00:00+02:00",
            "2026-03-01t12:00:00z",
            "2026-03-01T24:00:00Z",
            "2026-03-01T12:00:00.Z",
        ] {
            assert_eq!(parse_utc(text.as_bytes()), None, "{text}");
        }
        assert_eq!(
            Instant::parse("2026-03-01t12:00:00z"),
            Instant::parse("2026-03-01T12:00:00Z")
        );
    }
}
