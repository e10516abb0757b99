//! Rate cards as data: one card per currency and effective date, one row per market.
//!
//! Two layouts are read: wagate's own long CSV (`meta_rate_card.csv`, several cards in one
//! file) and Meta's published `Pricing.csv` (one currency, title lines, then a header row
//! `Market, Currency, Marketing, Utility, Authentication, Authentication-International,
//! Service`). A blank or `n/a` cell means "no rate": the engine never guesses one.

use jiff::civil::Date;

use crate::category::{PricingModel, RateCategory};
use crate::currency::Currency;
use crate::error::DataError;
use crate::market::{MarketId, Markets};
use crate::meta_csv;
use crate::money::Micros;

/// One market's row on a card.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketRates {
    /// Per marketing template (PMP) or marketing conversation (CBP).
    pub marketing: Option<Micros>,
    /// Per utility template or conversation.
    pub utility: Option<Micros>,
    /// Per authentication template or conversation.
    pub authentication: Option<Micros>,
    /// Per authentication template for an eligible business abroad.
    pub authentication_international: Option<Micros>,
    /// Per service conversation (CBP cards only; PMP cards leave it blank).
    pub service: Option<Micros>,
}

impl MarketRates {
    /// The rate of `category`; `None` when the card has none (referral conversions are free).
    pub fn get(&self, category: RateCategory) -> Option<Micros> {
        match category {
            RateCategory::Marketing => self.marketing,
            RateCategory::Utility => self.utility,
            RateCategory::Authentication => self.authentication,
            RateCategory::AuthenticationInternational => self.authentication_international,
            RateCategory::Service => self.service,
            RateCategory::ReferralConversion => Some(Micros::ZERO),
        }
    }
}

/// A rate card: the rates of one currency from one date on, under one pricing model.
#[derive(Clone, Debug)]
pub struct RateCard {
    /// The billing currency the card is in.
    pub currency: Currency,
    /// From 12am of this date in each WABA's time zone.
    pub effective_from: Date,
    /// CBP cards (effective before 2025-07-01) price conversations, PMP cards messages.
    pub model: PricingModel,
    /// Where the card was read from (file name or `built-in`).
    pub source: String,
    rates: Vec<Option<MarketRates>>,
}

impl RateCard {
    /// An empty card; rows are added with [`RateCard::set`].
    pub fn new(currency: Currency, effective_from: Date, source: impl Into<String>) -> RateCard {
        RateCard {
            currency,
            effective_from,
            model: PricingModel::on(effective_from),
            source: source.into(),
            rates: Vec::new(),
        }
    }

    /// Sets a market's row.
    pub fn set(&mut self, market: MarketId, rates: MarketRates) {
        let index = usize::from(market.0);
        if self.rates.len() <= index {
            self.rates.resize(index + 1, None);
        }
        self.rates[index] = Some(rates);
    }

    /// The market's row; `None` when the card does not list the market.
    pub fn market(&self, market: MarketId) -> Option<&MarketRates> {
        self.rates
            .get(usize::from(market.0))
            .and_then(Option::as_ref)
    }

    /// How many markets the card lists.
    pub fn market_count(&self) -> usize {
        self.rates.iter().flatten().count()
    }
}

/// All loaded cards; the one in force is picked per message.
#[derive(Clone, Debug, Default)]
pub struct RateCards {
    cards: Vec<RateCard>,
}

impl RateCards {
    /// Adds a card; it replaces a loaded card of the same currency, date and model (so an
    /// operator's file overrides the built-in copy of the same card).
    pub fn add(&mut self, card: RateCard) {
        self.cards.retain(|c| {
            !(c.currency == card.currency
                && c.effective_from == card.effective_from
                && c.model == card.model)
        });
        self.cards.push(card);
    }

