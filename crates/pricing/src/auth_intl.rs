//! Authentication-international eligibility, as the operator declares it (`--auth-intl FILE`).
//!
//! Meta charges the international rate for a delivered authentication template when the
//! business is eligible, its primary business location is another country than the
//! recipient's, and the message is delivered on or after the business's start time for that
//! country. Meta announces start times per business with exceptions per country
//! (`AUTH_INTL_PRICE_ELIGIBILITY_UPDATE`); the file mirrors that:
//! `waba,primary_country,country,start_time` where `country` is `*` for the general start
//! time or an ISO code for an exception.

use std::collections::HashMap;

use crate::error::DataError;
use crate::instant::Instant;
use crate::operator_csv::operator_rows;

/// One WABA's eligibility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eligibility {
    /// ISO code of the business's primary business location.
    pub primary_country: [u8; 2],
    /// Start time for every country without an exception.
    pub start: Option<Instant>,
    /// Start times for named recipient countries.
    pub exceptions: Vec<([u8; 2], Instant)>,
}

impl Eligibility {
    /// True when a message to `recipient` delivered `at` is charged the international rate
    /// (if the market has one).
    pub fn applies(&self, recipient: Option<[u8; 2]>, at: Instant) -> bool {
        let Some(country) = recipient else {
            return false;
        };
        if country == self.primary_country {
            return false;
        }
        let start = self
            .exceptions
            .iter()
            .find(|(c, _)| *c == country)
            .map(|(_, start)| *start)
            .or(self.start);
        start.is_some_and(|start| at >= start)
    }
}

/// Eligibility of every declared WABA.
#[derive(Clone, Debug, Default)]
pub struct AuthIntl {
    by_waba: HashMap<String, Eligibility>,
}

impl AuthIntl {
    /// Reads `waba,primary_country,country,start_time` (header row optional).
    pub fn from_csv(text: &str, source: &str) -> Result<AuthIntl, DataError> {
        let mut declared = AuthIntl::default();
        for (row, record) in operator_rows(text, source)? {
            let cell = |i: usize| record.get(i).unwrap_or("");
            let country = |text: &str| -> Result<[u8; 2], DataError> {
                match text.as_bytes() {
                    [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                        Ok([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
                    }
                    _ => Err(DataError::new(
                        source,
                        format!("row {row}: `{text}` is not an ISO 3166 two-letter country"),
                    )),
                }
            };
            let primary = country(cell(1))?;
            let start = Instant::parse(cell(3)).ok_or_else(|| {
                DataError::new(
                    source,
                    format!("row {row}: start_time `{}` is not RFC 3339", cell(3)),
                )
            })?;
            let entry = declared
                .by_waba
                .entry(cell(0).to_string())
                .or_insert_with(|| Eligibility {
                    primary_country: primary,
                    start: None,
                    exceptions: Vec::new(),
                });
            if entry.primary_country != primary {
                return Err(DataError::new(
                    source,
                    format!("row {row}: WABA `{}` has two primary countries", cell(0)),
                ));
            }
            if cell(2) == "*" || cell(2).is_empty() {
                entry.start = Some(start);
            } else {
                entry.exceptions.push((country(cell(2))?, start));
            }
        }
        Ok(declared)
    }

    /// Declares one WABA.
    pub fn insert(&mut self, waba: impl Into<String>, eligibility: Eligibility) {
        self.by_waba.insert(waba.into(), eligibility);
    }

    /// The WABA's eligibility, if declared.
    pub fn get(&self, waba: &str) -> Option<&Eligibility> {
        self.by_waba.get(waba)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_abroad_from_the_start_time_with_country_exceptions() {
        let text = "waba,primary_country,country,start_time\n\
                    w,GB,*,2026-03-15T00:00:00Z\n\
                    w,GB,IN,2026-04-01T00:00:00Z\n";
        let declared = AuthIntl::from_csv(text, "auth.csv").expect("loads");
        let w = declared.get("w").expect("declared");
        let at = |s: &str| Instant::parse(s).expect("time");
        assert!(!w.applies(Some(*b"EG"), at("2026-03-14T23:59:59Z")));
        assert!(w.applies(Some(*b"EG"), at("2026-03-15T00:00:00Z")));
        assert!(!w.applies(Some(*b"IN"), at("2026-03-20T00:00:00Z")));
        assert!(w.applies(Some(*b"IN"), at("2026-04-01T00:00:00Z")));
        assert!(!w.applies(Some(*b"GB"), at("2026-05-01T00:00:00Z")));
        assert!(!w.applies(None, at("2026-05-01T00:00:00Z")));
    }

    #[test]
    fn bad_rows_are_data_errors() {
        assert!(AuthIntl::from_csv("w,GBR,*,2026-01-01T00:00:00Z\n", "a").is_err());
        assert!(AuthIntl::from_csv("w,GB,*,tomorrow\n", "a").is_err());
    }
}
