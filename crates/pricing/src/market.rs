//! Markets (the rows of a rate card) and the recipient-number → market lookup.
//!
//! Meta prices by the recipient's country calling code, longest prefix first, with NANP
//! area codes (`+1 809` is the Dominican Republic, not North America) and markets that move
//! on a date (Qatar left "Rest of Middle East" on 2026-07-01). Unlisted codes are "Other".

use std::collections::HashMap;

use jiff::civil::Date;

use crate::error::DataError;
use crate::phone::Phone;

/// A market, as an index into [`Markets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MarketId(pub u16);

/// The names of all markets known to the loaded data, interned so events carry a small id.
///
/// Names are matched loosely ("Rest of Central & Eastern Europe" on the rate card is
/// "Rest of Central and Eastern Europe" in Meta's country table), but printed as first seen.
#[derive(Debug, Clone, Default)]
pub struct Markets {
    names: Vec<String>,
    by_key: HashMap<String, MarketId>,
}

/// The name of the market every unlisted country maps to.
pub const OTHER: &str = "Other";

impl Markets {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> MarketId {
        let key = match_key(name);
        if let Some(&id) = self.by_key.get(&key) {
            return id;
        }
        let id = MarketId(self.names.len() as u16);
        self.names.push(name.trim().to_string());
        self.by_key.insert(key, id);
        id
    }

    /// The id of `name` if some loaded data mentions it.
    pub fn find(&self, name: &str) -> Option<MarketId> {
        self.by_key.get(&match_key(name)).copied()
    }

    /// The market's display name.
    pub fn name(&self, id: MarketId) -> &str {
        self.names
            .get(usize::from(id.0))
            .map(String::as_str)
            .unwrap_or(OTHER)
    }

    /// How many markets are known.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True before any market is known.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Lower-case, `&` read as `and`, single spaces: the form two spellings of a name share.
fn match_key(name: &str) -> String {
    name.replace('&', " and ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The market of a recipient at a date, and its country when the prefix names only one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The rate-card market.
    pub market: MarketId,
    /// ISO 3166 alpha-2 country (for authentication-international); `None` for shared codes
    /// (+1 outside the listed area codes, +7) and unlisted ones.
    pub country: Option<[u8; 2]>,
}

/// One calling-code prefix: its country and its market over time.
#[derive(Debug, Clone)]
struct PrefixRule {
    country: Option<[u8; 2]>,
    /// The market from each date on, oldest first; the first entry has no start.
    stages: Vec<(Option<Date>, MarketId)>,
}

/// Offsets of the 1-, 2-, 3- and 4-digit prefix slots in [`CountryCodes::slots`].
const SLOT_OFFSETS: [usize; 5] = [0, 0, 10, 110, 1110];
const SLOT_COUNT: usize = 11_110;
const NO_RULE: u16 = u16::MAX;

/// The calling-code table (`meta_country_codes.csv`) compiled into a direct-indexed array:
/// every prefix of 1–4 digits (4 for NANP `1` + area code) has a slot, so a lookup is at most
/// four array reads, no hashing.
#[derive(Debug, Clone)]
pub struct CountryCodes {
    slots: Vec<u16>,
    rules: Vec<PrefixRule>,
    other: MarketId,
}

impl CountryCodes {
    /// Reads Meta's table in the layout of `meta_country_codes.csv`
    /// (`calling_code,nanp_area_codes,country,iso2,market,market_valid_from,notes`).
    ///
    /// A market move is read from `market_valid_from` and a note `before YYYY-MM-DD: <market>`
    /// (no note: the country was in "Other" before); an announced move from a note
    /// `moves to standalone market '<name>' on YYYY-MM-DD`.
    pub fn from_csv(
        text: &str,
        source: &str,
        markets: &mut Markets,
    ) -> Result<CountryCodes, DataError> {
        let other = markets.intern(OTHER);
        let mut table = CountryCodes {
            slots: vec![NO_RULE; SLOT_COUNT],
            rules: Vec::new(),
            other,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        for (index, record) in reader.records().enumerate() {
            let row = index + 2;
            let record = record.map_err(|e| DataError::new(source, format!("row {row}: {e}")))?;
            let field = |i: usize| record.get(i).unwrap_or("").trim();
            let code = field(0);
            if code == "*" {
                continue;
            }
            let prefix = format!("{code}{}", field(1));
            if prefix.is_empty() || prefix.len() > 4 || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(DataError::new(
                    source,
                    format!("row {row}: calling code `{prefix}` is not 1–4 digits"),
                ));
            }
            let market = markets.intern(field(4));
            let country = match field(3).as_bytes() {
                [a, b] => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
                _ => None,
            };
            let date = |text: &str| -> Result<Date, DataError> {
                text.parse::<Date>()
                    .map_err(|e| DataError::new(source, format!("row {row}: date `{text}`: {e}")))
            };
            let notes = field(6);
            let mut stages = vec![(None, market)];
            if !field(5).is_empty() {
                let from = date(field(5))?;
                let before = notes
                    .strip_prefix("before ")
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, name)| markets.intern(name))
                    .unwrap_or(other);
                stages = vec![(None, before), (Some(from), market)];
            }
            if let Some((name, on)) = announced_move(notes) {
                stages.push((Some(date(on)?), markets.intern(name)));
            }
            table.add(&prefix, country, stages);
        }
        Ok(table)
    }

