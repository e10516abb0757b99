//! What an account should expect to pay: `GET /billing/forecast` (§4).

use super::plan::Plan;
use super::schedule::{period_index_at, period_start};
use crate::ids::LineId;
use crate::money::Micros;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// How far ahead [`Forecast::upcoming`] looks.
pub const UPCOMING_WINDOW: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Where a line stands, as far as billing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForecastStatus {
    /// Not scanned yet: costs nothing now, may cost up to its `price` once scanned.
    Pending,
    /// Scanned and not released (ready, reconnecting, logged out, in trial or past due): billed
    /// monthly on this plan.
    Billed(Plan),
    /// Released: never charged again.
    Released,
}

/// One line as the forecast sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastLine {
    /// The line.
    pub id: LineId,
    /// Its billing standing.
    pub status: ForecastStatus,
    /// For a billed line its plan's price; for a pending line the most it can cost
    /// ([`Plan::max_price`] of its flags).
    pub price: Micros,
    /// The billed line's anchor (see [`super::schedule`]), used to list the anniversaries
    /// after `next_charge_at`; `None` lists `next_charge_at` alone.
    pub anchor: Option<Timestamp>,
    /// When the billed line is next charged: its trial end, next anniversary or next grace
    /// retry.
    pub next_charge_at: Option<Timestamp>,
}

/// A charge expected within [`UPCOMING_WINDOW`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingCharge {
    /// The line to be charged.
    pub line_id: LineId,
    /// When.
    pub date: Timestamp,
    /// How much.
    pub amount: Micros,
}

/// The account's billing forecast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// Billed lines on the messaging plan.
    pub messaging_lines: u64,
    /// Billed lines on the calling plan.
    pub calling_lines: u64,
    /// What the billed lines cost per month.
    pub monthly_total: Micros,
    /// The most the pending lines can cost per month once scanned.
    pub pending_lines_max_cost: Micros,
    /// `monthly_total + pending_lines_max_cost`: a wallet balance that covers one cycle.
    pub recommended_balance: Micros,
    /// Charges due before `now + 30 days` (overdue ones included, as due now), oldest first.
    pub upcoming: Vec<UpcomingCharge>,
}

fn plus(a: Micros, b: Micros) -> Micros {
    Micros(a.0.saturating_add(b.0))
}

/// The forecast of an account's `lines` at `now`. Released lines count for nothing. Sums
/// saturate rather than overflow (they are estimates, not ledger amounts).
pub fn forecast(lines: &[ForecastLine], now: Timestamp) -> Forecast {
    let horizon = now.checked_add(UPCOMING_WINDOW).unwrap_or(Timestamp::MAX);
    let mut f = Forecast {
        messaging_lines: 0,
        calling_lines: 0,
        monthly_total: Micros::ZERO,
        pending_lines_max_cost: Micros::ZERO,
        recommended_balance: Micros::ZERO,
        upcoming: Vec::new(),
    };
    for line in lines {
        match line.status {
            ForecastStatus::Released => {}
            ForecastStatus::Pending => {
                f.pending_lines_max_cost = plus(f.pending_lines_max_cost, line.price);
            }
            ForecastStatus::Billed(plan) => {
                match plan {
                    Plan::Messaging => f.messaging_lines += 1,
                    Plan::Calling => f.calling_lines += 1,
                }
                f.monthly_total = plus(f.monthly_total, line.price);
                if let Some(next) = line.next_charge_at {
                    for date in charge_dates(next, line.anchor, horizon) {
                        f.upcoming.push(UpcomingCharge {
                            line_id: line.id.clone(),
                            date,
                            amount: line.price,
                        });
                    }
                }
            }
        }
    }
    f.recommended_balance = plus(f.monthly_total, f.pending_lines_max_cost);
    f.upcoming
        .sort_by(|a, b| (a.date, &a.line_id).cmp(&(b.date, &b.line_id)));
    f
}

