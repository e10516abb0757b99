//! When a line is charged: the trial, monthly anniversaries from an anchor, grace retries and
//! the key that makes each period's charge unique.
//!
//! A line's *anchor* is the instant its first charge is due: `ready_at` for an ordinary line,
//! the trial end for the account's first line ever. Period *n* starts at the anchor's UTC
//! calendar date plus *n* months, at the anchor's time of day, with the day clamped to the
//! end of a shorter month. It is always computed from the anchor, never by stepping from the
//! previous period, so a line anchored on the 31st renews Feb 28, Mar 31, Apr 30 — stepping
//! would drift to Mar 28 and stay there.

use crate::ids::LineId;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};

/// The free trial of an account's first line ever, counted from the line's `ready_at`.
pub const TRIAL: SignedDuration = SignedDuration::from_hours(7 * 24);

/// How long a line stays in `past_due` after a failed charge before it is released.
pub const GRACE: SignedDuration = SignedDuration::from_hours(5 * 24);

/// Time between charge attempts during grace.
pub const RETRY_EVERY: SignedDuration = SignedDuration::from_hours(24);

/// Why a line is being charged; the text is stored with the charge and shown in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeReason {
    /// The first charge of a line that had no trial, due at `ready`.
    Activation,
    /// The first charge of the account's first line ever, due at the trial end.
    TrialConversion,
    /// A monthly anniversary charge (period 1 onwards).
    Renewal,
    /// A retry of a failed charge during grace (same period, same charge key).
    GraceRetry,
}

impl ChargeReason {
    /// The reason as stored text: `activation`, `trial_conversion`, `renewal`, `grace_retry`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeReason::Activation => "activation",
            ChargeReason::TrialConversion => "trial_conversion",
            ChargeReason::Renewal => "renewal",
            ChargeReason::GraceRetry => "grace_retry",
        }
    }
}

