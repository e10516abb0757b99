//! Helpers shared by the readers of Meta's published CSV files (`Pricing.csv`,
//! `Tier Pricing.csv`): header lines, `n/a` cells, amounts with symbols and separators.

use jiff::civil::Date;

use crate::error::DataError;
use crate::money::Micros;

/// True for the cells Meta uses for "not applicable" or "none" (`n/a`, `--`, empty).
pub fn not_applicable(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty()
        || cell.eq_ignore_ascii_case("n/a")
        || cell.eq_ignore_ascii_case("na")
        || cell.chars().all(|c| c == '-' || c == '–')
}

/// Reads an amount cell: optional currency symbol before the number, thousands separators
/// (`1,940.13`); `None` when not applicable.
pub fn amount(cell: &str, source: &str, row: usize) -> Result<Option<Micros>, DataError> {
    if not_applicable(cell) {
        return Ok(None);
    }
    let number: String = cell
        .trim()
        .trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .chars()
        .filter(|&c| c != ',' && !c.is_whitespace())
        .collect();
    Micros::parse_decimal(&number)
        .map(Some)
        .map_err(|e| DataError::new(source, format!("row {row}: {e}")))
}

/// A header cell reduced to lowercase letters and digits (`"Authentication-\nInternational"`
/// → `authenticationinternational`).
pub fn header_key(cell: &str) -> String {
    cell.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Finds the effective date Meta writes in a file's title lines
/// (`…effective July 1, 2026…` or an ISO date).
pub fn effective_date(lines: &[String]) -> Option<Date> {
    lines.iter().find_map(|line| date_in(line))
}

fn date_in(text: &str) -> Option<Date> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    for (i, word) in words.iter().enumerate() {
        if let Ok(date) = word
            .trim_matches(|c: char| !c.is_ascii_digit())
            .parse::<Date>()
        {
            if word.contains('-') {
                return Some(date);
            }
        }
        let Some(month) = MONTHS.iter().position(|m| m == word) else {
            continue;
        };
        let day = words
            .get(i + 1)?
            .trim_end_matches(|c: char| !c.is_ascii_digit());
        let year = words
            .get(i + 2)?
            .trim_end_matches(|c: char| !c.is_ascii_digit());
        let (Ok(day), Ok(year)) = (day.parse::<i8>(), year.parse::<i16>()) else {
            continue;
        };
        if let Ok(date) = Date::new(year, month as i8 + 1, day) {
            return Some(date);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_effective_dates_from_title_lines() {
        let lines = vec![
            "WhatsApp Business Platform rates".to_string(),
            "Rates effective July 1, 2026, based on WABA timezone".to_string(),
        ];
        assert_eq!(effective_date(&lines), Some(jiff::civil::date(2026, 7, 1)));
        let iso = vec!["effective_from 2026-01-01".to_string()];
        assert_eq!(effective_date(&iso), Some(jiff::civil::date(2026, 1, 1)));
        assert_eq!(effective_date(&["no date here".to_string()]), None);
    }

    #[test]
    fn reads_amount_cells() {
        assert_eq!(
            amount("$0.0625", "t", 1).ok().flatten(),
            Some(Micros(62_500))
        );
        assert_eq!(
            amount("1,940.13", "t", 1).ok().flatten(),
            Some(Micros(1_940_130_000))
        );
        assert_eq!(amount("n/a", "t", 1).ok().flatten(), None);
        assert_eq!(amount("--", "t", 1).ok().flatten(), None);
        assert!(amount("cheap", "t", 1).is_err());
    }
}