    /// The card in force on `date` for `currency` and `model`: the newest one effective on or
    /// before the date. A PMP message before the first PMP card of its currency gets none
    /// (a per-conversation rate is not a per-message rate).
    pub fn in_force(&self, currency: Currency, date: Date, model: PricingModel) -> Option<usize> {
        self.cards
            .iter()
            .enumerate()
            .filter(|(_, c)| c.currency == currency && c.model == model && c.effective_from <= date)
            .max_by_key(|(_, c)| c.effective_from)
            .map(|(i, _)| i)
    }

    /// The card at an index returned by [`RateCards::in_force`].
    pub fn get(&self, index: usize) -> Option<&RateCard> {
        self.cards.get(index)
    }

    /// Every loaded card.
    pub fn iter(&self) -> impl Iterator<Item = &RateCard> {
        self.cards.iter()
    }
}

/// Reads a rate-card file in either layout: wagate's (header starts `market,currency`) or
/// Meta's `Pricing.csv`. `effective` overrides (or, for Meta's file, supplies) the date.
pub fn parse(
    text: &str,
    source: &str,
    effective: Option<Date>,
    markets: &mut Markets,
) -> Result<Vec<RateCard>, DataError> {
    let first = text.lines().next().unwrap_or("");
    if meta_csv::header_key(first).starts_with("marketcurrencymarketing")
        && first.contains("effective_from")
    {
        let mut cards = parse_wagate(text, source, markets)?;
        if let Some(date) = effective {
            for card in &mut cards {
                card.effective_from = date;
                card.model = PricingModel::on(date);
            }
        }
        Ok(cards)
    } else {
        parse_meta_pricing(text, source, effective, markets).map(|card| vec![card])
    }
}

/// Reads wagate's layout: `market,currency,marketing,utility,authentication,
/// authentication_international,service,effective_from`, any number of cards.
pub fn parse_wagate(
    text: &str,
    source: &str,
    markets: &mut Markets,
) -> Result<Vec<RateCard>, DataError> {
    let mut cards: Vec<RateCard> = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    for (index, record) in reader.records().enumerate() {
        let row = index + 2;
        let record = record.map_err(|e| DataError::new(source, format!("row {row}: {e}")))?;
        let cell = |i: usize| record.get(i).unwrap_or("");
        let currency = Currency::parse(cell(1)).ok_or_else(|| {
            DataError::new(source, format!("row {row}: unknown currency `{}`", cell(1)))
        })?;
        let effective: Date = cell(7).trim().parse().map_err(|e| {
            DataError::new(
                source,
                format!("row {row}: effective_from `{}`: {e}", cell(7)),
            )
        })?;
        let rates = MarketRates {
            marketing: meta_csv::amount(cell(2), source, row)?,
            utility: meta_csv::amount(cell(3), source, row)?,
            authentication: meta_csv::amount(cell(4), source, row)?,
            authentication_international: meta_csv::amount(cell(5), source, row)?,
            service: meta_csv::amount(cell(6), source, row)?,
        };
        let market = markets.intern(cell(0));
        let position = cards
            .iter()
            .position(|c| c.currency == currency && c.effective_from == effective);
        let card = match position {
            Some(i) => &mut cards[i],
            None => {
                cards.push(RateCard::new(currency, effective, source));
                let last = cards.len() - 1;
                &mut cards[last]
            }
        };
        card.set(market, rates);
    }
    Ok(cards)
}

