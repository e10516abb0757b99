//! WhatsApp Business Accounts: the time zone, currency and portfolio each one bills in.
//!
//! Read from `--wabas FILE`, a CSV `waba,time_zone,currency,portfolio`. A WABA not listed (or
//! a blank cell) gets the defaults: UTC, USD, and a portfolio of its own.

use std::collections::HashMap;

use jiff::tz::TimeZone;

use crate::currency::Currency;
use crate::error::DataError;
use crate::operator_csv::operator_rows;

/// How one WABA is billed.
#[derive(Clone, Debug)]
pub struct WabaSettings {
    /// Months, rule changes and card dates start at 12am in this zone.
    pub time_zone: TimeZone,
    /// The currency of the rate card it is billed from.
    pub currency: Currency,
    /// The business portfolio whose volume tiers it accrues to; `None`: its own.
    pub portfolio: Option<String>,
}

impl Default for WabaSettings {
    fn default() -> Self {
        WabaSettings {
            time_zone: TimeZone::UTC,
            currency: Currency::USD,
            portfolio: None,
        }
    }
}

/// Every WABA described by the operator.
#[derive(Clone, Debug, Default)]
pub struct WabaDirectory {
    settings: HashMap<String, WabaSettings>,
}

impl WabaDirectory {
    /// Reads `waba,time_zone,currency,portfolio` (header row optional; IANA zone names).
    pub fn from_csv(text: &str, source: &str) -> Result<WabaDirectory, DataError> {
        let mut directory = WabaDirectory::default();
        for (row, record) in operator_rows(text, source)? {
            let cell = |i: usize| record.get(i).unwrap_or("");
            let mut settings = WabaSettings::default();
            if !cell(1).is_empty() {
                settings.time_zone = TimeZone::get(cell(1)).map_err(|e| {
                    DataError::new(source, format!("row {row}: time zone `{}`: {e}", cell(1)))
                })?;
            }
            if !cell(2).is_empty() {
                settings.currency = Currency::parse(cell(2)).ok_or_else(|| {
                    DataError::new(source, format!("row {row}: currency `{}`", cell(2)))
                })?;
            }
            if !cell(3).is_empty() {
                settings.portfolio = Some(cell(3).to_string());
            }
            directory.settings.insert(cell(0).to_string(), settings);
        }
        Ok(directory)
    }

    /// Describes (or redescribes) one WABA.
    pub fn insert(&mut self, waba: impl Into<String>, settings: WabaSettings) {
        self.settings.insert(waba.into(), settings);
    }

    /// The WABA's settings, or the defaults.
    pub fn settings(&self, waba: &str) -> WabaSettings {
        self.settings.get(waba).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_and_fills_defaults() {
        let text = "waba,time_zone,currency,portfolio\n\
                    a,Asia/Kolkata,INR,acme\n\
                    b,,,\n";
        let directory = WabaDirectory::from_csv(text, "wabas.csv").expect("loads");
        let a = directory.settings("a");
        assert_eq!(a.time_zone.iana_name(), Some("Asia/Kolkata"));
        assert_eq!(a.currency.to_string(), "INR");
        assert_eq!(a.portfolio.as_deref(), Some("acme"));
        let b = directory.settings("b");
        assert_eq!(b.currency, Currency::USD);
        assert_eq!(b.portfolio, None);
        assert_eq!(directory.settings("unlisted").time_zone, TimeZone::UTC);
    }

    #[test]
    fn unknown_zones_and_currencies_are_data_errors() {
        assert!(WabaDirectory::from_csv("a,Mars/Olympus,USD,\n", "w").is_err());
        assert!(WabaDirectory::from_csv("a,UTC,dollars,\n", "w").is_err());
    }
}
