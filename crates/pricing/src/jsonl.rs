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

#[derive(Deserialize)]
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
    let raw: RawEvent<'_> =
        serde_json::from_slice(line).map_err(|e| LineError(format!("not a valid event: {e}")))?;
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

/// Appends the output line for a business message (with its newline) to `out`.
pub fn write_outcome(out: &mut Vec<u8>, id: &str, outcome: &Outcome, markets: &Markets) {
    // Writing into a Vec cannot fail.
    let _ = write_outcome_fallible(out, id, outcome, markets);
}

fn write_outcome_fallible(
    out: &mut Vec<u8>,
    id: &str,
    outcome: &Outcome,
    markets: &Markets,
) -> std::io::Result<()> {
    out.extend_from_slice(b"{\"id\":");
    serde_json::to_writer(&mut *out, id)?;
    let pricing = match outcome {
        Outcome::OutsideCustomerServiceWindow => {
            out.extend_from_slice(b",\"error\":\"outside_customer_service_window\"}\n");
            return Ok(());
        }
        Outcome::Priced(pricing) => pricing,
    };
    write!(
        out,
        ",\"billable\":{},\"pricing_model\":\"{}\",\"category\":\"{}\",\"type\":\"{}\",\"market\":",
        pricing.billable,
        pricing.model.as_str(),
        pricing.category.as_str(),
        pricing.kind.as_str()
    )?;
    serde_json::to_writer(&mut *out, markets.name(pricing.market))?;
    match pricing.rate {
        Some(rate) => write!(out, ",\"rate\":\"{rate}\"")?,
        None => out.extend_from_slice(b",\"rate\":null"),
    }
    write!(out, ",\"currency\":\"{}\"", pricing.currency)?;
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
}