/// `next` and the anniversaries after it, all before `horizon`.
fn charge_dates(next: Timestamp, anchor: Option<Timestamp>, horizon: Timestamp) -> Vec<Timestamp> {
    let mut out = Vec::new();
    if next >= horizon {
        return out;
    }
    out.push(next);
    let Some(anchor) = anchor else {
        return out;
    };
    let first = if anchor > next {
        0
    } else {
        period_index_at(anchor, next).saturating_add(1)
    };
    // Periods last at least 28 days, so a 30-day window holds at most two more; the bound
    // only guards against a horizon far in the future.
    for m in (first..=first.saturating_add(63)).take(64) {
        let at = period_start(anchor, m);
        if at >= horizon || at <= next {
            break;
        }
        out.push(at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::plan::PlanPrices;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn id(s: &str) -> LineId {
        LineId::parse(s).expect("valid id")
    }

    fn billed(name: &str, plan: Plan, anchor: &str, next: &str) -> ForecastLine {
        ForecastLine {
            id: id(name),
            status: ForecastStatus::Billed(plan),
            price: plan.price(&PlanPrices::default()),
            anchor: Some(ts(anchor)),
            next_charge_at: Some(ts(next)),
        }
    }

    #[test]
    fn forecast_counts_totals_and_lists_the_next_thirty_days() {
        let prices = PlanPrices::default();
        let lines = vec![
            billed(
                "line_a",
                Plan::Messaging,
                "2026-01-31T09:00:00Z",
                "2026-02-28T09:00:00Z",
            ),
            billed(
                "line_b",
                Plan::Calling,
                "2026-01-05T00:00:00Z",
                "2026-02-05T00:00:00Z",
            ),
            // The trial line: anchored at its trial end, first charged then.
            billed(
                "line_c",
                Plan::Messaging,
                "2026-02-07T09:00:00Z",
                "2026-02-07T09:00:00Z",
            ),
            // Next charge tomorrow and the one after within the window too.
            billed(
                "line_d",
                Plan::Messaging,
                "2026-01-01T00:00:00Z",
                "2026-02-01T00:00:00Z",
            ),
            ForecastLine {
                id: id("line_e"),
                status: ForecastStatus::Pending,
                price: Plan::max_price(false, true, &prices),
                anchor: None,
                next_charge_at: None,
            },
            ForecastLine {
                id: id("line_f"),
                status: ForecastStatus::Pending,
                price: Plan::max_price(false, false, &prices),
                anchor: None,
                next_charge_at: None,
            },
            ForecastLine {
                id: id("line_g"),
                status: ForecastStatus::Released,
                price: prices.calling,
                anchor: Some(ts("2026-01-10T00:00:00Z")),
                next_charge_at: None,
            },
        ];
        let f = forecast(&lines, ts("2026-01-31T12:00:00Z"));
        assert_eq!(f.messaging_lines, 3);
        assert_eq!(f.calling_lines, 1);
        assert_eq!(f.monthly_total.to_string(), "65.00");
        assert_eq!(f.pending_lines_max_cost.to_string(), "35.00");
        assert_eq!(f.recommended_balance.to_string(), "100.00");
        let got: Vec<(&str, Timestamp, String)> = f
            .upcoming
            .iter()
            .map(|u| (u.line_id.as_str(), u.date, u.amount.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("line_d", ts("2026-02-01T00:00:00Z"), "15.00".to_owned()),
                ("line_b", ts("2026-02-05T00:00:00Z"), "20.00".to_owned()),
                ("line_c", ts("2026-02-07T09:00:00Z"), "15.00".to_owned()),
                ("line_a", ts("2026-02-28T09:00:00Z"), "15.00".to_owned()),
                ("line_d", ts("2026-03-01T00:00:00Z"), "15.00".to_owned()),
            ]
        );
    }

    #[test]
    fn a_past_due_line_lists_its_retry_then_its_anniversary() {
        // Renewal failed 2026-02-28T09:00; retry tomorrow; next anniversary Mar 31 is outside.
        let line = billed(
            "line_a",
            Plan::Calling,
            "2026-01-31T09:00:00Z",
            "2026-03-01T09:00:00Z",
        );
        let f = forecast(&[line], ts("2026-02-28T10:00:00Z"));
        let dates: Vec<Timestamp> = f.upcoming.iter().map(|u| u.date).collect();
        assert_eq!(dates, [ts("2026-03-01T09:00:00Z")]);
        let f = forecast(
            &[billed(
                "line_a",
                Plan::Calling,
                "2026-01-31T09:00:00Z",
                "2026-03-01T09:00:00Z",
            )],
            ts("2026-03-02T10:00:00Z"),
        );
        let dates: Vec<Timestamp> = f.upcoming.iter().map(|u| u.date).collect();
        assert_eq!(
            dates,
            [ts("2026-03-01T09:00:00Z"), ts("2026-03-31T09:00:00Z")]
        );
    }

    #[test]
    fn an_empty_account_forecasts_nothing() {
        let f = forecast(&[], ts("2026-01-01T00:00:00Z"));
        assert_eq!(f.recommended_balance, Micros::ZERO);
        assert!(f.upcoming.is_empty());
    }
}
