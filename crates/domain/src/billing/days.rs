//! Partner billing in days (PRODUCT.md §11): the rules of an account whose lines cost days
//! rather than flat monthly charges.
//!
//! Days are their own unit in their own double-entry ledger: they are never money and never
//! mixed with the wallet. A paid invoice moves days from [`DaysAccount::Sold`] to the
//! account's balance; extending a line moves days from the balance to the line; time spends
//! them; releasing a line moves its unused whole days back to the balance and the spent rest
//! to [`DaysAccount::Used`]. So at any moment, days bought = days on the balance + days on
//! lines + days used, and a prepaid balance never goes below zero (a postpaid one may, and
//! is invoiced for what it used).
//!
//! Time always arrives as an argument. The store applies the postings built here in the same
//! transaction as the change they belong to.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, LineId};
use crate::money::Micros;

/// Days in a channel-month: an invoice for N channels buys N × 30 days.
pub const DAYS_PER_CHANNEL: u32 = 30;
/// The most days one invoice may buy (10,000 channel-months).
pub const MAX_INVOICE_DAYS: u32 = 300_000;
/// The most days one extension may move.
pub const MAX_EXTEND_DAYS: u32 = 3_660;
/// How long after `paid_until` an unextended line is released (`release_reason: "unpaid"`).
pub const UNPAID_GRACE: SignedDuration = SignedDuration::from_hours(5 * 24);

const DAY: i64 = 86_400;

/// How an account's lines are billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BillingMode {
    /// Flat monthly plans charged from the wallet (§4).
    #[default]
    Flat,
    /// A balance of days bought by invoice and handed to lines (§11).
    Days,
}

impl BillingMode {
    /// The stored and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Flat => "flat",
            BillingMode::Days => "days",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "flat" => Some(BillingMode::Flat),
            "days" => Some(BillingMode::Days),
            _ => None,
        }
    }
}

/// A ledger account that holds days.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DaysAccount {
    /// Where bought days come from (the operator's side of an invoice).
    Sold,
    /// An account's balance of days not yet handed to a line.
    Balance(AccountId),
    /// Days handed to a line and not yet spent or returned.
    Line(LineId),
    /// Days spent by lines.
    Used,
}

/// One side of a days posting: a signed number of days on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaysEntry {
    /// Which account.
    pub account: DaysAccount,
    /// Signed days: positive adds to the account.
    pub days: i64,
}

/// What a days posting records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaysTxnType {
    /// A paid invoice credits the balance.
    InvoicePaid,
    /// Days moved to a line.
    Extend,
    /// A released line's unused days back to the balance, the spent ones to used.
    Release,
}

/// A balanced move of days: its entries sum to zero. Built only by this module's functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaysPosting {
    txn_type: DaysTxnType,
    entries: Vec<DaysEntry>,
}

impl DaysPosting {
    fn new(txn_type: DaysTxnType, entries: Vec<DaysEntry>) -> DaysPosting {
        debug_assert_eq!(entries.iter().map(|e| e.days).sum::<i64>(), 0);
        DaysPosting {
            txn_type,
            entries: entries.into_iter().filter(|e| e.days != 0).collect(),
        }
    }

    /// What it records.
    pub fn txn_type(&self) -> DaysTxnType {
        self.txn_type
    }

    /// The entries, which sum to zero (zero-day sides left out).
    pub fn entries(&self) -> &[DaysEntry] {
        &self.entries
    }

    /// The net change of `account`.
    pub fn delta(&self, account: &DaysAccount) -> i64 {
        self.entries
            .iter()
            .filter(|e| &e.account == account)
            .map(|e| e.days)
            .sum()
    }
}

/// Why a days rule refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaysError {
    /// An invoice names neither or both of `channels` and `days`, or zero, or too many.
    #[error(
        "give either channels or days: a whole number from 1 (at most {MAX_INVOICE_DAYS} days)"
    )]
    BadInvoice,
    /// An extension of zero or too many days.
    #[error("days must be between 1 and {MAX_EXTEND_DAYS}")]
    BadExtension,
    /// A prepaid balance does not hold the days asked for (402 `insufficient_days`).
    #[error("the balance holds {balance} days; {requested} were asked for")]
    InsufficientDays {
        /// Days on the balance.
        balance: i64,
        /// Days asked for.
        requested: u32,
    },
    /// The amount does not fit.
    #[error("the invoice amount overflows")]
    Overflow,
}

