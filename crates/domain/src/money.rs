//! Money as integer micro-units (1e-6 of the currency unit) with exact decimal text.

use serde::{Deserialize, Serialize};

/// Micro-units in one currency unit.
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// Why a decimal amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a plain decimal like `12.50`.
    #[error("amount must be a decimal string like \"12.50\"")]
    Malformed,
    /// More than six decimal places: micro-units cannot hold it exactly.
    #[error("amount has more than 6 decimal places")]
    TooPrecise,
    /// Larger than the ledger can represent.
    #[error("amount is too large")]
    TooLarge,
}

/// An exact amount of one currency, in micro-units. Never a float.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Micros(pub i64);

impl Micros {
    /// Zero.
    pub const ZERO: Micros = Micros(0);

    /// Whole cents, as card processors take them.
    pub fn from_cents(cents: i64) -> Self {
        Micros(cents * 10_000)
    }

    /// Parses a decimal string (`"15"`, `"15.00"`, `"-0.0025"`) exactly.
    pub fn parse(s: &str) -> Result<Self, AmountError> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(AmountError::Malformed);
        }
        if frac.len() > 6 {
            return Err(AmountError::TooPrecise);
        }
        let int_val: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| AmountError::TooLarge)?
        };
        let frac_val: i64 = format!("{frac:0<6}")
            .parse()
            .map_err(|_| AmountError::Malformed)?;
        let micros = int_val
            .checked_mul(MICROS_PER_UNIT)
            .and_then(|v| v.checked_add(frac_val))
            .ok_or(AmountError::TooLarge)?;
        Ok(Micros(if neg { -micros } else { micros }))
    }

    /// Exact decimal text with at least `min_places` decimals and no trailing zeros beyond
    /// them (`15.00`, `12.3456`).
    pub fn to_decimal(self, min_places: usize) -> String {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let int = abs / MICROS_PER_UNIT as u64;
        let mut frac = format!("{:06}", abs % MICROS_PER_UNIT as u64);
        while frac.len() > min_places && frac.ends_with('0') {
            frac.pop();
        }
        let sign = if neg { "-" } else { "" };
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    /// The amount in cents, rounded half away from zero (card charges are in cents).
    pub fn to_cents_rounded(self) -> i64 {
        let q = self.0 / 10_000;
        let r = self.0 % 10_000;
        if r.abs() >= 5_000 {
            q + r.signum()
        } else {
            q
        }
    }

    /// The amount in cents, rounded up: what must be charged to cover this amount.
    pub fn to_cents_ceil(self) -> i64 {
        let q = self.0.div_euclid(10_000);
        if self.0.rem_euclid(10_000) == 0 {
            q
        } else {
            q + 1
        }
    }
}

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_decimal(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_exactly() {
        assert_eq!(Micros::parse("15").unwrap(), Micros(15_000_000));
        assert_eq!(Micros::parse("15.00").unwrap(), Micros(15_000_000));
        assert_eq!(Micros::parse("0.0025").unwrap(), Micros(2_500));
        assert_eq!(Micros::parse("-1.5").unwrap(), Micros(-1_500_000));
        assert_eq!(Micros(15_000_000).to_decimal(2), "15.00");
        assert_eq!(Micros(12_345_600).to_decimal(2), "12.3456");
        assert_eq!(Micros(-2_500).to_decimal(2), "-0.0025");
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        for bad in ["", "abc", "1.", ".", "1,00", "1e3", "--1", "1.2.3", " "] {
            assert_eq!(Micros::parse(bad), Err(AmountError::Malformed), "{bad:?}");
        }
        assert_eq!(Micros::parse("0.0000001"), Err(AmountError::TooPrecise));
        assert_eq!(
            Micros::parse("99999999999999999"),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn cents_rounding() {
        assert_eq!(Micros(15_000_000).to_cents_rounded(), 1500);
        assert_eq!(Micros(5_000).to_cents_rounded(), 1);
        assert_eq!(Micros(4_999).to_cents_rounded(), 0);
        assert_eq!(Micros(1).to_cents_ceil(), 1);
        assert_eq!(Micros(10_000).to_cents_ceil(), 1);
    }

    proptest! {
        #[test]
        fn decimal_text_round_trips(v in -1_000_000_000_000i64..1_000_000_000_000) {
            let m = Micros(v);
            prop_assert_eq!(Micros::parse(&m.to_decimal(2)).unwrap(), m);
        }
    }
}
