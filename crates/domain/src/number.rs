//! Virtual numbers (PRODUCT.md §12): phone numbers bought for one verification code or
//! rented for hours, from whichever provider is cheapest with stock at the moment of the
//! order, paid from the wallet.
//!
//! What is pure here: the kinds and statuses and the moves between them, when a number
//! expires, what a rental may be extended by, what is refunded when, which offer the router
//! takes first and in which order it fails over, and how a code is read out of an SMS. The
//! providers, the store and the jobs that apply these rules live in other crates.

use jiff::{SignedDuration, Timestamp};

use crate::money::Micros;

/// How long a verification number waits for its code before it expires and is refunded.
pub const VERIFICATION_WINDOW: SignedDuration = SignedDuration::from_mins(20);

/// The shortest rental, in hours.
pub const MIN_RENTAL_HOURS: u32 = 1;
/// The longest rental (30 days), in hours; also the most one extension adds.
pub const MAX_RENTAL_HOURS: u32 = 720;

/// How often an active number's provider is asked for new SMS (business time).
pub const POLL_EVERY: SignedDuration = SignedDuration::from_secs(15);

/// What a number is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumberKind {
    /// One verification code, within [`VERIFICATION_WINDOW`]; refunded if none arrives.
    Verification,
    /// Every SMS for a number of hours; extendable; never refunded.
    Rental,
}

impl NumberKind {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Verification => "verification",
            NumberKind::Rental => "rental",
        }
    }

    /// The kind named `s` (API input or a stored value).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "verification" => Some(NumberKind::Verification),
            "rental" => Some(NumberKind::Rental),
            _ => None,
        }
    }
}

/// Where a number is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberStatus {
    /// Bought; waiting for SMS (a verification for its code, a rental until it expires).
    Active,
    /// A verification's code arrived (final: the verification is done).
    CodeReceived,
    /// The time ran out (a verification without a code is refunded; a rental is not).
    Expired,
    /// Canceled by the business before a code arrived, and refunded.
    Canceled,
}

impl NumberStatus {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            NumberStatus::Active => "active",
            NumberStatus::CodeReceived => "code_received",
            NumberStatus::Expired => "expired",
            NumberStatus::Canceled => "canceled",
        }
    }

    /// The status stored as `s`.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "active" => Some(NumberStatus::Active),
            "code_received" => Some(NumberStatus::CodeReceived),
            "expired" => Some(NumberStatus::Expired),
            "canceled" => Some(NumberStatus::Canceled),
            _ => None,
        }
    }

    /// Whether nothing more happens to the number (no SMS, no charge, no refund).
    pub fn is_final(self) -> bool {
        self != NumberStatus::Active
    }
}

/// Why a rule refused a change of a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberRuleError {
    /// Rental hours outside 1–720.
    #[error("hours must be a whole number from {MIN_RENTAL_HOURS} to {MAX_RENTAL_HOURS}")]
    BadHours,
    /// `hours` given for a verification.
    #[error("hours apply to rentals only; a verification lasts 20 minutes")]
    HoursNotAllowed,
    /// The number is not in a state that allows this.
    #[error("{0}")]
    NotNow(String),
}

/// Checks the `hours` of an order: required (1–720) for a rental, absent for a verification.
pub fn check_hours(kind: NumberKind, hours: Option<u32>) -> Result<Option<u32>, NumberRuleError> {
    match (kind, hours) {
        (NumberKind::Verification, None) => Ok(None),
        (NumberKind::Verification, Some(_)) => Err(NumberRuleError::HoursNotAllowed),
        (NumberKind::Rental, Some(h)) if (MIN_RENTAL_HOURS..=MAX_RENTAL_HOURS).contains(&h) => {
            Ok(Some(h))
        }
        (NumberKind::Rental, _) => Err(NumberRuleError::BadHours),
    }
}

