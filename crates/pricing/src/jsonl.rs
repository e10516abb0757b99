//! The JSON Lines formats of `wagate rate`: events in, one pricing object per business
//! message out.

use std::borrow::Cow;
use std::io::Write;

use serde::Deserialize;

use crate::category::TemplateCategory;
use crate::event::{EventKind, Message, Outcome};
use crate::instant::Instant;
use crate::market::Markets;

use crate::phone::Phone;

/// One input line, parsed and checked; the WABA is still a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputEvent<'a> {
    /// `ts`.
    pub at: Instant,
    /// `waba`.
    pub waba: Cow<'a, str>,
    /// `business`.
    pub business: Phone,
    /// `user`.
    pub user: Phone,
    /// `id` of a business message (required for `"dir": "out"`).
    pub id: Option<Cow<'a, str>>,
    /// `dir`, `entry`, `type` and `category` together.
    pub kind: EventKind,
}

/// Why a line is malformed (reported with its line number, then skipped).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LineError(pub String);

#[derive(Debug, PartialEq, Eq, Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    waba: Cow<'a, str>,
    #[serde(borrow)]
    business: Cow<'a, str>,
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    dir: Cow<'a, str>,
    #[serde(borrow, default)]
    entry: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
}

/// Parses one line: `{"ts","waba","business","user","dir":"in","entry"?}` or
/// `{"ts","id","waba","business","user","dir":"out","type","category"?}`. Unknown fields are
/// ignored (so webhook-derived lines with more in them work).
pub fn parse_line(line: &[u8]) -> Result<InputEvent<'_>, LineError> {
    let raw = match scan_flat(line) {
        Some(raw) => raw,
        // Anything the fast reader does not handle (escapes, numbers, missing fields, bad
        // JSON) goes to serde_json, which also gives the precise error.
        None => serde_json::from_slice(line)
            .map_err(|e| LineError(format!("not a valid event: {e}")))?,
    };
    let at = Instant::parse(&raw.ts)
        .ok_or_else(|| LineError(format!("`ts` {:?} is not an RFC 3339 timestamp", raw.ts)))?;
    let phone = |field: &str, text: &str| {
        Phone::parse(text)
            .ok_or_else(|| LineError(format!("`{field}` {text:?} is not an E.164 number")))
    };
    let business = phone("business", &raw.business)?;
    let user = phone("user", &raw.user)?;
    if raw.waba.is_empty() {
        return Err(LineError("`waba` is empty".into()));
    }
    let kind = match raw.dir.as_ref() {
        "in" => {
            let entry_point = match raw.entry.as_deref() {
                None => false,
                Some("ctwa") | Some("page_cta") => true,
                Some(other) => {
                    return Err(LineError(format!(
                        "`entry` {other:?} is not \"ctwa\" or \"page_cta\""
                    )))
                }
            };
            EventKind::UserMessage { entry_point }
        }
        "out" => {
            if raw.id.as_deref().is_none_or(str::is_empty) {
                return Err(LineError(
                    "a business message (`dir: out`) needs an `id`".into(),
                ));
            }
            let message = match raw.kind.as_deref() {
                None | Some("") => {
                    return Err(LineError("a business message needs a `type`".into()))
                }
                Some("template") => {
                    let category = raw
                        .category
                        .as_deref()
                        .ok_or_else(|| LineError("a template needs a `category`".into()))?;
                    Message::Template(TemplateCategory::parse(category).ok_or_else(|| {
                        LineError(format!(
                            "`category` {category:?} is not marketing, utility or authentication"
                        ))
                    })?)
                }
                Some(_) => Message::NonTemplate,
            };
            EventKind::BusinessMessage(message)
        }
        other => {
            return Err(LineError(format!(
                "`dir` {other:?} is not \"in\" or \"out\""
            )))
        }
    };
    Ok(InputEvent {
        at,
        waba: raw.waba,
        business,
        user,
        id: raw.id,
        kind,
    })
}