/// The days an invoice buys: `channels × 30`, or `days`.
pub fn invoice_days(channels: Option<u32>, days: Option<u32>) -> Result<u32, DaysError> {
    let d = match (channels, days) {
        (Some(c), None) => c
            .checked_mul(DAYS_PER_CHANNEL)
            .ok_or(DaysError::BadInvoice)?,
        (None, Some(d)) => d,
        _ => return Err(DaysError::BadInvoice),
    };
    if (1..=MAX_INVOICE_DAYS).contains(&d) {
        Ok(d)
    } else {
        Err(DaysError::BadInvoice)
    }
}

/// What `days` cost at `day_price` (exact, in micro-units).
pub fn invoice_amount(days: u32, day_price: Micros) -> Result<Micros, DaysError> {
    day_price
        .0
        .checked_mul(i64::from(days))
        .map(Micros)
        .ok_or(DaysError::Overflow)
}

/// A paid invoice: `days` from sold to the account's balance.
pub fn invoice_paid(account: &AccountId, days: u32) -> DaysPosting {
    let d = i64::from(days);
    DaysPosting::new(
        DaysTxnType::InvoicePaid,
        vec![
            DaysEntry {
                account: DaysAccount::Balance(account.clone()),
                days: d,
            },
            DaysEntry {
                account: DaysAccount::Sold,
                days: -d,
            },
        ],
    )
}

/// A line after an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extended {
    /// The move of days.
    pub posting: DaysPosting,
    /// The line's new `paid_until`: `days` after the later of now and the old one.
    pub paid_until: Timestamp,
}

/// Extends `line` by `days` from the account's balance (`balance` days now). A prepaid
/// balance must hold them; a postpaid one may go below zero.
pub fn extend(
    account: &AccountId,
    line: &LineId,
    balance: i64,
    postpaid: bool,
    days: u32,
    paid_until: Option<Timestamp>,
    now: Timestamp,
) -> Result<Extended, DaysError> {
    if !(1..=MAX_EXTEND_DAYS).contains(&days) {
        return Err(DaysError::BadExtension);
    }
    let d = i64::from(days);
    if !postpaid && balance < d {
        return Err(DaysError::InsufficientDays {
            balance,
            requested: days,
        });
    }
    let from = paid_until.filter(|p| *p > now).unwrap_or(now);
    let paid_until = from
        .checked_add(SignedDuration::from_secs(d * DAY))
        .map_err(|_| DaysError::Overflow)?;
    Ok(Extended {
        posting: DaysPosting::new(
            DaysTxnType::Extend,
            vec![
                DaysEntry {
                    account: DaysAccount::Line(line.clone()),
                    days: d,
                },
                DaysEntry {
                    account: DaysAccount::Balance(account.clone()),
                    days: -d,
                },
            ],
        ),
        paid_until,
    })
}

/// A released line's days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// The move of days (unused back to the balance, the rest to used).
    pub posting: DaysPosting,
    /// The unused whole days returned to the balance (`days_returned` on the line).
    pub returned: u32,
}

/// Releases a line holding `on_line` days and paid until `paid_until`, at `now`: the whole
/// days left before `paid_until` go back to the balance (a part-day is spent), never more than
/// the line holds; everything else on the line is used.
pub fn release(
    account: &AccountId,
    line: &LineId,
    on_line: i64,
    paid_until: Option<Timestamp>,
    now: Timestamp,
) -> Released {
    let left = paid_until
        .filter(|p| *p > now)
        .map(|p| p.duration_since(now).as_secs() / DAY)
        .unwrap_or(0);
    let returned = left.clamp(0, on_line.max(0));
    let used = on_line - returned;
    Released {
        posting: DaysPosting::new(
            DaysTxnType::Release,
            vec![
                DaysEntry {
                    account: DaysAccount::Balance(account.clone()),
                    days: returned,
                },
                DaysEntry {
                    account: DaysAccount::Used,
                    days: used,
                },
                DaysEntry {
                    account: DaysAccount::Line(line.clone()),
                    days: -on_line,
                },
            ],
        ),
        returned: u32::try_from(returned).unwrap_or(u32::MAX),
    }
}