/// When a number bought at `now` expires: [`VERIFICATION_WINDOW`] for a verification,
/// `hours` for a rental.
pub fn expires_at(kind: NumberKind, hours: Option<u32>, now: Timestamp) -> Timestamp {
    let span = match kind {
        NumberKind::Verification => VERIFICATION_WINDOW,
        NumberKind::Rental => SignedDuration::from_hours(i64::from(hours.unwrap_or(0))),
    };
    now.checked_add(span).unwrap_or(now)
}

/// What a number costs: a verification's price, or a rental's hourly price times its hours.
pub fn order_price(kind: NumberKind, unit_price: Micros, hours: Option<u32>) -> Micros {
    match kind {
        NumberKind::Verification => unit_price,
        NumberKind::Rental => Micros(
            unit_price
                .0
                .saturating_mul(i64::from(hours.unwrap_or(0).max(1))),
        ),
    }
}

/// What the state machine needs of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberState {
    /// Its kind.
    pub kind: NumberKind,
    /// Its status.
    pub status: NumberStatus,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// What happens to a number, and whether it is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The status after.
    pub status: NumberStatus,
    /// Whether the price is given back to the wallet (a verification that got no code).
    pub refund: bool,
}

/// The business cancels at `now`: a verification before its code is canceled and refunded;
/// after its code, after expiry, or a rental → refused (a rental runs to its end).
pub fn cancel(n: &NumberState, now: Timestamp) -> Result<Transition, NumberRuleError> {
    match (n.kind, n.status) {
        (NumberKind::Verification, NumberStatus::Active) if now < n.expires_at => Ok(Transition {
            status: NumberStatus::Canceled,
            refund: true,
        }),
        // Past its time but not yet expired by its job: the expiry refunds it just the same.
        (NumberKind::Verification, NumberStatus::Active) => Ok(Transition {
            status: NumberStatus::Expired,
            refund: true,
        }),
        (NumberKind::Verification, NumberStatus::CodeReceived) => Err(NumberRuleError::NotNow(
            "the code was received: the verification is paid and cannot be canceled".into(),
        )),
        (NumberKind::Rental, NumberStatus::Active) => Err(NumberRuleError::NotNow(
            "a rental cannot be canceled; it ends at expires_at".into(),
        )),
        (_, s) => Err(NumberRuleError::NotNow(format!(
            "the number is {}",
            s.as_str()
        ))),
    }
}

/// The expiry job at `now`: an active number whose time ran out expires, refunded if it is a
/// verification without a code. `None`: nothing to do (already final, or extended since).
pub fn expire(n: &NumberState, now: Timestamp) -> Option<Transition> {
    (n.status == NumberStatus::Active && now >= n.expires_at).then_some(Transition {
        status: NumberStatus::Expired,
        refund: n.kind == NumberKind::Verification,
    })
}

/// A code arrived at `now`: an active verification moves to `code_received`; anything else
/// keeps its status (a rental just records the SMS; a late code changes nothing).
pub fn code_arrives(n: &NumberState, now: Timestamp) -> Option<NumberStatus> {
    (n.kind == NumberKind::Verification && n.status == NumberStatus::Active && now < n.expires_at)
        .then_some(NumberStatus::CodeReceived)
}

/// A rental extended by `hours` at `now`: the new expiry, counted from the current one (the
/// hours bought are never shortened by when the extension is asked for).
pub fn extend(n: &NumberState, hours: u32, now: Timestamp) -> Result<Timestamp, NumberRuleError> {
    if !(MIN_RENTAL_HOURS..=MAX_RENTAL_HOURS).contains(&hours) {
        return Err(NumberRuleError::BadHours);
    }
    if n.kind != NumberKind::Rental {
        return Err(NumberRuleError::NotNow(
            "only a rental can be extended".into(),
        ));
    }
    if n.status != NumberStatus::Active || now >= n.expires_at {
        return Err(NumberRuleError::NotNow(
            "the rental has ended; order a new number".into(),
        ));
    }
    Ok(n.expires_at
        .checked_add(SignedDuration::from_hours(i64::from(hours)))
        .unwrap_or(n.expires_at))
}

