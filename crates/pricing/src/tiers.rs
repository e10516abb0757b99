//! Volume tier tables (utility, authentication, authentication-international) as data.
//!
//! Meta publishes them as `Tier Pricing.csv`: title lines, a section row naming the three
//! side-by-side groups (`Utility`, `Authentication`, `Auth-Intl`), then a header row
//! `Market, Currency, From, To, Rate type, Rate, vs. List rate` with the last five columns
//! repeated per group. The market name is only on the first row of its bands.
//!
//! Tiers are graduated: "List rate for the first A messages. Tier rate 1 for messages A+1 to
//! B", so a band's rate applies only to the messages counted inside it.

use std::collections::HashMap;
use std::fmt;

use jiff::civil::Date;

use crate::currency::Currency;
use crate::error::DataError;
use crate::market::{MarketId, Markets};
use crate::meta_csv;
use crate::money::Micros;

/// The three groups of a tier table. Authentication-international has its own rates but
/// shares the authentication counter (Meta's example 2: tiers keep accruing when the
/// international rate starts mid-month).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TierGroup {
    /// Utility templates.
    Utility,
    /// Authentication templates at the domestic rate.
    Authentication,
    /// Authentication templates at the international rate.
    AuthenticationInternational,
}

/// One band of a tier table: messages `from..=to` of the month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierBand {
    /// First message number of the band (Meta writes the first band as 0 or 1).
    pub from: u64,
    /// Last message number; `None` for the open top band (`--`).
    pub to: Option<u64>,
    /// "List rate" bands charge the rate card's rate, so a card update applies to them.
    pub list_rate: bool,
    /// The band's rate (used for the discounted bands).
    pub rate: Option<Micros>,
}

impl TierBand {
    fn contains(&self, count: u64) -> bool {
        count >= self.from.max(1) && self.to.is_none_or(|to| count <= to)
    }

    /// The band as Meta writes it in analytics and webhooks (`0:750000`, `750001:MAX`).
    pub fn range(&self) -> TierRange {
        TierRange {
            from: self.from,
            to: self.to,
        }
    }
}

/// A band's bounds, printed as Meta does (`25000001:50000000`, `0:MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TierRange {
    /// Lower bound as written in the table.
    pub from: u64,
    /// Upper bound; `None` is `MAX`.
    pub to: Option<u64>,
}

impl fmt::Display for TierRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}:{}", self.from, to),
            None => write!(f, "{}:MAX", self.from),
        }
    }
}

/// One tier table: one currency from one date on.
#[derive(Clone, Debug)]
pub struct TierTable {
    /// The billing currency.
    pub currency: Currency,
    /// From 12am of this date in each WABA's time zone.
    pub effective_from: Date,
    /// Where it was read from.
    pub source: String,
    bands: HashMap<(MarketId, TierGroup), Vec<TierBand>>,
}

impl TierTable {
    /// The band the `count`-th charged message of the month falls in.
    pub fn band(&self, market: MarketId, group: TierGroup, count: u64) -> Option<&TierBand> {
        self.bands
            .get(&(market, group))
            .and_then(|bands| bands.iter().find(|b| b.contains(count)))
    }
}

/// All loaded tier tables.
#[derive(Clone, Debug, Default)]
pub struct TierTables {
    tables: Vec<TierTable>,
}

impl TierTables {
    /// Adds a table; it replaces one of the same currency and date.
    pub fn add(&mut self, table: TierTable) {
        self.tables.retain(|t| {
            !(t.currency == table.currency && t.effective_from == table.effective_from)
        });
        self.tables.push(table);
    }

    /// The table in force on `date` for `currency`.
    pub fn in_force(&self, currency: Currency, date: Date) -> Option<usize> {
        self.tables
            .iter()
            .enumerate()
            .filter(|(_, t)| t.currency == currency && t.effective_from <= date)
            .max_by_key(|(_, t)| t.effective_from)
            .map(|(i, _)| i)
    }

    /// The table at an index from [`TierTables::in_force`].
    pub fn get(&self, index: usize) -> Option<&TierTable> {
        self.tables.get(index)
    }
}