/// The first instant of the UTC month after the one `t` is in: when a postpaid account's
/// month is invoiced.
pub fn next_month_start(t: Timestamp) -> Timestamp {
    let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = d.first_of_month();
    first
        .checked_add(jiff::Span::new().months(1))
        .ok()
        .and_then(|n| n.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// The first instant of the UTC month before the one that starts at `month_start`.
pub fn previous_month_start(month_start: Timestamp) -> Timestamp {
    let d = month_start.to_zoned(jiff::tz::TimeZone::UTC).date();
    d.first_of_month()
        .checked_sub(jiff::Span::new().months(1))
        .ok()
        .and_then(|p| p.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .unwrap_or(month_start)
}

/// The days a postpaid account owes for a month, from the net change its extensions and
/// releases made to the balance in it (negative: days drawn); `None` when it drew none.
pub fn postpaid_days(balance_moves: i64) -> Option<u32> {
    u32::try_from(balance_moves.checked_neg()?)
        .ok()
        .filter(|d| *d > 0)
}

/// Whether a days-mode line may send at `now`: only while it is paid.
pub fn is_paid(paid_until: Option<Timestamp>, now: Timestamp) -> bool {
    paid_until.is_some_and(|p| p > now)
}

/// When an unextended line is released: [`UNPAID_GRACE`] after `paid_until`.
pub fn unpaid_release_at(paid_until: Timestamp) -> Timestamp {
    paid_until.checked_add(UNPAID_GRACE).unwrap_or(paid_until)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn invoices_buy_channel_months_or_days() {
        assert_eq!(invoice_days(Some(75), None), Ok(2_250));
        assert_eq!(invoice_days(None, Some(10)), Ok(10));
        for (c, d) in [
            (None, None),
            (Some(1), Some(1)),
            (Some(0), None),
            (None, Some(0)),
        ] {
            assert_eq!(invoice_days(c, d), Err(DaysError::BadInvoice));
        }
        assert_eq!(
            invoice_days(Some(u32::MAX), None),
            Err(DaysError::BadInvoice)
        );
        assert_eq!(
            invoice_days(None, Some(MAX_INVOICE_DAYS + 1)),
            Err(DaysError::BadInvoice)
        );
        assert_eq!(
            invoice_amount(2_250, Micros(500_000)),
            Ok(Micros(1_125_000_000))
        );
    }

    #[test]
    fn extend_counts_from_the_later_of_now_and_paid_until() {
        let (a, l) = (AccountId::generate(), LineId::generate());
        let now = t("2026-03-01T12:00:00Z");
        let e = extend(&a, &l, 100, false, 30, None, now).unwrap();
        assert_eq!(e.paid_until, t("2026-03-31T12:00:00Z"));
        assert_eq!(e.posting.delta(&DaysAccount::Balance(a.clone())), -30);
        let e2 = extend(&a, &l, 70, false, 5, Some(e.paid_until), now).unwrap();
        assert_eq!(e2.paid_until, t("2026-04-05T12:00:00Z"));
        let lapsed = extend(&a, &l, 70, false, 1, Some(t("2026-01-01T00:00:00Z")), now).unwrap();
        assert_eq!(lapsed.paid_until, t("2026-03-02T12:00:00Z"));
        assert_eq!(
            extend(&a, &l, 4, false, 5, None, now),
            Err(DaysError::InsufficientDays {
                balance: 4,
                requested: 5
            })
        );
        assert!(
            extend(&a, &l, -10, true, 5, None, now).is_ok(),
            "postpaid may go below zero"
        );
        assert_eq!(
            extend(&a, &l, 10, false, 0, None, now),
            Err(DaysError::BadExtension)
        );
    }

    #[test]
    fn release_returns_whole_unused_days() {
        let (a, l) = (AccountId::generate(), LineId::generate());
        let start = t("2026-03-01T00:00:00Z");
        let e = extend(&a, &l, 30, false, 30, None, start).unwrap();
        // Ten days in (and a bit): 19 whole days left, the part-day is spent.
        let r = release(&a, &l, 30, Some(e.paid_until), t("2026-03-11T06:00:00Z"));
        assert_eq!(r.returned, 19);
        let r = release(&a, &l, 30, Some(e.paid_until), t("2026-03-11T00:00:00Z"));
        assert_eq!(r.returned, 20);
        assert_eq!(r.posting.delta(&DaysAccount::Used), 10);
        assert_eq!(r.posting.delta(&DaysAccount::Line(l.clone())), -30);
        let lapsed = release(&a, &l, 30, Some(e.paid_until), t("2026-05-01T00:00:00Z"));
        assert_eq!(lapsed.returned, 0);
        assert!(!is_paid(Some(e.paid_until), e.paid_until));
        assert_eq!(unpaid_release_at(e.paid_until), t("2026-04-05T00:00:00Z"));
    }

    #[test]
    fn postpaid_months() {
        assert_eq!(
            next_month_start(t("2026-01-31T23:59:59Z")),
            t("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            next_month_start(t("2026-12-01T00:00:00Z")),
            t("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            previous_month_start(t("2026-03-01T00:00:00Z")),
            t("2026-02-01T00:00:00Z")
        );
        assert_eq!(
            previous_month_start(t("2026-01-01T00:00:00Z")),
            t("2025-12-01T00:00:00Z")
        );
        assert_eq!(postpaid_days(-30), Some(30));
        assert_eq!(postpaid_days(0), None);
        assert_eq!(
            postpaid_days(12),
            None,
            "more returned than drawn: nothing owed"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Buy(u32),
        Extend(usize, u32),
        Release(usize),
        Wait(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u32..500).prop_map(Op::Buy),
            (0usize..4, 1u32..120).prop_map(|(l, d)| Op::Extend(l, d)),
            (0usize..4).prop_map(Op::Release),
            (0i64..90 * DAY).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Across any sequence of invoices, extensions, releases and clock moves: days bought
        /// = balance + on lines + used; every posting balances; a prepaid balance never goes
        /// below zero; a released line returns no more than it held.
        #[test]
        fn days_are_conserved(ops in proptest::collection::vec(op(), 1..80), postpaid in any::<bool>()) {
            let account = AccountId::generate();
            let lines: Vec<LineId> = (0..4).map(|_| LineId::generate()).collect();
            let mut ledger: BTreeMap<DaysAccount, i64> = BTreeMap::new();
            let mut paid_until: Vec<Option<Timestamp>> = vec![None; 4];
            let mut now = t("2026-01-01T00:00:00Z");
            let mut bought = 0i64;
            let balance_key = DaysAccount::Balance(account.clone());
            let apply = |ledger: &mut BTreeMap<DaysAccount, i64>, p: &DaysPosting| {
                assert_eq!(p.entries().iter().map(|e| e.days).sum::<i64>(), 0);
                for e in p.entries() {
                    *ledger.entry(e.account.clone()).or_default() += e.days;
                }
            };
            for op in ops {
                match op {
                    Op::Buy(d) => {
                        apply(&mut ledger, &invoice_paid(&account, d));
                        bought += i64::from(d);
                    }
                    Op::Extend(i, d) => {
                        let balance = ledger.get(&balance_key).copied().unwrap_or(0);
                        match extend(&account, &lines[i], balance, postpaid, d, paid_until[i], now) {
                            Ok(e) => {
                                apply(&mut ledger, &e.posting);
                                paid_until[i] = Some(e.paid_until);
                            }
                            Err(DaysError::InsufficientDays { .. }) => prop_assert!(!postpaid && balance < i64::from(d)),
                            Err(e) => prop_assert!(false, "{e}"),
                        }
                    }
                    Op::Release(i) => {
                        let on = ledger.get(&DaysAccount::Line(lines[i].clone())).copied().unwrap_or(0);
                        let r = release(&account, &lines[i], on, paid_until[i], now);
                        prop_assert!(i64::from(r.returned) <= on);
                        apply(&mut ledger, &r.posting);
                        paid_until[i] = None;
                    }
                    Op::Wait(s) => now = now.checked_add(SignedDuration::from_secs(s)).unwrap(),
                }
                let balance = ledger.get(&balance_key).copied().unwrap_or(0);
                let on_lines: i64 = lines.iter().map(|l| ledger.get(&DaysAccount::Line(l.clone())).copied().unwrap_or(0)).sum();
                let used = ledger.get(&DaysAccount::Used).copied().unwrap_or(0);
                prop_assert_eq!(ledger.get(&DaysAccount::Sold).copied().unwrap_or(0), -bought);
                if postpaid {
                    // Postpaid extensions may draw days not bought yet: they show as a negative
                    // balance, and the identity still holds.
                    prop_assert_eq!(bought, balance + on_lines + used);
                } else {
                    prop_assert!(balance >= 0);
                    prop_assert_eq!(bought, balance + on_lines + used);
                }
                prop_assert!(used >= 0);
            }
        }
    }
}
