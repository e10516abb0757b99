//! Everything the rules read: markets, calling codes, rate cards and tier tables.

use jiff::civil::Date;

use crate::builtin;
use crate::error::DataError;
use crate::market::{CountryCodes, Markets};
use crate::rate_card::{self, RateCards};
use crate::tiers::{self, TierTables};

/// The pricing data in force for a run: the built-in tables plus the operator's files.
#[derive(Clone, Debug)]
pub struct PricingData {
    /// Every market name seen in any table.
    pub markets: Markets,
    /// Calling code → market.
    pub countries: CountryCodes,
    /// Rate cards by currency and date.
    pub cards: RateCards,
    /// Volume tier tables by currency and date.
    pub tiers: TierTables,
}

impl PricingData {
    /// The built-in country table and rate cards (no tier tables: none are public).
    pub fn builtin() -> Result<PricingData, DataError> {
        let mut data = PricingData::without_cards()?;
        data.add_rate_cards(builtin::RATE_CARDS_CSV, "built-in meta_rate_card.csv", None)?;
        Ok(data)
    }

    /// The built-in country table only: for tests and forecasts with cards of one's own.
    pub fn without_cards() -> Result<PricingData, DataError> {
        let mut markets = Markets::default();
        let countries = CountryCodes::from_csv(
            builtin::COUNTRY_CODES_CSV,
            "built-in meta_country_codes.csv",
            &mut markets,
        )?;
        Ok(PricingData {
            markets,
            countries,
            cards: RateCards::default(),
            tiers: TierTables::default(),
        })
    }

    /// Adds the cards in a rate-card file (wagate's CSV or Meta's `Pricing.csv`); returns how
    /// many cards it held.
    pub fn add_rate_cards(
        &mut self,
        text: &str,
        source: &str,
        effective: Option<Date>,
    ) -> Result<usize, DataError> {
        let cards = rate_card::parse(text, source, effective, &mut self.markets)?;
        let count = cards.len();
        for card in cards {
            self.cards.add(card);
        }
        Ok(count)
    }

    /// Adds a tier table in Meta's `Tier Pricing.csv` layout.
    pub fn add_tiers(
        &mut self,
        text: &str,
        source: &str,
        effective: Option<Date>,
    ) -> Result<(), DataError> {
        let table = tiers::parse_meta_tiers(text, source, effective, &mut self.markets)?;
        self.tiers.add(table);
        Ok(())
    }
}