/// Reads Meta's `Tier Pricing.csv`; `effective` overrides the date in the title lines.
pub fn parse_meta_tiers(
    text: &str,
    source: &str,
    effective: Option<Date>,
    markets: &mut Markets,
) -> Result<TierTable, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut title_lines = Vec::new();
    let mut sections: Vec<(usize, TierGroup)> = Vec::new();
    let mut layout: Option<Layout> = None;
    let mut market: Option<MarketId> = None;
    let mut currency: Option<Currency> = None;
    let mut bands: HashMap<(MarketId, TierGroup), Vec<TierBand>> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = record.map_err(|e| DataError::new(source, format!("row {row}: {e}")))?;
        let Some(layout) = &layout else {
            let keys: Vec<String> = record.iter().map(meta_csv::header_key).collect();
            if keys.first().is_some_and(|k| k.starts_with("market"))
                && keys.iter().any(|k| k == "from")
            {
                layout = Some(Layout::find(&keys, &sections, source)?);
            } else {
                let found = section_labels(&keys);
                if found.len() >= 2 {
                    sections = found;
                }
                title_lines.push(record.iter().collect::<Vec<_>>().join(" "));
            }
            continue;
        };
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        if !cell(0).is_empty() {
            market = Some(markets.intern(cell(0)));
        }
        if let Some(i) = layout.currency {
            if !cell(i).is_empty() {
                let this = Currency::parse(cell(i)).ok_or_else(|| {
                    DataError::new(source, format!("row {row}: unknown currency `{}`", cell(i)))
                })?;
                if currency.is_some_and(|c| c != this) {
                    return Err(DataError::new(
                        source,
                        format!("row {row}: a Tier Pricing.csv holds one currency"),
                    ));
                }
                currency = Some(this);
            }
        }
        let Some(market) = market else {
            continue;
        };
        for &(start, group) in &layout.groups {
            if meta_csv::not_applicable(cell(start)) {
                continue;
            }
            let count = |i: usize| -> Result<Option<u64>, DataError> {
                if meta_csv::not_applicable(cell(i)) {
                    return Ok(None);
                }
                let digits: String = cell(i).chars().filter(|c| *c != ',').collect();
                digits.parse::<u64>().map(Some).map_err(|_| {
                    DataError::new(
                        source,
                        format!("row {row}: `{}` is not a message count", cell(i)),
                    )
                })
            };
            let from = count(start)?.unwrap_or(0);
            let to = count(start + 1)?;
            let rate_type = cell(start + 2).to_ascii_lowercase();
            let band = TierBand {
                from,
                to,
                list_rate: rate_type.contains("list"),
                rate: meta_csv::amount(cell(start + 3), source, row)?,
            };
            if !band.list_rate && band.rate.is_none() {
                return Err(DataError::new(
                    source,
                    format!("row {row}: a tier band without a rate"),
                ));
            }
            bands.entry((market, group)).or_default().push(band);
        }
    }
    if layout.is_none() {
        return Err(DataError::new(
            source,
            "no header row `Market, Currency, From, To, Rate type, Rate, …` (expected Meta's Tier Pricing.csv)",
        ));
    }
    for list in bands.values_mut() {
        list.sort_by_key(|b| b.from);
    }
    let currency = currency.ok_or_else(|| DataError::new(source, "no rows with a currency"))?;
    let effective_from = effective
        .or_else(|| meta_csv::effective_date(&title_lines))
        .ok_or_else(|| {
            DataError::new(
                source,
                "no effective date in the title lines; pass it as --tiers YYYY-MM-DD=FILE",
            )
        })?;
    Ok(TierTable {
        currency,
        effective_from,
        source: source.to_string(),
        bands,
    })
}

/// Where the columns of each group start in a tier table.
struct Layout {
    currency: Option<usize>,
    /// (column of `From`, group).
    groups: Vec<(usize, TierGroup)>,
}

impl Layout {
    fn find(
        keys: &[String],
        sections: &[(usize, TierGroup)],
        source: &str,
    ) -> Result<Layout, DataError> {
        let starts: Vec<usize> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.as_str() == "from")
            .map(|(i, _)| i)
            .collect();
        const ORDER: [TierGroup; 3] = [
            TierGroup::Utility,
            TierGroup::Authentication,
            TierGroup::AuthenticationInternational,
        ];
        let mut groups = Vec::new();
        for (n, &start) in starts.iter().enumerate() {
            // The group is the section label nearest at or before the `From` column; without
            // a section row, Meta's order.
            let labelled = sections
                .iter()
                .filter(|(column, _)| *column <= start)
                .max_by_key(|(column, _)| *column)
                .map(|(_, group)| *group);
            let group = labelled.or_else(|| ORDER.get(n).copied()).ok_or_else(|| {
                DataError::new(
                    source,
                    "more than three `From` column groups and no section row",
                )
            })?;
            groups.push((start, group));
        }
        Ok(Layout {
            currency: keys.iter().position(|k| k == "currency"),
            groups,
        })
    }
}

/// Section labels in a row: `Utility`, `Authentication`, `Auth-Intl` (or spelled out).
fn section_labels(keys: &[String]) -> Vec<(usize, TierGroup)> {
    keys.iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let group = match k.as_str() {
                "utility" => TierGroup::Utility,
                "authentication" => TierGroup::Authentication,
                "authintl" | "authenticationinternational" => {
                    TierGroup::AuthenticationInternational
                }
                _ => return None,
            };
            Some((i, group))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    /// Laid out like Meta's file; the numbers are made up (Meta's thresholds are not public).
    const MADE_UP: &str = include_str!("../tests/data/made_up_tier_pricing.csv");

    #[test]
    fn reads_metas_side_by_side_groups_with_forward_filled_markets() {
        let mut markets = Markets::default();
        let table = parse_meta_tiers(MADE_UP, "Tier Pricing.csv", None, &mut markets)
            .expect("layout loads");
        assert_eq!(table.currency, Currency::USD);
        assert_eq!(table.effective_from, date(2025, 7, 1));
        let india = markets.find("India").expect("India");
        let band = |group, n| {
            table
                .band(india, group, n)
                .map(|b| (b.range().to_string(), b.rate))
        };
        assert_eq!(
            band(TierGroup::Utility, 10),
            Some(("0:10".into(), Some(Micros(1_400))))
        );
        assert_eq!(
            band(TierGroup::Utility, 31),
            Some(("31:MAX".into(), Some(Micros(1_100))))
        );
        assert_eq!(
            band(TierGroup::Authentication, 21),
            Some(("21:30".into(), Some(Micros(1_200))))
        );
        assert_eq!(
            band(TierGroup::Authentication, 31),
            Some(("31:MAX".into(), Some(Micros(1_100))))
        );
        assert_eq!(
            band(TierGroup::AuthenticationInternational, 15),
            Some(("11:20".into(), Some(Micros(26_000))))
        );
        assert!(table
            .band(india, TierGroup::Authentication, 1)
            .is_some_and(|b| b.list_rate));
    }

    #[test]
    fn a_tier_file_without_its_header_row_is_refused() {
        let mut markets = Markets::default();
        assert!(parse_meta_tiers(
            "India,USD,0,10\n",
            "t.csv",
            Some(date(2026, 1, 1)),
            &mut markets
        )
        .is_err());
    }
}
