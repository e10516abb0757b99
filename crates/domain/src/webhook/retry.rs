//! When a failed delivery is tried again, and what an attempt's outcome means.
//!
//! A delivery gets 8 attempts: the first at once, then one after each delay of
//! [`RETRY_SCHEDULE`] (±10 % jitter, so endpoints that fail together do not retry together).
//! After the 8th failure the delivery is `failed` (kept, and redeliverable by hand).

use jiff::SignedDuration;

/// Delays after the 1st, 2nd, … failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const RETRY_SCHEDULE: [SignedDuration; 7] = [
    SignedDuration::from_secs(5),
    SignedDuration::from_mins(5),
    SignedDuration::from_mins(30),
    SignedDuration::from_hours(2),
    SignedDuration::from_hours(5),
    SignedDuration::from_hours(10),
    SignedDuration::from_hours(10),
];

/// How many attempts a delivery gets in all: the first plus one per [`RETRY_SCHEDULE`] entry.
pub const MAX_ATTEMPTS: u32 = RETRY_SCHEDULE.len() as u32 + 1;

/// The jitter spread as a divisor of the delay: 10 means ±10 %.
const JITTER_DIVISOR: i64 = 10;

/// After `failed_attempts` failed attempts (1-based: 1 = the first attempt failed), the delay
/// before the next, with ±10 % jitter from `jitter` in [0.0, 1.0) (0.5 = no jitter); None when
/// the schedule is exhausted (8 attempts in all) → the delivery is `failed`.
///
/// `jitter` is clamped to [0.0, 1.0] (NaN counts as 0.5), so the delay is never negative and
/// never more than 10 % off the schedule. `failed_attempts == 0` (nothing has failed yet) gives
/// a zero delay: the first attempt is due at once.
pub fn next_retry_delay(failed_attempts: u32, jitter: f64) -> Option<SignedDuration> {
    if failed_attempts == 0 {
        return Some(SignedDuration::ZERO);
    }
    let index = usize::try_from(failed_attempts - 1).ok()?;
    let base = RETRY_SCHEDULE.get(index)?;
    let base_ms = i64::try_from(base.as_millis()).ok()?;
    let spread_ms = base_ms / JITTER_DIVISOR;
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // In [-spread, +spread]; the float only picks a point, the clamp keeps it in bounds.
    let offset_ms = ((jitter * 2.0 - 1.0) * spread_ms as f64).round() as i64;
    let offset_ms = offset_ms.clamp(-spread_ms, spread_ms);
    Some(SignedDuration::from_millis(base_ms + offset_ms))
}

/// How long an attempt may take before it counts as failed.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// An endpoint whose deliveries failed continuously this long is disabled.
pub const DISABLE_AFTER_FAILING_FOR: SignedDuration = SignedDuration::from_hours(5 * 24);

/// What an attempt's HTTP status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptVerdict {
    /// A 2xx: the delivery is done.
    Delivered,
    /// No response or any other status: retry per the schedule.
    Failed,
    /// 410 Gone: the receiver says the endpoint no longer exists; disable it at once.
    Gone,
}

/// 2xx → Delivered; 410 → Gone (disable the endpoint at once); anything else (incl. 3xx, 1xx)
/// or None (no response: timeout, connection error) → Failed.
pub fn verdict(status: Option<u16>) -> AttemptVerdict {
    match status {
        Some(200..=299) => AttemptVerdict::Delivered,
        Some(410) => AttemptVerdict::Gone,
        _ => AttemptVerdict::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn without_jitter_the_delays_follow_the_schedule_exactly() {
        let expected_secs = [5, 300, 1800, 7200, 18000, 36000, 36000];
        for (i, secs) in expected_secs.iter().enumerate() {
            let failed = u32::try_from(i).expect("small") + 1;
            assert_eq!(
                next_retry_delay(failed, 0.5),
                Some(SignedDuration::from_secs(*secs)),
                "after {failed} failures"
            );
        }
    }

    #[test]
    fn the_schedule_is_exhausted_after_eight_attempts() {
        assert_eq!(MAX_ATTEMPTS, 8);
        assert!(next_retry_delay(7, 0.5).is_some());
        assert_eq!(next_retry_delay(8, 0.5), None);
        assert_eq!(next_retry_delay(9, 0.0), None);
        assert_eq!(next_retry_delay(u32::MAX, 0.99), None);
    }

    #[test]
    fn nothing_failed_yet_means_attempt_now() {
        assert_eq!(next_retry_delay(0, 0.9), Some(SignedDuration::ZERO));
    }

    #[test]
    fn jitter_extremes_are_exactly_ten_percent() {
        assert_eq!(
            next_retry_delay(1, 0.0),
            Some(SignedDuration::from_millis(4_500))
        );
        assert_eq!(
            next_retry_delay(1, 1.0),
            Some(SignedDuration::from_millis(5_500))
        );
        assert_eq!(
            next_retry_delay(2, 0.0),
            Some(SignedDuration::from_secs(270))
        );
    }

    #[test]
    fn out_of_range_jitter_is_clamped() {
        for (jitter, ms) in [
            (-5.0, 4_500),
            (f64::NEG_INFINITY, 4_500),
            (7.0, 5_500),
            (f64::INFINITY, 5_500),
            (f64::NAN, 5_000),
        ] {
            assert_eq!(
                next_retry_delay(1, jitter),
                Some(SignedDuration::from_millis(ms)),
                "{jitter}"
            );
        }
    }

    proptest! {
        #[test]
        fn jitter_stays_within_ten_percent(failed in 1u32..=7, jitter in proptest::num::f64::ANY) {
            let base = RETRY_SCHEDULE[(failed - 1) as usize].as_millis() as i64;
            let got = next_retry_delay(failed, jitter).expect("within the schedule").as_millis() as i64;
            prop_assert!(got > 0);
            prop_assert!(got >= base - base / 10, "{got} < {base} - 10 %");
            prop_assert!(got <= base + base / 10, "{got} > {base} + 10 %");
        }

        #[test]
        fn jitter_in_range_is_monotonic(failed in 1u32..=7, a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(next_retry_delay(failed, lo) <= next_retry_delay(failed, hi));
        }
    }

    #[test]
    fn the_timeouts_match_the_product() {
        assert_eq!(ATTEMPT_TIMEOUT.as_secs(), 15);
        assert_eq!(DISABLE_AFTER_FAILING_FOR, SignedDuration::from_hours(120));
    }

    #[test]
    fn verdicts_by_status() {
        use AttemptVerdict::*;
        let table: &[(Option<u16>, AttemptVerdict)] = &[
            (Some(200), Delivered),
            (Some(201), Delivered),
            (Some(204), Delivered),
            (Some(299), Delivered),
            (Some(100), Failed),
            (Some(199), Failed),
            (Some(300), Failed),
            (Some(301), Failed),
            (Some(302), Failed),
            (Some(304), Failed),
            (Some(400), Failed),
            (Some(404), Failed),
            (Some(409), Failed),
            (Some(410), Gone),
            (Some(429), Failed),
            (Some(500), Failed),
            (Some(503), Failed),
            (Some(0), Failed),
            (Some(999), Failed),
            (None, Failed),
        ];
        for (status, want) in table {
            assert_eq!(verdict(*status), *want, "{status:?}");
        }
    }
}