    /// Adds one prefix; a second country on the same prefix (Canada and the US on `1`)
    /// makes the country ambiguous but keeps the first row's market.
    fn add(
        &mut self,
        prefix: &str,
        country: Option<[u8; 2]>,
        stages: Vec<(Option<Date>, MarketId)>,
    ) {
        let value: usize = prefix.parse().unwrap_or(0);
        let slot = SLOT_OFFSETS[prefix.len()] + value;
        match self.slots[slot] {
            NO_RULE => {
                self.slots[slot] = self.rules.len() as u16;
                self.rules.push(PrefixRule { country, stages });
            }
            existing => {
                let rule = &mut self.rules[usize::from(existing)];
                if rule.country != country {
                    rule.country = None;
                }
            }
        }
    }

    /// The market of `phone` on `date` (in the sending WABA's time zone): longest listed
    /// prefix, else "Other".
    pub fn destination(&self, phone: Phone, date: Date) -> Destination {
        let longest = phone.len().min(4);
        for count in (1..=longest).rev() {
            let Some(prefix) = phone.prefix(count) else {
                continue;
            };
            let slot = SLOT_OFFSETS[count] + prefix as usize;
            let rule = self.slots[slot];
            if rule == NO_RULE {
                continue;
            }
            let rule = &self.rules[usize::from(rule)];
            let mut market = rule.stages[0].1;
            for &(from, stage) in &rule.stages[1..] {
                if from.is_some_and(|from| date >= from) {
                    market = stage;
                }
            }
            return Destination {
                market,
                country: rule.country,
            };
        }
        Destination {
            market: self.other,
            country: None,
        }
    }
}

/// Reads `moves to standalone market 'Morocco' on 2026-10-01` into (`Morocco`, `2026-10-01`).
fn announced_move(notes: &str) -> Option<(&str, &str)> {
    let rest = notes.split("moves to standalone market '").nth(1)?;
    let (name, rest) = rest.split_once('\'')?;
    let on = rest.trim_start().strip_prefix("on ")?;
    Some((name, on.get(..10)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;

    fn at(table: &CountryCodes, markets: &Markets, phone: &str, date: &str) -> String {
        let phone = Phone::parse(phone).expect("valid phone");
        let date: Date = date.parse().expect("valid date");
        markets
            .name(table.destination(phone, date).market)
            .to_string()
    }

    fn table() -> (CountryCodes, Markets) {
        let mut markets = Markets::default();
        let table = CountryCodes::from_csv(builtin::COUNTRY_CODES_CSV, "builtin", &mut markets)
            .expect("built-in table loads");
        (table, markets)
    }

    #[test]
    fn nanp_area_codes_win_over_north_america() {
        let (t, m) = table();
        assert_eq!(
            at(&t, &m, "+18095551234", "2026-01-15"),
            "Rest of Latin America"
        );
        assert_eq!(
            at(&t, &m, "+16585551234", "2026-01-15"),
            "Rest of Latin America"
        );
        assert_eq!(
            at(&t, &m, "+19395551234", "2026-01-15"),
            "Rest of Latin America"
        );
        assert_eq!(at(&t, &m, "+14155551234", "2026-01-15"), "North America");
        assert_eq!(at(&t, &m, "+16475551234", "2026-01-15"), "North America");
    }

    #[test]
    fn plus_seven_is_russia_until_the_split_is_known() {
        let (t, m) = table();
        assert_eq!(at(&t, &m, "+79161234567", "2026-01-15"), "Russia");
        assert_eq!(at(&t, &m, "+77011234567", "2026-11-15"), "Russia");
    }

    #[test]
    fn unlisted_codes_are_other() {
        let (t, m) = table();
        // +850 North Korea and +299 Greenland are not in Meta's table.
        assert_eq!(at(&t, &m, "+85012345678", "2026-01-15"), "Other");
        assert_eq!(at(&t, &m, "+299123456", "2026-01-15"), "Other");
    }

    #[test]
    fn qatar_moves_out_of_rest_of_middle_east_on_2026_07_01() {
        let (t, m) = table();
        assert_eq!(
            at(&t, &m, "+97455123456", "2026-06-30"),
            "Rest of Middle East"
        );
        assert_eq!(at(&t, &m, "+97455123456", "2026-07-01"), "Qatar");
    }

    #[test]
    fn zimbabwe_moves_from_other_and_morocco_becomes_standalone() {
        let (t, m) = table();
        assert_eq!(at(&t, &m, "+263771234567", "2025-09-30"), "Other");
        assert_eq!(at(&t, &m, "+263771234567", "2025-10-01"), "Rest of Africa");
        assert_eq!(at(&t, &m, "+212612345678", "2026-09-30"), "Rest of Africa");
        assert_eq!(at(&t, &m, "+212612345678", "2026-10-01"), "Morocco");
    }

    #[test]
    fn longest_prefix_wins_among_countries() {
        let (t, m) = table();
        // +971 UAE, not +97 (nothing) or +9 (nothing); +234 Nigeria, not +23.
        assert_eq!(
            at(&t, &m, "+971501234567", "2026-01-15"),
            "United Arab Emirates"
        );
        assert_eq!(at(&t, &m, "+2348012345678", "2026-01-15"), "Nigeria");
        assert_eq!(at(&t, &m, "+919876543210", "2026-01-15"), "India");
    }

    #[test]
    fn countries_are_known_only_when_unambiguous() {
        let (t, _) = table();
        let date: Date = "2026-01-15".parse().expect("date");
        let india = Phone::parse("+919876543210").expect("phone");
        assert_eq!(t.destination(india, date).country, Some(*b"IN"));
        let us = Phone::parse("+14155551234").expect("phone");
        assert_eq!(t.destination(us, date).country, None);
    }

    #[test]
    fn market_names_match_across_spellings() {
        let mut m = Markets::default();
        let a = m.intern("Rest of Central & Eastern Europe");
        let b = m.intern("Rest of Central and Eastern Europe");
        assert_eq!(a, b);
        assert_eq!(m.name(a), "Rest of Central & Eastern Europe");
    }
}
