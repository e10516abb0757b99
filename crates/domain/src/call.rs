//! Calls (PRODUCT.md §9): a call's life as a state machine, its duration on the business
//! clock, and the fair-use rule on calling minutes.
//!
//! Only the rules live here: the API, the store and the connector build on them. A call is
//! `initiated → ringing → answered → ended`, or ends from `ringing` (or before) with the
//! reason that says why; once ended nothing changes it. Durations count from the answer to
//! the end in whole seconds, on the business clock (the sandbox's test clock moves them).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::line::utc_day;

/// How long a call may ring before it ends `missed`.
pub const RING_TIMEOUT: SignedDuration = SignedDuration::from_secs(60);
/// A line whose average calling over the last [`FAIR_USE_WINDOW_DAYS`] reaches this many
/// minutes a day is flagged (never blocked or charged).
pub const FAIR_USE_MINUTES_PER_DAY: u64 = 50;
/// The days the fair-use average covers.
pub const FAIR_USE_WINDOW_DAYS: i64 = 30;

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// Placed by the business through the line.
    Outbound,
    /// Placed to the line by someone else.
    Inbound,
}

impl CallDirection {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Outbound => "outbound",
            CallDirection::Inbound => "inbound",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "outbound" => Some(CallDirection::Outbound),
            "inbound" => Some(CallDirection::Inbound),
            _ => None,
        }
    }
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Asked for; WhatsApp has not rung the other phone yet.
    Initiated,
    /// The called phone rings.
    Ringing,
    /// Both sides are talking.
    Answered,
    /// Over, for the call's [`EndReason`].
    Ended,
}

impl CallStatus {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::Answered => "answered",
            CallStatus::Ended => "ended",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        [
            CallStatus::Initiated,
            CallStatus::Ringing,
            CallStatus::Answered,
            CallStatus::Ended,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Either side hung up after the answer.
    Completed,
    /// The business hung up (or the caller gave up) before an answer.
    Canceled,
    /// The called side refused it.
    Rejected,
    /// Nobody answered within [`RING_TIMEOUT`].
    Missed,
    /// The called side was in another call.
    Busy,
    /// WhatsApp could not place or keep the call.
    Failed,
}

impl EndReason {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Canceled => "canceled",
            EndReason::Rejected => "rejected",
            EndReason::Missed => "missed",
            EndReason::Busy => "busy",
            EndReason::Failed => "failed",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        [
            EndReason::Completed,
            EndReason::Canceled,
            EndReason::Rejected,
            EndReason::Missed,
            EndReason::Busy,
            EndReason::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Who did something to a call: the line's side (the business, or its customer answering an
/// inbound call) or the other phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The line's side.
    Line,
    /// The other phone.
    Remote,
}

/// Something that happens to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    /// The called phone rings.
    Ring,
    /// The called side picked up.
    Answer,
    /// `Side` hung up (before or after the answer).
    Hangup(Side),
    /// The called side refused.
    Reject,
    /// The called side is in another call.
    Busy,
    /// Nobody answered within [`RING_TIMEOUT`].
    RingTimeout,
    /// WhatsApp could not place or keep the call.
    Fail,
}

/// A call's timeline: what the rules need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimes {
    /// Where it is.
    pub status: CallStatus,
    /// When it began to ring.
    pub ringing_at: Option<Timestamp>,
    /// When it was answered.
    pub answered_at: Option<Timestamp>,
    /// When it ended.
    pub ended_at: Option<Timestamp>,
    /// Why it ended.
    pub end_reason: Option<EndReason>,
}

impl CallTimes {
    /// A call just asked for.
    pub fn initiated() -> Self {
        CallTimes {
            status: CallStatus::Initiated,
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            end_reason: None,
        }
    }

    /// Whole seconds from the answer to the end (0 if never answered or not ended).
    pub fn duration_seconds(&self) -> u64 {
        match (self.answered_at, self.ended_at) {
            (Some(a), Some(e)) if e > a => e.duration_since(a).as_secs().max(0) as u64,
            _ => 0,
        }
    }
}

/// Why a call event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallRuleError {
    /// The call is over; nothing changes it (409 `call_ended`).
    #[error("the call has ended")]
    Ended,
    /// The event does not fit the call's state (409 `invalid_state`).
    #[error("a call that is {status} cannot be {what}")]
    NotNow {
        /// Where the call is.
        status: &'static str,
        /// What was asked.
        what: &'static str,
    },
}

