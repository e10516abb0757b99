//! E.164 phone numbers as integers.
//!
//! An E.164 number has at most 15 digits and never starts with 0, so its digits fit a `u64`
//! and the integer alone identifies the number: the (business, user) key of the window state
//! is two of them, hashed as one `u128`.

/// A parsed E.164 number (`+919876543210`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone {
    digits: u64,
    len: u8,
}

impl Phone {
    /// Parses `+` and 2–15 digits (the `+` may be left out); the first digit is never 0.
    pub fn parse(text: &str) -> Option<Phone> {
        let body = text.strip_prefix('+').unwrap_or(text);
        let bytes = body.as_bytes();
        if bytes.len() < 2 || bytes.len() > 15 || bytes[0] == b'0' {
            return None;
        }
        let mut digits: u64 = 0;
        for &b in bytes {
            if !b.is_ascii_digit() {
                return None;
            }
            digits = digits * 10 + u64::from(b - b'0');
        }
        Some(Phone {
            digits,
            len: bytes.len() as u8,
        })
    }

    /// The number's digits as an integer (unique per number).
    pub fn as_u64(self) -> u64 {
        self.digits
    }

    /// How many digits the number has.
    pub fn len(self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a parsed number has at least two digits (here for clippy's `len` rule).
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The first `count` digits as an integer (`+919876…`, 2 → 91); `None` when longer
    /// than the number.
    pub fn prefix(self, count: usize) -> Option<u64> {
        let len = self.len();
        if count == 0 || count > len {
            return None;
        }
        Some(self.digits / 10_u64.pow((len - count) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164_with_or_without_plus() {
        let p = Phone::parse("+18095551234").expect("valid");
        assert_eq!(p.len(), 11);
        assert_eq!(p.prefix(1), Some(1));
        assert_eq!(p.prefix(4), Some(1809));
        assert_eq!(Phone::parse("18095551234"), Some(p));
    }

    #[test]
    fn refuses_what_is_not_e164() {
        for bad in [
            "",
            "+",
            "+0123",
            "+1234567890123456",
            "+12 34",
            "abc",
            "+1-809",
        ] {
            assert_eq!(Phone::parse(bad), None, "{bad}");
        }
    }
}