/// `t + d`, saturating at the largest timestamp jiff represents (year 9999), far beyond any
/// billing date.
fn add(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// When the trial of a first line that became ready at `ready_at` ends.
pub fn trial_ends_at(ready_at: Timestamp) -> Timestamp {
    add(ready_at, TRIAL)
}

/// A line's anchor and the reason of its first charge: the account's first line ever is free
/// for [`TRIAL`] from `ready_at` and is anchored at the trial end (`TrialConversion`); every
/// other line is charged at `ready_at` and anchored there (`Activation`).
pub fn first_charge(ready_at: Timestamp, is_first_line_ever: bool) -> (Timestamp, ChargeReason) {
    if is_first_line_ever {
        (trial_ends_at(ready_at), ChargeReason::TrialConversion)
    } else {
        (ready_at, ChargeReason::Activation)
    }
}

/// The start of period `n`, or `None` beyond the range jiff represents (year 9999).
pub fn checked_period_start(anchor: Timestamp, n: u32) -> Option<Timestamp> {
    let start: DateTime = TimeZone::UTC.to_datetime(anchor);
    let months = Span::new().try_months(i64::from(n)).ok()?;
    let shifted = start.checked_add(months).ok()?;
    TimeZone::UTC.to_timestamp(shifted).ok()
}

/// The start of billing period `n` of a line anchored at `anchor` (period 0 starts at the
/// anchor): the anchor's UTC date plus `n` months, day clamped to the month's end, same time
/// of day. Saturates at [`Timestamp::MAX`] past year 9999.
pub fn period_start(anchor: Timestamp, n: u32) -> Timestamp {
    checked_period_start(anchor, n).unwrap_or(Timestamp::MAX)
}

/// The end of period `n` (exclusive), which is the start of period `n + 1`: the line's
/// `current_period_end` and its next renewal.
pub fn period_end(anchor: Timestamp, n: u32) -> Timestamp {
    period_start(anchor, n.saturating_add(1))
}

/// The index of the period that contains `t`: the largest `n` with
/// `period_start(anchor, n) <= t`. Instants before the anchor count as period 0.
pub fn period_index_at(anchor: Timestamp, t: Timestamp) -> u32 {
    if t <= anchor {
        return 0;
    }
    let a = TimeZone::UTC.to_datetime(anchor);
    let b = TimeZone::UTC.to_datetime(t);
    let estimate = (i64::from(b.year()) - i64::from(a.year())) * 12
        + (i64::from(b.month()) - i64::from(a.month()));
    let mut n = u32::try_from(estimate.max(0)).unwrap_or(u32::MAX);
    while n > 0 && period_start(anchor, n) > t {
        n -= 1;
    }
    while let Some(next) = n
        .checked_add(1)
        .and_then(|m| checked_period_start(anchor, m))
    {
        if next > t {
            break;
        }
        n += 1;
    }
    n
}

/// When a line whose charge failed at `failed_at` is released if still unpaid.
pub fn grace_ends_at(failed_at: Timestamp) -> Timestamp {
    add(failed_at, GRACE)
}

/// The retries of a charge that failed at `failed_at`: every [`RETRY_EVERY`] after the
/// failure up to and **including** the grace end (five retries: +1 d … +5 d). The last one is
/// the final chance: if it fails, the line is released with `payment_failed` at that moment.
pub fn grace_retries(failed_at: Timestamp) -> Vec<Timestamp> {
    let end = grace_ends_at(failed_at);
    let mut out = Vec::new();
    let mut k: i32 = 1;
    while let Some(step) = RETRY_EVERY.checked_mul(k) {
        let at = add(failed_at, step);
        if at > end || out.last() == Some(&at) {
            break;
        }
        out.push(at);
        k += 1;
    }
    out
}

/// The key of a line's charge for one period, unique per line and period (the store puts a
/// unique constraint on it, so no retry, restart or second server charges a period twice).
/// Grace retries reuse their period's key.
pub fn charge_key(line_id: &LineId, period_index: u32) -> String {
    format!("{line_id}:period:{period_index}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use jiff::ToSpan;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn jiff_clamps_the_day_and_stepping_would_drift() {
        let jan31 = date(2026, 1, 31);
        let feb = jan31.checked_add(1.month()).expect("in range");
        assert_eq!(feb, date(2026, 2, 28));
        // Stepping from the previous period loses the 31st for good:
        assert_eq!(
            feb.checked_add(1.month()).expect("in range"),
            date(2026, 3, 28)
        );
        // From the anchor it comes back:
        assert_eq!(
            jan31.checked_add(2.months()).expect("in range"),
            date(2026, 3, 31)
        );
        assert_eq!(
            date(2028, 1, 31).checked_add(1.month()).expect("in range"),
            date(2028, 2, 29)
        );
    }

    #[test]
    fn anniversaries_of_the_31st_clamp_to_month_end_and_come_back() {
        let anchor = ts("2026-01-31T09:00:00Z");
        let got: Vec<Timestamp> = (0..4).map(|n| period_start(anchor, n)).collect();
        assert_eq!(
            got,
            [
                ts("2026-01-31T09:00:00Z"),
                ts("2026-02-28T09:00:00Z"),
                ts("2026-03-31T09:00:00Z"),
                ts("2026-04-30T09:00:00Z"),
            ]
        );
        let leap = ts("2028-01-31T09:00:00Z");
        assert_eq!(period_start(leap, 1), ts("2028-02-29T09:00:00Z"));
        assert_eq!(period_start(leap, 2), ts("2028-03-31T09:00:00Z"));
        assert_eq!(period_start(anchor, 13), ts("2027-02-28T09:00:00Z"));
    }

    #[test]
    fn twenty_four_periods_keep_the_day_and_time() {
        let anchor = ts("2026-01-15T10:30:00Z");
        for n in 0..24u32 {
            let expected = date(2026, 1, 15)
                .checked_add(i64::from(n).months())
                .expect("in range")
                .at(10, 30, 0, 0);
            let got = TimeZone::UTC.to_datetime(period_start(anchor, n));
            assert_eq!(got, expected, "period {n}");
            assert_eq!(period_end(anchor, n), period_start(anchor, n + 1));
        }
        assert_eq!(period_start(anchor, 23), ts("2027-12-15T10:30:00Z"));
    }

    #[test]
    fn period_index_on_the_boundaries() {
        let anchor = ts("2026-01-31T09:00:00Z");
        let ns = SignedDuration::from_nanos(1);
        assert_eq!(period_index_at(anchor, ts("2026-01-01T00:00:00Z")), 0);
        assert_eq!(period_index_at(anchor, anchor), 0);
        assert_eq!(period_index_at(anchor, ts("2026-02-28T08:59:59Z")), 0);
        assert_eq!(period_index_at(anchor, ts("2026-02-28T09:00:00Z") - ns), 0);
        assert_eq!(period_index_at(anchor, ts("2026-02-28T09:00:00Z")), 1);
        assert_eq!(period_index_at(anchor, ts("2026-03-31T08:59:59Z")), 1);
        assert_eq!(period_index_at(anchor, ts("2026-03-31T09:00:00Z")), 2);
        assert_eq!(period_index_at(anchor, ts("2027-01-31T09:00:00Z")), 12);
        assert_eq!(
            period_index_at(anchor, Timestamp::MAX),
            period_index_at(anchor, Timestamp::MAX)
        );
    }

    #[test]
    fn the_first_line_ever_is_anchored_at_its_trial_end() {
        let ready = ts("2026-01-31T09:00:00Z");
        assert_eq!(
            first_charge(ready, true),
            (ts("2026-02-07T09:00:00Z"), ChargeReason::TrialConversion)
        );
        assert_eq!(
            first_charge(ready, false),
            (ready, ChargeReason::Activation)
        );
        let (anchor, _) = first_charge(ready, true);
        assert_eq!(period_start(anchor, 1), ts("2026-03-07T09:00:00Z"));
    }

    #[test]
    fn grace_retries_daily_up_to_and_including_the_grace_end() {
        let failed = ts("2026-02-28T09:00:00Z");
        assert_eq!(grace_ends_at(failed), ts("2026-03-05T09:00:00Z"));
        assert_eq!(
            grace_retries(failed),
            [
                ts("2026-03-01T09:00:00Z"),
                ts("2026-03-02T09:00:00Z"),
                ts("2026-03-03T09:00:00Z"),
                ts("2026-03-04T09:00:00Z"),
                ts("2026-03-05T09:00:00Z"),
            ]
        );
        // Near the end of time the list stops instead of repeating the saturated instant.
        assert_eq!(grace_retries(Timestamp::MAX), [Timestamp::MAX]);
    }

    #[test]
    fn charge_reasons_and_keys_as_text() {
        assert_eq!(ChargeReason::Activation.as_str(), "activation");
        assert_eq!(ChargeReason::TrialConversion.as_str(), "trial_conversion");
        assert_eq!(ChargeReason::Renewal.as_str(), "renewal");
        assert_eq!(ChargeReason::GraceRetry.as_str(), "grace_retry");
        let line = LineId::parse("line_abc").expect("valid id");
        assert_eq!(charge_key(&line, 3), "line_abc:period:3");
        assert_ne!(charge_key(&line, 1), charge_key(&line, 11));
    }

    #[test]
    fn the_worked_example_of_docs_billing_md() {
        let (a, reason) = first_charge(ts("2026-01-31T09:00:00Z"), true);
        assert_eq!(
            (a, reason),
            (ts("2026-02-07T09:00:00Z"), ChargeReason::TrialConversion)
        );
        assert_eq!(period_start(a, 1), ts("2026-03-07T09:00:00Z"));
        let (b, reason) = first_charge(ts("2026-01-31T09:30:00Z"), false);
        assert_eq!(reason, ChargeReason::Activation);
        let failed = period_start(b, 1);
        assert_eq!(failed, ts("2026-02-28T09:30:00Z"));
        assert_eq!(grace_ends_at(failed), ts("2026-03-05T09:30:00Z"));
        let paid = grace_retries(failed)[1];
        assert_eq!(paid, ts("2026-03-02T09:30:00Z"));
        assert_eq!(period_index_at(b, paid), 1);
        assert_eq!(period_start(b, 2), ts("2026-03-31T09:30:00Z"));
        assert_eq!(period_start(b, 3), ts("2026-04-30T09:30:00Z"));
    }

    #[test]
    fn far_periods_saturate_instead_of_panicking() {
        let anchor = ts("2026-01-31T09:00:00Z");
        assert_eq!(checked_period_start(anchor, u32::MAX), None);
        assert_eq!(period_start(anchor, u32::MAX), Timestamp::MAX);
    }

    fn anchors() -> impl Strategy<Value = Timestamp> {
        // 2000-01-01 .. 2100-01-01, any second.
        (946_684_800i64..4_102_444_800).prop_map(|s| Timestamp::from_second(s).expect("in range"))
    }

    proptest! {
        #[test]
        fn period_starts_strictly_increase(anchor in anchors(), n in 0u32..1200) {
            prop_assert!(period_start(anchor, n + 1) > period_start(anchor, n));
        }

        #[test]
        fn a_period_start_lies_in_its_own_period(anchor in anchors(), n in 0u32..1200) {
            prop_assert_eq!(period_index_at(anchor, period_start(anchor, n)), n);
        }

        #[test]
        fn periods_last_28_to_31_days(anchor in anchors(), n in 0u32..1200) {
            let len = period_start(anchor, n + 1).duration_since(period_start(anchor, n));
            prop_assert!(len >= SignedDuration::from_hours(28 * 24), "{len:?}");
            prop_assert!(len <= SignedDuration::from_hours(31 * 24), "{len:?}");
        }

        #[test]
        fn any_instant_lies_between_its_period_bounds(
            anchor in anchors(),
            offset in 0i64..(100 * 366 * 86_400),
        ) {
            let t = anchor.checked_add(SignedDuration::from_secs(offset)).expect("in range");
            let n = period_index_at(anchor, t);
            prop_assert!(period_start(anchor, n) <= t);
            prop_assert!(t < period_end(anchor, n));
        }
    }
}