/// The call after `event` at business time `at`, or why it cannot happen. Rings and answers
/// move it forward; every ending names its reason: a hangup after the answer `completed`,
/// before it `canceled` (the caller giving up on an inbound call is `missed`); a refusal
/// `rejected`; a full line `busy`; no answer in time `missed`; WhatsApp's failure `failed`.
pub fn apply(
    call: &CallTimes,
    direction: CallDirection,
    event: CallEvent,
    at: Timestamp,
) -> Result<CallTimes, CallRuleError> {
    use CallStatus::*;
    let not_now = |what| CallRuleError::NotNow {
        status: call.status.as_str(),
        what,
    };
    if call.status == Ended {
        return Err(CallRuleError::Ended);
    }
    let mut next = call.clone();
    let end = |mut next: CallTimes, reason| {
        next.status = Ended;
        next.ended_at = Some(at);
        next.end_reason = Some(reason);
        Ok(next)
    };
    match (call.status, event) {
        (Initiated, CallEvent::Ring) => {
            next.status = Ringing;
            next.ringing_at = Some(at);
            Ok(next)
        }
        (Ringing, CallEvent::Answer) => {
            next.status = Answered;
            next.answered_at = Some(at);
            Ok(next)
        }
        (Answered, CallEvent::Hangup(_)) => end(next, EndReason::Completed),
        (Initiated | Ringing, CallEvent::Hangup(side)) => {
            // An inbound caller who gives up before anyone answered: the line missed it.
            let reason = match (direction, side) {
                (CallDirection::Inbound, Side::Remote) => EndReason::Missed,
                _ => EndReason::Canceled,
            };
            end(next, reason)
        }
        (Ringing, CallEvent::Reject) => end(next, EndReason::Rejected),
        (Initiated | Ringing, CallEvent::Busy) => end(next, EndReason::Busy),
        (Ringing, CallEvent::RingTimeout) => end(next, EndReason::Missed),
        (_, CallEvent::Fail) => end(next, EndReason::Failed),
        (_, CallEvent::Ring) => Err(not_now("rung")),
        (_, CallEvent::Answer) => Err(not_now("answered")),
        (_, CallEvent::Reject) => Err(not_now("rejected")),
        (_, CallEvent::Busy) => Err(not_now("busy")),
        (_, CallEvent::RingTimeout) => Err(not_now("missed")),
        (Ended, CallEvent::Hangup(_)) => Err(CallRuleError::Ended),
    }
}

/// The seconds of talk between `answered_at` and `ended_at`, split by UTC day (a call that
/// runs past midnight counts on both days), in day order.
pub fn seconds_by_utc_day(answered_at: Timestamp, ended_at: Timestamp) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    let (mut from, end) = (answered_at.as_second(), ended_at.as_second());
    while from < end {
        let day = from.div_euclid(86_400);
        let day_end = (day + 1) * 86_400;
        let until = end.min(day_end);
        out.push((day, (until - from) as u64));
        from = until;
    }
    out
}

/// A line's calling against the fair-use rule, as the line object shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FairUse {
    /// Average minutes a day over the last [`FAIR_USE_WINDOW_DAYS`] UTC days, today included.
    pub avg_minutes_30d: f64,
    /// Whether the average reached [`FAIR_USE_MINUTES_PER_DAY`].
    pub flagged: bool,
}