/// Reads Meta's `Pricing.csv`: title lines, a header row whose first cell is `Market`, one
/// row per market. The effective date comes from `effective`, else from the title lines.
pub fn parse_meta_pricing(
    text: &str,
    source: &str,
    effective: Option<Date>,
    markets: &mut Markets,
) -> Result<RateCard, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut title_lines = Vec::new();
    let mut columns: Option<Columns> = None;
    let mut currency: Option<Currency> = None;
    let mut rows: Vec<(MarketId, MarketRates)> = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = record.map_err(|e| DataError::new(source, format!("row {row}: {e}")))?;
        let Some(cols) = &columns else {
            if meta_csv::header_key(record.get(0).unwrap_or("")).starts_with("market") {
                columns = Some(Columns::find(&record, source)?);
            } else {
                title_lines.push(record.iter().collect::<Vec<_>>().join(" "));
            }
            continue;
        };
        let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
        let name = cell(Some(0)).trim();
        if name.is_empty() {
            continue;
        }
        if let Some(i) = cols.currency {
            let this = Currency::parse(cell(Some(i))).ok_or_else(|| {
                DataError::new(
                    source,
                    format!("row {row}: unknown currency `{}`", cell(Some(i))),
                )
            })?;
            if currency.is_some_and(|c| c != this) {
                return Err(DataError::new(
                    source,
                    format!("row {row}: a Pricing.csv holds one currency, found {this} after {currency:?}"),
                ));
            }
            currency = Some(this);
        }
        let rates = MarketRates {
            marketing: meta_csv::amount(cell(cols.marketing), source, row)?,
            utility: meta_csv::amount(cell(cols.utility), source, row)?,
            authentication: meta_csv::amount(cell(cols.authentication), source, row)?,
            authentication_international: meta_csv::amount(cell(cols.auth_intl), source, row)?,
            service: meta_csv::amount(cell(cols.service), source, row)?,
        };
        rows.push((markets.intern(name), rates));
    }
    if columns.is_none() {
        return Err(DataError::new(
            source,
            "no header row starting with `Market` (expected Meta's Pricing.csv or wagate's rate-card CSV)",
        ));
    }
    let currency =
        currency.ok_or_else(|| DataError::new(source, "no market rows with a currency"))?;
    let effective = effective
        .or_else(|| meta_csv::effective_date(&title_lines))
        .ok_or_else(|| {
            DataError::new(
                source,
                "no effective date in the title lines; pass it as --rate-card YYYY-MM-DD=FILE",
            )
        })?;
    let mut card = RateCard::new(currency, effective, source);
    for (market, rates) in rows {
        card.set(market, rates);
    }
    Ok(card)
}

/// Column positions in a `Pricing.csv` header.
struct Columns {
    currency: Option<usize>,
    marketing: Option<usize>,
    utility: Option<usize>,
    authentication: Option<usize>,
    auth_intl: Option<usize>,
    service: Option<usize>,
}

