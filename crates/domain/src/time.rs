//! Conversions between business time and its stored and wire forms.

use jiff::Timestamp;

/// A timestamp as stored: microseconds since the Unix epoch, exact and portable across
/// SQLite and PostgreSQL.
pub fn to_micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the representable range
/// rather than panic, since they can only come from a corrupted row.
pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(if us < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// Formats a timestamp as the API shows it: RFC 3339 in UTC, whole seconds unless the
/// instant has a fraction (`2026-03-01T12:00:00Z`).
pub fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// Parses an RFC 3339 timestamp with an explicit offset (`Z` or `±hh:mm`).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip() {
        let t: Timestamp = "2026-03-01T12:00:00.123456Z".parse().unwrap();
        assert_eq!(from_micros(to_micros(t)), t);
        assert_eq!(
            rfc3339(from_micros(to_micros(t))),
            "2026-03-01T12:00:00.123456Z"
        );
        assert_eq!(
            rfc3339("2026-03-01T12:00:00Z".parse().unwrap()),
            "2026-03-01T12:00:00Z"
        );
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        assert_eq!(
            parse_rfc3339("2026-03-01T13:00:00+01:00"),
            parse_rfc3339("2026-03-01T12:00:00Z")
        );
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