/// One provider's offer for a service, country and kind, as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The provider's position in the router's list (ties go to the earlier one).
    pub provider: usize,
    /// What wagate charges: a verification, or one hour of a rental.
    pub price: Micros,
    /// Numbers in stock.
    pub stock: u64,
}

/// The order in which the router tries `offers`: in stock only, cheapest first, ties by
/// provider position. The first is the cheapest in-stock offer; each next is the fail-over
/// when the one before errs or does not answer in time.
pub fn failover_order(offers: &[Offer]) -> Vec<Offer> {
    let mut stocked: Vec<Offer> = offers.iter().filter(|o| o.stock > 0).cloned().collect();
    stocked.sort_by_key(|o| (o.price, o.provider));
    stocked
}

/// The offer shown in the price list: the cheapest in stock.
pub fn cheapest_in_stock(offers: &[Offer]) -> Option<Offer> {
    failover_order(offers).into_iter().next()
}

/// The code in an SMS: the first group of 4 to 8 digits, allowing one `-` or space inside it
/// as services print them (`123-456`, `123 456`), returned without the separator. `None` if
/// the text holds no such group.
pub fn extract_code(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut j = i;
        let mut separated = false;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits.push(c);
            } else if (c == '-' || c == ' ')
                && !separated
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
                && !digits.is_empty()
            {
                separated = true;
            } else {
                break;
            }
            j += 1;
        }
        if (4..=8).contains(&digits.len()) {
            return Some(digits);
        }
        // A group with a separator that is too long may hold a code before the separator.
        i = j.max(i + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("valid time")
    }

    fn state(kind: NumberKind, status: NumberStatus) -> NumberState {
        NumberState {
            kind,
            status,
            expires_at: t("2026-01-01T00:20:00Z"),
        }
    }

    #[test]
    fn a_verification_lasts_twenty_minutes_and_a_rental_its_hours() {
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(
            expires_at(NumberKind::Verification, None, now),
            t("2026-01-01T00:20:00Z")
        );
        assert_eq!(
            expires_at(NumberKind::Rental, Some(48), now),
            t("2026-01-03T00:00:00Z")
        );
    }

    #[test]
    fn rental_hours_are_one_to_seven_hundred_twenty() {
        use NumberKind::*;
        assert_eq!(check_hours(Rental, Some(1)), Ok(Some(1)));
        assert_eq!(check_hours(Rental, Some(720)), Ok(Some(720)));
        assert_eq!(check_hours(Rental, Some(0)), Err(NumberRuleError::BadHours));
        assert_eq!(
            check_hours(Rental, Some(721)),
            Err(NumberRuleError::BadHours)
        );
        assert_eq!(check_hours(Rental, None), Err(NumberRuleError::BadHours));
        assert_eq!(check_hours(Verification, None), Ok(None));
        assert_eq!(
            check_hours(Verification, Some(2)),
            Err(NumberRuleError::HoursNotAllowed)
        );
        assert_eq!(
            order_price(Rental, Micros(250_000), Some(3)),
            Micros(750_000)
        );
        assert_eq!(
            order_price(Verification, Micros(250_000), None),
            Micros(250_000)
        );
    }

    #[test]
    fn a_verification_without_a_code_is_refunded_and_a_rental_never() {
        let at_end = t("2026-01-01T00:20:00Z");
        let v = state(NumberKind::Verification, NumberStatus::Active);
        assert_eq!(
            expire(&v, at_end),
            Some(Transition {
                status: NumberStatus::Expired,
                refund: true
            })
        );
        assert_eq!(expire(&v, t("2026-01-01T00:19:59Z")), None, "not yet");
        let r = state(NumberKind::Rental, NumberStatus::Active);
        assert_eq!(
            expire(&r, at_end),
            Some(Transition {
                status: NumberStatus::Expired,
                refund: false
            })
        );
        // Final numbers are never expired (or refunded) again.
        for s in [
            NumberStatus::CodeReceived,
            NumberStatus::Expired,
            NumberStatus::Canceled,
        ] {
            assert_eq!(expire(&state(NumberKind::Verification, s), at_end), None);
        }
    }

    #[test]
    fn cancel_refunds_before_the_code_only() {
        let now = t("2026-01-01T00:05:00Z");
        let v = state(NumberKind::Verification, NumberStatus::Active);
        assert_eq!(
            cancel(&v, now),
            Ok(Transition {
                status: NumberStatus::Canceled,
                refund: true
            })
        );
        let done = state(NumberKind::Verification, NumberStatus::CodeReceived);
        assert!(matches!(
            cancel(&done, now),
            Err(NumberRuleError::NotNow(_))
        ));
        let canceled = state(NumberKind::Verification, NumberStatus::Canceled);
        assert!(cancel(&canceled, now).is_err(), "refunded once only");
        let rental = state(NumberKind::Rental, NumberStatus::Active);
        assert!(cancel(&rental, now).is_err());
    }

    #[test]
    fn a_code_counts_only_for_an_active_verification_in_its_window() {
        let v = state(NumberKind::Verification, NumberStatus::Active);
        assert_eq!(
            code_arrives(&v, t("2026-01-01T00:19:00Z")),
            Some(NumberStatus::CodeReceived)
        );
        assert_eq!(code_arrives(&v, t("2026-01-01T00:20:00Z")), None);
        let r = state(NumberKind::Rental, NumberStatus::Active);
        assert_eq!(code_arrives(&r, t("2026-01-01T00:01:00Z")), None);
    }

    #[test]
    fn a_rental_extends_from_its_current_end() {
        let r = state(NumberKind::Rental, NumberStatus::Active);
        assert_eq!(
            extend(&r, 2, t("2026-01-01T00:00:00Z")),
            Ok(t("2026-01-01T02:20:00Z"))
        );
        assert_eq!(
            extend(&r, 0, t("2026-01-01T00:00:00Z")),
            Err(NumberRuleError::BadHours)
        );
        assert!(extend(&r, 1, t("2026-01-01T00:20:00Z")).is_err(), "ended");
        let v = state(NumberKind::Verification, NumberStatus::Active);
        assert!(extend(&v, 1, t("2026-01-01T00:00:00Z")).is_err());
    }

    #[test]
    fn the_router_takes_the_cheapest_in_stock_then_the_next() {
        let offers = vec![
            Offer {
                provider: 0,
                price: Micros(900_000),
                stock: 5,
            },
            Offer {
                provider: 1,
                price: Micros(500_000),
                stock: 0,
            },
            Offer {
                provider: 2,
                price: Micros(700_000),
                stock: 1,
            },
            Offer {
                provider: 3,
                price: Micros(700_000),
                stock: 9,
            },
        ];
        let order: Vec<usize> = failover_order(&offers).iter().map(|o| o.provider).collect();
        assert_eq!(order, [2, 3, 0], "out of stock skipped; ties by position");
        assert_eq!(cheapest_in_stock(&offers).map(|o| o.provider), Some(2));
        assert_eq!(cheapest_in_stock(&offers[1..2]), None);
    }

    #[test]
    fn codes_are_read_out_of_the_text() {
        assert_eq!(
            extract_code("Your WhatsApp code: 123-456"),
            Some("123456".into())
        );
        assert_eq!(extract_code("G-482913 is your code"), Some("482913".into()));
        assert_eq!(extract_code("code 1234"), Some("1234".into()));
        assert_eq!(extract_code("call +447700900123 now"), None);
        assert_eq!(extract_code("no digits here"), None);
        assert_eq!(extract_code("12 then 98765"), Some("98765".into()));
    }
}