/// The fair-use reading at `now` from the seconds talked per UTC day (`(day, seconds)`,
/// any order, days outside the window ignored). Days without calls count as zero, so a new
/// line is not flagged for one long first day.
pub fn fair_use(seconds_per_day: &[(i64, u64)], now: Timestamp) -> FairUse {
    let today = utc_day(now);
    let first = today - (FAIR_USE_WINDOW_DAYS - 1);
    let seconds: u64 = seconds_per_day
        .iter()
        .filter(|(day, _)| (first..=today).contains(day))
        .map(|(_, s)| *s)
        .sum();
    let avg_minutes_30d = seconds as f64 / 60.0 / FAIR_USE_WINDOW_DAYS as f64;
    FairUse {
        // Two decimals are what the line object shows; the flag uses the exact sum.
        avg_minutes_30d: (avg_minutes_30d * 100.0).round() / 100.0,
        flagged: seconds >= FAIR_USE_MINUTES_PER_DAY * 60 * FAIR_USE_WINDOW_DAYS as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn run(direction: CallDirection, events: &[(CallEvent, &str)]) -> CallTimes {
        let mut call = CallTimes::initiated();
        for (e, at) in events {
            call = apply(&call, direction, *e, t(at)).unwrap();
        }
        call
    }

    #[test]
    fn an_answered_call_hung_up_three_minutes_later_is_completed_after_180_seconds() {
        let call = run(
            CallDirection::Outbound,
            &[
                (CallEvent::Ring, "2026-01-01T00:00:00Z"),
                (CallEvent::Answer, "2026-01-01T00:00:05Z"),
                (CallEvent::Hangup(Side::Remote), "2026-01-01T00:03:05Z"),
            ],
        );
        assert_eq!(call.status, CallStatus::Ended);
        assert_eq!(call.end_reason, Some(EndReason::Completed));
        assert_eq!(call.duration_seconds(), 180);
    }

    #[test]
    fn each_way_to_end_before_an_answer_has_its_reason() {
        use CallDirection::*;
        let ring = (CallEvent::Ring, "2026-01-01T00:00:00Z");
        let at = "2026-01-01T00:00:10Z";
        for (direction, event, reason) in [
            (Outbound, CallEvent::Hangup(Side::Line), EndReason::Canceled),
            (Outbound, CallEvent::Reject, EndReason::Rejected),
            (Outbound, CallEvent::Busy, EndReason::Busy),
            (Outbound, CallEvent::RingTimeout, EndReason::Missed),
            (Outbound, CallEvent::Fail, EndReason::Failed),
            (Inbound, CallEvent::Reject, EndReason::Rejected),
            (Inbound, CallEvent::RingTimeout, EndReason::Missed),
            (Inbound, CallEvent::Hangup(Side::Remote), EndReason::Missed),
        ] {
            let call = run(direction, &[ring, (event, at)]);
            assert_eq!(call.end_reason, Some(reason), "{direction:?} {event:?}");
            assert_eq!(call.duration_seconds(), 0);
            assert_eq!(call.ended_at, Some(t(at)));
        }
    }

    #[test]
    fn an_ended_call_changes_no_more_and_steps_cannot_be_skipped() {
        let ended = run(
            CallDirection::Outbound,
            &[
                (CallEvent::Ring, "2026-01-01T00:00:00Z"),
                (CallEvent::Reject, "2026-01-01T00:00:01Z"),
            ],
        );
        let at = t("2026-01-01T00:00:02Z");
        assert_eq!(
            apply(&ended, CallDirection::Outbound, CallEvent::Answer, at),
            Err(CallRuleError::Ended)
        );
        let fresh = CallTimes::initiated();
        assert!(matches!(
            apply(&fresh, CallDirection::Outbound, CallEvent::Answer, at),
            Err(CallRuleError::NotNow { .. })
        ));
    }

    #[test]
    fn a_call_over_midnight_counts_on_both_days() {
        let split = seconds_by_utc_day(t("2026-01-01T23:59:00Z"), t("2026-01-02T00:02:00Z"));
        assert_eq!(split, vec![(20_454, 60), (20_455, 120)]);
    }

    #[test]
    fn fifty_minutes_a_day_over_thirty_days_flags_the_line() {
        let now = t("2026-01-31T12:00:00Z");
        let today = utc_day(now);
        let days: Vec<(i64, u64)> = (0..30).map(|d| (today - d, 50 * 60)).collect();
        assert_eq!(
            fair_use(&days, now),
            FairUse {
                avg_minutes_30d: 50.0,
                flagged: true
            }
        );
        let mut short = days.clone();
        short[0].1 -= 1;
        assert!(!fair_use(&short, now).flagged);
        // A day that left the window no longer counts.
        let old = vec![(today - 30, 100_000)];
        assert_eq!(fair_use(&old, now).avg_minutes_30d, 0.0);
    }

    fn event() -> impl Strategy<Value = CallEvent> {
        prop_oneof![
            Just(CallEvent::Ring),
            Just(CallEvent::Answer),
            Just(CallEvent::Hangup(Side::Line)),
            Just(CallEvent::Hangup(Side::Remote)),
            Just(CallEvent::Reject),
            Just(CallEvent::Busy),
            Just(CallEvent::RingTimeout),
            Just(CallEvent::Fail),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_the_timeline_consistent(
            events in proptest::collection::vec((event(), 0i64..600), 0..12),
            inbound in any::<bool>(),
        ) {
            let direction = if inbound { CallDirection::Inbound } else { CallDirection::Outbound };
            let mut call = CallTimes::initiated();
            let mut at = t("2026-01-01T00:00:00Z");
            for (e, gap) in events {
                at += SignedDuration::from_secs(gap);
                if let Ok(next) = apply(&call, direction, e, at) {
                    // Status only moves forward, and an end always has its reason.
                    prop_assert!(next.status as u8 >= call.status as u8);
                    prop_assert_eq!(next.status == CallStatus::Ended, next.end_reason.is_some());
                    call = next;
                }
            }
            // Completed exactly when it was answered; a duration only then.
            let answered = call.answered_at.is_some();
            if call.status == CallStatus::Ended {
                prop_assert_eq!(answered, call.end_reason == Some(EndReason::Completed)
                    || (answered && call.end_reason == Some(EndReason::Failed)));
            }
            if !answered {
                prop_assert_eq!(call.duration_seconds(), 0);
            }
        }

        #[test]
        fn the_daily_split_adds_up_to_the_duration(start in 0i64..400_000_000, len in 0i64..200_000) {
            let a = Timestamp::from_second(start).unwrap();
            let e = Timestamp::from_second(start + len).unwrap();
            let split = seconds_by_utc_day(a, e);
            prop_assert_eq!(split.iter().map(|(_, s)| *s).sum::<u64>(), len as u64);
            prop_assert!(split.iter().all(|(_, s)| *s <= 86_400));
            prop_assert!(split.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        }
    }
}