impl Columns {
    fn find(header: &csv::StringRecord, source: &str) -> Result<Columns, DataError> {
        let keys: Vec<String> = header.iter().map(meta_csv::header_key).collect();
        let position = |wanted: &str| keys.iter().position(|k| k == wanted);
        let columns = Columns {
            currency: position("currency"),
            marketing: position("marketing"),
            utility: position("utility"),
            authentication: position("authentication"),
            auth_intl: position("authenticationinternational").or_else(|| position("authintl")),
            service: position("service"),
        };
        if columns.marketing.is_none() && columns.utility.is_none() {
            return Err(DataError::new(
                source,
                "header row has neither a Marketing nor a Utility column",
            ));
        }
        Ok(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;
    use jiff::civil::date;

    #[test]
    fn built_in_cards_load_with_their_dates_and_models() {
        let mut markets = Markets::default();
        let cards = parse_wagate(builtin::RATE_CARDS_CSV, "built-in", &mut markets)
            .expect("built-in cards load");
        let summary: Vec<(String, Date, PricingModel, usize)> = cards
            .iter()
            .map(|c| {
                (
                    c.currency.to_string(),
                    c.effective_from,
                    c.model,
                    c.market_count(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("USD".into(), date(2026, 1, 1), PricingModel::Pmp, 32),
                ("INR".into(), date(2025, 10, 1), PricingModel::Pmp, 32),
                ("EUR".into(), date(2026, 7, 1), PricingModel::Pmp, 16),
                ("USD".into(), date(2024, 11, 1), PricingModel::Cbp, 32),
                ("USD".into(), date(2023, 6, 1), PricingModel::Cbp, 31),
                ("USD".into(), date(2026, 4, 1), PricingModel::Pmp, 32),
                ("USD".into(), date(2026, 7, 1), PricingModel::Pmp, 38),
                ("USD".into(), date(2026, 10, 1), PricingModel::Pmp, 47),
                ("BRL".into(), date(2026, 7, 1), PricingModel::Pmp, 1),
            ]
        );
        let brazil = markets.find("Brazil").expect("Brazil");
        assert_eq!(
            cards[0].market(brazil).and_then(|r| r.utility),
            Some(Micros(6_800))
        );
    }

    #[test]
    fn the_card_in_force_is_the_newest_of_its_currency_and_model() {
        let mut markets = Markets::default();
        let mut cards = RateCards::default();
        for card in parse_wagate(builtin::RATE_CARDS_CSV, "built-in", &mut markets).expect("load") {
            cards.add(card);
        }
        let effective = |currency: &str, d: Date, model| {
            let currency = Currency::parse(currency).expect("currency");
            cards
                .in_force(currency, d, model)
                .and_then(|i| cards.get(i))
                .map(|c| c.effective_from)
        };
        assert_eq!(
            effective("USD", date(2026, 3, 1), PricingModel::Pmp),
            Some(date(2026, 1, 1))
        );
        assert_eq!(effective("USD", date(2025, 8, 1), PricingModel::Pmp), None);
        assert_eq!(
            effective("USD", date(2025, 6, 1), PricingModel::Cbp),
            Some(date(2024, 11, 1))
        );
        assert_eq!(
            effective("USD", date(2024, 1, 1), PricingModel::Cbp),
            Some(date(2023, 6, 1))
        );
        assert_eq!(effective("USD", date(2023, 5, 31), PricingModel::Cbp), None);
        assert_eq!(effective("EUR", date(2026, 6, 30), PricingModel::Pmp), None);
    }

    const META_PRICING: &str = "\
WhatsApp Business Platform rates,,,,,,
\"Rates effective July 1, 2026, based on WhatsApp Business Account timezone\",,,,,,
,,,,,,
All rates in GBP,,,,,,
,,,,,,
Market,Currency,Marketing,Utility,Authentication,\"Authentication-
International\",Service
India,GBD,0.0088,0.0011,0.0011,0.021,n/a
Qatar,GBD,0.031,0.0101,0.0101,n/a,n/a
";

    #[test]
    fn reads_metas_pricing_csv_with_symbols_multiline_header_and_typo() {
        let mut markets = Markets::default();
        let card = parse_meta_pricing(META_PRICING, "Pricing.csv", None, &mut markets)
            .expect("Meta's layout loads");
        assert_eq!(card.currency.to_string(), "GBP");
        assert_eq!(card.effective_from, date(2026, 7, 1));
        assert_eq!(card.model, PricingModel::Pmp);
        let india = markets.find("India").expect("India");
        let rates = card.market(india).copied().expect("row");
        assert_eq!(rates.authentication_international, Some(Micros(21_000)));
        assert_eq!(rates.service, None);
        let qatar = markets.find("Qatar").expect("Qatar");
        assert_eq!(
            card.market(qatar)
                .and_then(|r| r.authentication_international),
            None
        );
    }

    #[test]
    fn a_meta_card_without_a_date_needs_one_given() {
        let mut markets = Markets::default();
        let undated = "Market,Currency,Marketing,Utility\nIndia,$US,0.0118,0.0014\n";
        assert!(parse(undated, "Pricing.csv", None, &mut markets).is_err());
        let cards = parse(undated, "Pricing.csv", Some(date(2026, 4, 1)), &mut markets)
            .expect("date given");
        assert_eq!(cards[0].effective_from, date(2026, 4, 1));
    }

    #[test]
    fn bad_cells_are_data_errors_not_guesses() {
        let mut markets = Markets::default();
        let bad = "Market,Currency,Marketing\nIndia,$US,cheap\n";
        let error = parse(bad, "Pricing.csv", Some(date(2026, 4, 1)), &mut markets)
            .expect_err("bad amount");
        assert!(error.to_string().contains("row 2"), "{error}");
        let precise = "Market,Currency,Marketing\nIndia,$US,0.00000001\n";
        assert!(parse(precise, "Pricing.csv", Some(date(2026, 4, 1)), &mut markets).is_err());
    }
}