/// A flat JSON object whose values are plain strings (no escapes) or `null`, read without
/// serde: the shape of nearly every input line, in a fraction of the time. `None` for any
/// other shape, duplicate known keys, or missing required fields.
fn scan_flat(line: &[u8]) -> Option<RawEvent<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let b = text.as_bytes();
    let mut fields: [Option<&str>; 9] = [None; 9];
    let mut seen = 0u16;
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(b, i + 1);
    loop {
        let (key, next) = plain_string(text, i)?;
        i = skip_space(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_space(b, i + 1);
        let value = match b.get(i)? {
            b'"' => {
                let (value, next) = plain_string(text, i)?;
                i = next;
                Some(value)
            }
            b'n' if b[i..].starts_with(b"null") => {
                i += 4;
                None
            }
            _ => return None,
        };
        let slot = match key {
            "ts" => 0,
            "id" => 1,
            "waba" => 2,
            "business" => 3,
            "user" => 4,
            "dir" => 5,
            "entry" => 6,
            "type" => 7,
            "category" => 8,
            _ => usize::MAX,
        };
        if slot != usize::MAX {
            if seen & (1 << slot) != 0 {
                return None;
            }
            seen |= 1 << slot;
            fields[slot] = value;
        }
        i = skip_space(b, i);
        match b.get(i)? {
            b',' => i = skip_space(b, i + 1),
            b'}' => break,
            _ => return None,
        }
    }
    if skip_space(b, i + 1) != b.len() {
        return None;
    }
    let [ts, id, waba, business, user, dir, entry, kind, category] = fields;
    Some(RawEvent {
        ts: Cow::Borrowed(ts?),
        id: id.map(Cow::Borrowed),
        waba: Cow::Borrowed(waba?),
        business: Cow::Borrowed(business?),
        user: Cow::Borrowed(user?),
        dir: Cow::Borrowed(dir?),
        entry: entry.map(Cow::Borrowed),
        kind: kind.map(Cow::Borrowed),
        category: category.map(Cow::Borrowed),
    })
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The string starting with the quote at `start`, if it has no escapes or control
/// characters; and the index after its closing quote.
fn plain_string(text: &str, start: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(start) != Some(&b'"') {
        return None;
    }
    // Values are short: one pass looking for the closing quote and for what needs serde
    // beats a memchr call plus a second scan.
    let mut end = start + 1;
    loop {
        match *b.get(end)? {
            b'"' => break,
            b'\\' => return None,
            c if c < 0x20 => return None,
            _ => end += 1,
        }
    }
    Some((text.get(start + 1..end)?, end + 1))
}

/// Writes output lines; market names are escaped once, not per line.
#[derive(Clone, Debug)]
pub struct OutputWriter {
    market_json: Vec<Vec<u8>>,
}

impl OutputWriter {
    /// A writer for the markets of a loaded [`Markets`] table.
    pub fn new(markets: &Markets) -> OutputWriter {
        let market_json = (0..markets.len())
            .map(|i| {
                serde_json::to_vec(markets.name(crate::market::MarketId(i as u16)))
                    .unwrap_or_else(|_| b"\"Other\"".to_vec())
            })
            .collect();
        OutputWriter { market_json }
    }

    /// Appends the output line for a business message (with its newline) to `out`.
    pub fn write(&self, out: &mut Vec<u8>, id: &str, outcome: &Outcome) {
        // Writing into a Vec cannot fail.
        let _ = self.write_fallible(out, id, outcome);
    }

    fn write_fallible(
        &self,
        out: &mut Vec<u8>,
        id: &str,
        outcome: &Outcome,
    ) -> std::io::Result<()> {
        out.extend_from_slice(b"{\"id\":");
        if id.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20) {
            serde_json::to_writer(&mut *out, id)?;
        } else {
            out.push(b'"');
            out.extend_from_slice(id.as_bytes());
            out.push(b'"');
        }
        let pricing = match outcome {
            Outcome::OutsideCustomerServiceWindow => {
                out.extend_from_slice(b",\"error\":\"outside_customer_service_window\"}\n");
                return Ok(());
            }
            Outcome::Priced(pricing) => pricing,
        };
        out.extend_from_slice(if pricing.billable {
            b",\"billable\":true,\"pricing_model\":\""
        } else {
            b",\"billable\":false,\"pricing_model\":\""
        });
        out.extend_from_slice(pricing.model.as_str().as_bytes());
        out.extend_from_slice(b"\",\"category\":\"");
        out.extend_from_slice(pricing.category.as_str().as_bytes());
        out.extend_from_slice(b"\",\"type\":\"");
        out.extend_from_slice(pricing.kind.as_str().as_bytes());
        out.extend_from_slice(b"\",\"market\":");
        match self.market_json.get(usize::from(pricing.market.0)) {
            Some(name) => out.extend_from_slice(name),
            None => out.extend_from_slice(b"\"Other\""),
        }
        match pricing.rate {
            Some(rate) => {
                out.extend_from_slice(b",\"rate\":\"");
                rate.write_to(out);
                out.push(b'"');
            }
            None => out.extend_from_slice(b",\"rate\":null"),
        }
        out.extend_from_slice(b",\"currency\":\"");
        out.extend_from_slice(pricing.currency.as_str().as_bytes());
        out.push(b'"');
        if let Some(tier) = pricing.tier {
            write!(out, ",\"tier\":\"{tier}\"")?;
        }
        if let Some(conversation) = pricing.conversation {
            write!(
                out,
                ",\"conversation\":{{\"id\":\"{}\",\"origin\":\"{}\",\"expires_at\":\"{}\"}}",
                conversation.id,
                conversation.origin.origin_str(),
                conversation.expires_at.to_timestamp()
            )?;
        }
        if pricing.rate.is_none() {
            out.extend_from_slice(b",\"error\":\"no_rate_card\"");
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_directions() {
        let inbound = parse_line(
            br#"{"ts":"2026-03-01T12:00:00Z","waba":"w","business":"+15550001111","user":"+919876543210","dir":"in","entry":"ctwa"}"#,
        )
        .expect("valid");
        assert_eq!(inbound.kind, EventKind::UserMessage { entry_point: true });
        let outbound = parse_line(
            br#"{"ts":"2026-03-01T12:00:00Z","id":"wamid.1","waba":"w","business":"+15550001111","user":"+919876543210","dir":"out","type":"template","category":"utility","status":"delivered"}"#,
        )
        .expect("valid");
        assert_eq!(
            outbound.kind,
            EventKind::BusinessMessage(Message::Template(TemplateCategory::Utility))
        );
        assert_eq!(outbound.id.as_deref(), Some("wamid.1"));
        let text = parse_line(
            br#"{"ts":"2026-03-01T12:00:00Z","id":"m\"2","waba":"w","business":"+15550001111","user":"+919876543210","dir":"out","type":"image"}"#,
        )
        .expect("valid");
        assert_eq!(text.kind, EventKind::BusinessMessage(Message::NonTemplate));
        assert_eq!(text.id.as_deref(), Some("m\"2"));
    }

    #[test]
    fn says_what_is_wrong_with_a_line() {
        let cases: [(&[u8], &str); 7] = [
            (b"{not json", "not a valid event"),
            (br#"{"ts":"noon","waba":"w","business":"+1555","user":"+91","dir":"in"}"#, "`ts`"),
            (br#"{"ts":"2026-03-01T12:00:00Z","waba":"w","business":"+1555","user":"91x","dir":"in"}"#, "`user`"),
            (br#"{"ts":"2026-03-01T12:00:00Z","waba":"w","business":"+1555","user":"+9198","dir":"up"}"#, "`dir`"),
            (br#"{"ts":"2026-03-01T12:00:00Z","waba":"w","business":"+1555","user":"+9198","dir":"out","type":"text"}"#, "`id`"),
            (br#"{"ts":"2026-03-01T12:00:00Z","id":"1","waba":"w","business":"+1555","user":"+9198","dir":"out","type":"template"}"#, "`category`"),
            (br#"{"ts":"2026-03-01T12:00:00Z","id":"1","waba":"w","business":"+1555","user":"+9198","dir":"out","type":"template","category":"promo"}"#, "`category`"),
        ];
        for (line, expected) in cases {
            let error = parse_line(line).expect_err("malformed");
            assert!(
                error.0.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn the_fast_reader_agrees_with_serde_or_steps_aside() {
        let config = crate::synth::SynthConfig::default();
        for event in crate::synth::Generator::new(config).take(5_000) {
            let mut line = Vec::new();
            crate::synth::write_jsonl(&event, &mut line);
            let line = &line[..line.len() - 1];
            let slow: RawEvent<'_> = serde_json::from_slice(line).expect("serde reads it");
            assert_eq!(scan_flat(line), Some(slow));
        }
        let spaced = br#" { "ts" : "2026-03-01T12:00:00Z" , "waba":"w","business":"+1555","user":"+9198","dir":"in","entry":null,"extra":"x"} "#;
        let slow: RawEvent<'_> = serde_json::from_slice(spaced).expect("serde reads it");
        assert_eq!(scan_flat(spaced), Some(slow));
        for aside in [
            &br#"{"ts":"2026-03-01T12:00:00Z","waba":"w\u0041","business":"+1555","user":"+9198","dir":"in"}"#[..],
            br#"{"ts":"2026-03-01T12:00:00Z","waba":"w","business":"+1555","user":"+9198","dir":"in","n":1}"#,
            br#"{"ts":"2026-03-01T12:00:00Z","ts":"2026-03-01T12:00:00Z","waba":"w","business":"+1555","user":"+9198","dir":"in"}"#,
            br#"{"ts":"2026-03-01T12:00:00Z","waba":"w","business":"+1555","user":"+9198","dir":"in"} x"#,
            br#"{"waba":"w","business":"+1555","user":"+9198","dir":"in"}"#,
        ] {
            assert_eq!(scan_flat(aside), None, "{}", String::from_utf8_lossy(aside));
        }
        let escaped = parse_line(
            br#"{"ts":"2026-03-01T12:00:00Z","waba":"w\u0041","business":"+1555","user":"+9198","dir":"in"}"#,
        )
        .expect("serde path");
        assert_eq!(escaped.waba, "wA");
    }
}
