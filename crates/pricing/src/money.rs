//! Exact money: integer micro-units (1e-6 of a currency unit) and decimal strings.
//!
//! Meta's rates have up to four decimals today (`0.0034`), some currencies have thousands
//! (`1,940.13`). Micro-units hold all of them exactly in an `i64`; a rate with more than six
//! significant decimals is refused when a card is loaded rather than silently rounded.

use std::fmt;

/// How many micro-units make one currency unit.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// An amount of money in micro-units of some currency (the currency travels beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub i64);

/// Why a decimal string is not an exact amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a plain decimal number (`12`, `0.0625`, `-1.5`).
    #[error("`{0}` is not a decimal number")]
    NotDecimal(String),
    /// More than six non-zero decimals: micro-units cannot hold it exactly.
    #[error("`{0}` has more than 6 decimals; wagate keeps money in exact micro-units")]
    TooPrecise(String),
    /// Larger than an `i64` of micro-units (about 9.2 trillion units).
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl Micros {
    /// Zero of any currency.
    pub const ZERO: Micros = Micros(0);

    /// Parses a plain decimal string exactly (`"0.0625"` → 62 500 micro-units).
    ///
    /// Trailing zeros past the sixth decimal are accepted (`0.06250000`); any other digit
    /// there is an error, because rounding a rate would make every charge built on it wrong.
    pub fn parse_decimal(text: &str) -> Result<Micros, MoneyError> {
        let bad = || MoneyError::NotDecimal(text.to_string());
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        if !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let too_large = || MoneyError::TooLarge(text.to_string());
        let mut units: i64 = 0;
        for b in whole.bytes() {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or_else(too_large)?;
        }
        let mut micros: i64 = 0;
        for (position, b) in fraction.bytes().enumerate() {
            if position >= 6 {
                if b != b'0' {
                    return Err(MoneyError::TooPrecise(text.to_string()));
                }
                continue;
            }
            micros += i64::from(b - b'0') * 10_i64.pow(5 - position as u32);
        }
        let total = units
            .checked_mul(MICROS_PER_UNIT)
            .and_then(|u| u.checked_add(micros))
            .ok_or_else(too_large)?;
        Ok(Micros(if negative { -total } else { total }))
    }

    /// Adds two amounts of the same currency; saturates instead of wrapping, which no real
    /// traffic reaches (9.2 trillion units).
    pub fn saturating_add(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }
}

impl Micros {
    /// Appends the same text as `Display` to `out`, without the formatting machinery (the
    /// CLI writes millions of rates).
    pub fn write_to(self, out: &mut Vec<u8>) {
        if self.0 < 0 {
            out.push(b'-');
        }
        let magnitude = self.0.unsigned_abs();
        let mut units = magnitude / MICROS_PER_UNIT as u64;
        let mut fraction = magnitude % MICROS_PER_UNIT as u64;
        let mut digits = 6;
        while digits > 2 && fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        let mut text = [0u8; 20];
        let mut start = text.len();
        loop {
            start -= 1;
            text[start] = b'0' + (units % 10) as u8;
            units /= 10;
            if units == 0 {
                break;
            }
        }
        out.extend_from_slice(&text[start..]);
        out.push(b'.');
        let mut decimals = [b'0'; 6];
        for slot in decimals[..digits].iter_mut().rev() {
            *slot = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        out.extend_from_slice(&decimals[..digits]);
    }
}

impl fmt::Display for Micros {
    /// Exact decimal with at least two decimals and no trailing zeros beyond them:
    /// `0.00`, `0.0625`, `12.50`, `1940.13`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let units = magnitude / MICROS_PER_UNIT as u64;
        let mut fraction = magnitude % MICROS_PER_UNIT as u64;
        let mut digits = 6;
        while digits > 2 && fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        write!(f, "{sign}{units}.{fraction:0digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_exactly() {
        assert_eq!(Micros::parse_decimal("0.0625"), Ok(Micros(62_500)));
        assert_eq!(Micros::parse_decimal("0.0008"), Ok(Micros(800)));
        assert_eq!(Micros::parse_decimal("4.5293"), Ok(Micros(4_529_300)));
        assert_eq!(Micros::parse_decimal("12"), Ok(Micros(12_000_000)));
        assert_eq!(Micros::parse_decimal(".5"), Ok(Micros(500_000)));
        assert_eq!(Micros::parse_decimal("-1.5"), Ok(Micros(-1_500_000)));
        assert_eq!(Micros::parse_decimal("0.06250000"), Ok(Micros(62_500)));
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        assert!(matches!(
            Micros::parse_decimal("0.0000001"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Micros::parse_decimal("1e3"),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            Micros::parse_decimal(""),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            Micros::parse_decimal("."),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            Micros::parse_decimal("99999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn prints_at_least_two_decimals_and_no_float_noise() {
        assert_eq!(Micros(0).to_string(), "0.00");
        assert_eq!(Micros(62_500).to_string(), "0.0625");
        assert_eq!(Micros(3_400).to_string(), "0.0034");
        assert_eq!(Micros(12_500_000).to_string(), "12.50");
        assert_eq!(Micros(1).to_string(), "0.000001");
        assert_eq!(Micros(-1_500_000).to_string(), "-1.50");
    }

    proptest::proptest! {
        #[test]
        fn write_to_prints_what_display_prints(value in proptest::prelude::any::<i64>()) {
            let mut out = Vec::new();
            Micros(value).write_to(&mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).ok(), Some(Micros(value).to_string()));
        }
    }
}
