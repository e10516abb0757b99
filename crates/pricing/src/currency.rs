//! ISO 4217 currency codes, and the symbols Meta's CSV files use instead of them.

use std::fmt;

/// A three-letter ISO 4217 currency code (`USD`), stored inline so it is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars: the default currency of a WABA.
    pub const USD: Currency = Currency(*b"USD");

    /// Parses a three-letter code (case-insensitive) or a token Meta's published CSVs use:
    /// `$US`, `₹`, `A$`, `£`, `RP`, `€`, `R$`, and Meta's typo `GBD` for GBP.
    pub fn parse(text: &str) -> Option<Currency> {
        let text = text.trim();
        let alias = match text {
            "$US" | "US$" | "$" => Some("USD"),
            "₹" | "Rs" | "Rs." => Some("INR"),
            "A$" | "AU$" => Some("AUD"),
            "£" | "GBD" => Some("GBP"),
            "RP" | "Rp" => Some("IDR"),
            "€" => Some("EUR"),
            "R$" => Some("BRL"),
            "MX$" => Some("MXN"),
            "RM" => Some("MYR"),
            "S$" => Some("SGD"),
            "S/" | "S/." => Some("PEN"),
            _ => None,
        };
        let code = alias.unwrap_or(text);
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        Some(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// The code as text (`"USD"`).
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codes_and_meta_symbols() {
        assert_eq!(Currency::parse("usd"), Some(Currency::USD));
        assert_eq!(Currency::parse("$US"), Some(Currency::USD));
        assert_eq!(
            Currency::parse("GBD").map(|c| c.to_string()).as_deref(),
            Some("GBP")
        );
        assert_eq!(
            Currency::parse("₹").map(|c| c.to_string()).as_deref(),
            Some("INR")
        );
        assert_eq!(Currency::parse("dollars"), None);
    }
}
