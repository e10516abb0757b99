//! `--summary`: message counts and totals per market, category and type, and per currency.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use foldhash::fast::FixedState;

use crate::category::{PricingType, RateCategory};
use crate::currency::Currency;
use crate::event::Outcome;
use crate::market::{MarketId, Markets};
use crate::money::Micros;

/// One line of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// Totals are never added across currencies.
    pub currency: Currency,
    /// The recipient market.
    pub market: MarketId,
    /// The rate applied.
    pub category: RateCategory,
    /// Why it was or was not charged.
    pub kind: PricingType,
}

/// Counts and money of a group of messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Delivered business messages.
    pub messages: u64,
    /// Of which charged.
    pub billable: u64,
    /// Of which charged but without a rate (`no_rate_card`), so missing from `amount`.
    pub no_rate_card: u64,
    /// Exact sum of the charges.
    pub amount: Micros,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.messages += other.messages;
        self.billable += other.billable;
        self.no_rate_card += other.no_rate_card;
        self.amount = self.amount.saturating_add(other.amount);
    }
}

/// Running totals of a rating run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Looked up once per business message: foldhash, not SipHash, which was a sixth of the
    /// time spent writing output (the rows are sorted before printing, so the order of the
    /// map never shows).
    rows: HashMap<RowKey, Totals, FixedState>,
    /// Non-template messages refused for lack of an open customer service window.
    pub refused: u64,
}

impl Summary {
    /// Counts one business message.
    pub fn add(&mut self, outcome: &Outcome) {
        let pricing = match outcome {
            Outcome::OutsideCustomerServiceWindow => {
                self.refused += 1;
                return;
            }
            Outcome::Priced(pricing) => pricing,
        };
        let totals = self
            .rows
            .entry(RowKey {
                currency: pricing.currency,
                market: pricing.market,
                category: pricing.category,
                kind: pricing.kind,
            })
            .or_default();
        totals.messages += 1;
        if pricing.billable {
            totals.billable += 1;
            if pricing.rate.is_none() {
                totals.no_rate_card += 1;
            }
        }
        totals.amount = totals.amount.saturating_add(pricing.charge());
    }

    /// Every line, sorted by currency, market name, category and type.
    pub fn rows(&self, markets: &Markets) -> Vec<(RowKey, Totals)> {
        let mut rows: Vec<(RowKey, Totals)> = self.rows.iter().map(|(k, v)| (*k, *v)).collect();
        rows.sort_by(|(a, _), (b, _)| {
            (a.currency, markets.name(a.market), a.category, a.kind).cmp(&(
                b.currency,
                markets.name(b.market),
                b.category,
                b.kind,
            ))
        });
        rows
    }

    /// The grand total of each currency.
    pub fn grand_totals(&self) -> BTreeMap<Currency, Totals> {
        let mut totals: BTreeMap<Currency, Totals> = BTreeMap::new();
        for (key, row) in &self.rows {
            totals.entry(key.currency).or_default().add(row);
        }
        totals
    }

    /// Prints the table (for standard error).
    pub fn write_table(&self, out: &mut dyn Write, markets: &Markets) -> io::Result<()> {
        let rows = self.rows(markets);
        let grand = self.grand_totals();
        let mut lines: Vec<[String; 8]> = vec![[
            "market".into(),
            "category".into(),
            "type".into(),
            "messages".into(),
            "charged".into(),
            "no_rate_card".into(),
            "amount".into(),
            "currency".into(),
        ]];
        let line = |market: &str, category: &str, kind: &str, t: &Totals, c: Currency| {
            [
                market.to_string(),
                category.to_string(),
                kind.to_string(),
                t.messages.to_string(),
                t.billable.to_string(),
                t.no_rate_card.to_string(),
                t.amount.to_string(),
                c.to_string(),
            ]
        };
        for (key, totals) in &rows {
            lines.push(line(
                markets.name(key.market),
                key.category.as_str(),
                key.kind.as_str(),
                totals,
                key.currency,
            ));
        }
        for (currency, totals) in &grand {
            lines.push(line("TOTAL", "", "", totals, *currency));
        }
        let mut widths = [0usize; 8];
        for l in &lines {
            for (w, cell) in widths.iter_mut().zip(l) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for (n, l) in lines.iter().enumerate() {
            if n == lines.len() - grand.len() {
                let rule: usize = widths.iter().sum::<usize>() + 2 * 7;
                writeln!(out, "{}", "-".repeat(rule))?;
            }
            writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {:>w5$}  {:>w6$}  {:<w7$}",
                l[0],
                l[1],
                l[2],
                l[3],
                l[4],
                l[5],
                l[6],
                l[7],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
                w5 = widths[5],
                w6 = widths[6],
                w7 = widths[7],
            )?;
        }
        writeln!(
            out,
            "refused (outside_customer_service_window): {}",
            self.refused
        )
    }
}
