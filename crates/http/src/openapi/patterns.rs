//! Regular expressions for the OpenAPI document, built from the validators' own limits and
//! predicates so that a value a pattern admits is one the server accepts.
//!
//! The patterns use only what ECMA-262 (JSON Schema's dialect), Python's `re` and Rust's
//! `regex` read alike: classes, `(?:…)`, alternation, bounded repetition, `^`/`$` and
//! `\uXXXX` escapes.

/// The canonical decimal spellings (no leading zeros) of the integers `lo..=hi`, as one
/// unanchored group, e.g. `int_range(5, 120)` = `(?:[5-9]|[1-9][0-9]|1[0-1][0-9]|120)`.
pub fn int_range(lo: u64, hi: u64) -> String {
    assert!(lo <= hi, "an empty range: {lo}..={hi}");
    let mut alternatives = Vec::new();
    let mut from = lo;
    // One run per number of digits: [1, 9], [10, 99], …
    loop {
        let digits = from.to_string().len() as u32;
        let top = 10u64.checked_pow(digits).map_or(u64::MAX, |p| p - 1);
        let to = top.min(hi);
        alternatives.extend(same_length(&from.to_string(), &to.to_string()));
        if to == hi {
            break;
        }
        from = to + 1;
    }
    format!("(?:{})", alternatives.join("|"))
}

/// Alternatives that match the numbers from `a` to `b`, both of the same length.
fn same_length(a: &str, b: &str) -> Vec<String> {
    debug_assert_eq!(a.len(), b.len());
    if a == b {
        return vec![a.to_owned()];
    }
    let (a0, a_rest) = a.split_at(1);
    let (b0, b_rest) = b.split_at(1);
    if a0 == b0 {
        return same_length(a_rest, b_rest)
            .into_iter()
            .map(|s| format!("{a0}{s}"))
            .collect();
    }
    let n = a_rest.len();
    let any = |n: usize| match n {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        n => format!("[0-9]{{{n}}}"),
    };
    let (lo, hi) = (digit(a0), digit(b0));
    let full_low = a_rest.bytes().all(|c| c == b'0');
    let full_high = b_rest.bytes().all(|c| c == b'9');
    let mut out = Vec::new();
    // The first digit's run: a0 followed by a_rest..=99…9.
    let middle_lo = if full_low {
        lo
    } else {
        out.extend(
            same_length(a_rest, &"9".repeat(n))
                .into_iter()
                .map(|s| format!("{a0}{s}")),
        );
        lo + 1
    };
    let middle_hi = if full_high { hi } else { hi - 1 };
    if middle_lo <= middle_hi {
        out.push(format!("{}{}", class(middle_lo, middle_hi), any(n)));
    }
    if !full_high {
        out.extend(
            same_length(&"0".repeat(n), b_rest)
                .into_iter()
                .map(|s| format!("{b0}{s}")),
        );
    }
    out
}

fn digit(s: &str) -> u8 {
    s.as_bytes()[0] - b'0'
}

fn class(lo: u8, hi: u8) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("[{lo}-{hi}]")
    }
}

/// A decimal amount between `min` and `max` whole units with at most `places` decimals
/// (`5`, `5.5`, `10000.00`), anchored: the integer part without leading zeros, `max` itself
/// only with zero decimals.
pub fn decimal_range(min: u64, max: u64, places: usize) -> String {
    assert!(
        min < max && places > 0,
        "decimal_range({min}, {max}, {places})"
    );
    format!(
        "^(?:{}(?:\\.[0-9]{{1,{places}}})?|{max}(?:\\.0{{1,{places}}})?)$",
        int_range(min, max - 1)
    )
}

/// A character class of every character for which `pred` holds (or, `negated`, of every
/// other one), with ranges and `\uXXXX` escapes for anything outside printable ASCII.
/// Only characters of the Basic Multilingual Plane are named; `pred` must be false above it
/// (checked), so a negated class covers the other planes too.
pub fn char_class(pred: impl Fn(char) -> bool, negated: bool) -> String {
    assert!(
        !(0x10000..=0x10FFFF).filter_map(char::from_u32).any(&pred),
        "char_class names BMP characters only"
    );
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in (0..0x10000).filter_map(char::from_u32).filter(|c| pred(*c)) {
        let c = c as u32;
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == c => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    let mut out = String::from(if negated { "[^" } else { "[" });
    for (a, b) in ranges {
        out.push_str(&escape(a));
        if b > a {
            if b > a + 1 {
                out.push('-');
            }
            out.push_str(&escape(b));
        }
    }
    out.push(']');
    out
}

fn escape(c: u32) -> String {
    match char::from_u32(c) {
        Some(ch) if ch.is_ascii_alphanumeric() => ch.to_string(),
        _ => format!("\\u{c:04X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn full(p: &str) -> Regex {
        Regex::new(&format!("^{p}$")).unwrap()
    }

    #[test]
    fn integer_ranges_match_exactly_their_numbers() {
        for (lo, hi) in [
            (0, 0),
            (0, 9),
            (5, 9999),
            (0, 65535),
            (7, 7),
            (10, 99),
            (19, 1000),
            (123, 4567),
            (99, 101),
        ] {
            let re = full(&int_range(lo, hi));
            for n in 0..=hi + 200 {
                assert_eq!(
                    re.is_match(&n.to_string()),
                    (lo..=hi).contains(&n),
                    "{n} in {lo}..={hi}: {re}"
                );
            }
            assert!(!re.is_match(&format!("0{lo}")), "no leading zeros: {re}");
        }
    }

    #[test]
    fn decimal_ranges() {
        let re = Regex::new(&decimal_range(5, 10000, 2)).unwrap();
        for ok in [
            "5", "5.0", "5.00", "9999.99", "10000", "10000.0", "10000.00", "12.3",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "4.99", "10000.01", "10001", "5.001", "05", "5.", ".5", "-5", " 5", "1e3",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn classes_list_exactly_their_characters() {
        let ws = Regex::new(&char_class(char::is_whitespace, false)).unwrap();
        let not_ws = Regex::new(&char_class(char::is_whitespace, true)).unwrap();
        for c in (0..0x30000).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(ws.is_match(&s), c.is_whitespace(), "{c:?}");
            assert_eq!(not_ws.is_match(&s), !c.is_whitespace(), "{c:?}");
        }
        assert_eq!(
            char_class(|c| c.is_ascii_graphic(), false),
            "[\\u0021-\\u007E]"
        );
    }
}
