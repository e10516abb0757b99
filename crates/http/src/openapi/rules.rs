//! Every rule the server enforces on a request's fields, stated in the document from the
//! validators' own constants and predicates, so the two cannot drift.
//!
//! utoipa's attributes take literals only, so the rules are written here, once, onto the
//! generated document: each [`Rule`] names a place in it and the JSON Schema keywords that
//! say what the validator checks there.

use serde_json::{json, Value};
use wagate_app::billing::wallet::{TOPUP_MAX, TOPUP_MIN};
use wagate_app::cloud::{
    CURRENCY, MAX_ID_LEN, MAX_LANGUAGE_LEN, MAX_TEMPLATE_NAME, MAX_TOKEN_LEN, TEMPLATE_CATEGORIES,
};
use wagate_app::numbers::SMS_MAX_CHARS;
use wagate_app::webhooks::EVENT_TYPES;
use wagate_domain::billing::days::{DAYS_PER_CHANNEL, MAX_EXTEND_DAYS, MAX_INVOICE_DAYS};
use wagate_domain::line::{
    E164_MAX_DIGITS, E164_MIN_DIGITS, LABEL_MAX_CHARS, METADATA_MAX_KEYS, METADATA_MAX_KEY_CHARS,
    METADATA_MAX_VALUE_CHARS, TEXT_MAX_CHARS,
};
use wagate_domain::money::MICROS_PER_UNIT;
use wagate_domain::page::{DEFAULT_LIMIT, MAX_LIMIT};
use wagate_domain::webhook::address::MAX_URL_LEN;

use super::patterns::{char_class, decimal_range, int_range};
use crate::idempotency::{key_char, KEY_MAX_LEN, KEY_MIN_LEN};
use crate::routes::sandbox::{FAIL_NEXT_MAX, MAX_ADVANCE_SECS};

/// Longest webhook endpoint description, in characters. The limit lives in
/// `wagate_app::webhooks::endpoints` (private there); `tests/contract.rs` pins it.
pub const ENDPOINT_DESCRIPTION_MAX_CHARS: usize = 500;
/// Longest card nonce (`source_id`), in bytes. The limit lives in
/// `wagate_app::billing::wallet` (a literal there); `tests/contract.rs` pins it.
pub const SOURCE_ID_MAX_BYTES: usize = 512;
/// Micro-units in a cent: top-ups and auto top-ups are in whole cents.
pub const MICROS_PER_CENT: i64 = 10_000;

/// The decimal places of amounts counted in steps of `micros_per_step` micro-units (6 for
/// micro-units, 2 for cents).
fn places(micros_per_step: i64) -> usize {
    (MICROS_PER_UNIT / micros_per_step).ilog10() as usize
}

fn whole_units(m: wagate_domain::money::Micros) -> u64 {
    assert_eq!(
        m.0 % MICROS_PER_UNIT,
        0,
        "a documented bound in whole units"
    );
    u64::try_from(m.0 / MICROS_PER_UNIT).unwrap_or(0)
}

/// A top-up amount: `TOPUP_MIN` to `TOPUP_MAX`, whole cents.
pub fn topup_amount_pattern() -> String {
    decimal_range(
        whole_units(TOPUP_MIN),
        whole_units(TOPUP_MAX),
        places(MICROS_PER_CENT),
    )
}

/// An auto top-up threshold: 0 to `TOPUP_MAX`, to the micro-unit.
pub fn threshold_pattern() -> String {
    decimal_range(0, whole_units(TOPUP_MAX), places(1))
}

/// An E.164 number as `validate_e164` takes it: `+`, a non-zero digit, 8 to 15 digits.
pub fn e164_pattern() -> String {
    format!(
        "^\\+[1-9][0-9]{{{},{}}}$",
        E164_MIN_DIGITS - 1,
        E164_MAX_DIGITS - 1
    )
}

/// Not blank: some character that `str::trim` (what `validate_text` uses) keeps.
pub fn not_blank_pattern() -> String {
    char_class(char::is_whitespace, true)
}

/// An `Idempotency-Key`: visible ASCII only (its length is stated apart).
pub fn idempotency_key_pattern() -> String {
    format!("^{}+$", char_class(key_char, false))
}

/// A card nonce: visible ASCII (so its bytes are its characters) up to the byte limit.
pub fn source_id_pattern() -> String {
    format!(
        "^{}{{1,{SOURCE_ID_MAX_BYTES}}}$",
        char_class(|c| c.is_ascii_graphic(), false)
    )
}

/// Endpoint URLs the server parses as given (`parse_endpoint_url`): `http` or `https`, a
/// host name whose last label starts with a letter (never read as an IP address), an
/// optional port, a path and an optional query, in characters that are never
/// percent-encoded, so the stored URL is no longer than the one sent. Outside the sandbox
/// the host must also resolve to public addresses, which no pattern can say.
pub fn url_pattern() -> String {
    let label = "[A-Za-z0-9]+";
    let path = "[A-Za-z0-9._~!$&'()*+,;=:@/-]";
    let query = "[A-Za-z0-9._~!$&()*+,;=:@/?-]";
    format!(
        "^https?://(?:{label}\\.)*[A-Za-z][A-Za-z0-9]*(?::{})?/{path}*(?:\\?{query}*)?$",
        int_range(0, u64::from(u16::MAX))
    )
}

/// The message types the sandbox's inbound accepts (or none: `text`).
fn message_kinds() -> Vec<Value> {
    let mut kinds: Vec<Value> = wagate_domain::line::MessageKind::INBOUND
        .iter()
        .map(|k| json!(k.as_str()))
        .collect();
    kinds.push(Value::Null);
    kinds
}

/// An RFC 3339 time the sandbox clock reads (`jiff`): at most nanosecond precision, years
/// up to the clock's end (9000), no leap second.
pub fn clock_time_pattern() -> String {
    "^(?:[0-8][0-9]{3}|9000)-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
        .to_owned()
}

/// The services virtual numbers are sold for.
fn number_services() -> Vec<&'static str> {
    wagate_app::numbers::services().collect()
}

/// The countries virtual numbers are sold in (ISO 3166 alpha-2).
fn number_countries() -> Vec<&'static str> {
    wagate_app::numbers::countries().collect()
}

/// Where a rule goes and what it says there.
struct Rule {
    /// A JSON pointer into the document.
    at: &'static str,
    /// Keywords merged into the schema found there.
    keywords: Value,
}

fn metadata(values: Value) -> Value {
    json!({
        "propertyNames": {"minLength": 1, "maxLength": METADATA_MAX_KEY_CHARS},
        "additionalProperties": values,
    })
}

fn rules() -> Vec<Rule> {
    let rule = |at: &'static str, keywords: Value| Rule { at, keywords };
    let e164 = json!({"pattern": e164_pattern()});
    let text = json!({"minLength": 1, "maxLength": TEXT_MAX_CHARS, "pattern": not_blank_pattern()});
    let url = json!({"maxLength": MAX_URL_LEN, "pattern": url_pattern()});
    let mut event_types = vec!["*"];
    event_types.extend(EVENT_TYPES);
    let events = json!({"minItems": 1, "items": {"type": "string", "enum": event_types}});
    let description = json!({"maxLength": ENDPOINT_DESCRIPTION_MAX_CHARS});
    let meta_id = json!({"pattern": format!("^[0-9]{{1,{MAX_ID_LEN}}}$")});
    let label = json!({"maxLength": LABEL_MAX_CHARS});
    let mut create_metadata = metadata(json!({
        "type": "string",
        "maxLength": METADATA_MAX_VALUE_CHARS,
    }));
    create_metadata["maxProperties"] = json!(METADATA_MAX_KEYS);
    vec![
        // Lines.
        rule(
            "/components/schemas/CreateLineIn/properties/label",
            label.clone(),
        ),
        rule(
            "/components/schemas/CreateLineIn/properties/metadata",
            create_metadata,
        ),
        rule(
            "/components/schemas/CreateLineIn",
            json!({"not": {
                "required": ["calling_enabled", "allow_calling"],
                "properties": {"calling_enabled": {"const": true}, "allow_calling": {"const": true}},
            }}),
        ),
        rule("/components/schemas/UpdateLineIn/properties/label", label),
        rule(
            "/components/schemas/UpdateLineIn/properties/metadata",
            metadata(json!({"type": ["string", "null"], "maxLength": METADATA_MAX_VALUE_CHARS})),
        ),
        rule("/components/schemas/SendIn/properties/to", e164.clone()),
        // Calls.
        rule(
            "/components/schemas/PlaceCallIn/properties/to",
            e164.clone(),
        ),
        rule(
            "/components/schemas/IncomingCallIn/properties/from",
            e164.clone(),
        ),
        rule("/components/schemas/SendIn/properties/text", text.clone()),
        // Either a text or a template.
        rule(
            "/components/schemas/SendIn",
            json!({"oneOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}, "template": {"type": "null"}}},
                {"required": ["template"], "properties": {"template": {"not": {"type": "null"}}, "text": {"type": "null"}}},
            ]}),
        ),
        rule(
            "/components/schemas/TemplateIn/properties/name",
            json!({"pattern": format!("^[a-z0-9_]{{1,{MAX_TEMPLATE_NAME}}}$")}),
        ),
        rule(
            "/components/schemas/TemplateIn/properties/language",
            json!({"pattern": format!("^[A-Za-z_]{{1,{MAX_LANGUAGE_LEN}}}$")}),
        ),
        rule(
            "/components/schemas/TemplateIn/properties/category",
            json!({"enum": TEMPLATE_CATEGORIES}),
        ),
        // A cloud line gives its Meta number, and only a cloud line does; it does not call.
        rule(
            "/components/schemas/CreateLineIn",
            json!({"anyOf": [
                {
                    "required": ["kind", "cloud"],
                    "properties": {"kind": {"const": "cloud"}, "cloud": {"not": {"type": "null"}}},
                    "not": {"anyOf": [
                        {"required": ["calling_enabled"], "properties": {"calling_enabled": {"const": true}}},
                        {"required": ["allow_calling"], "properties": {"allow_calling": {"const": true}}},
                    ]},
                },
                {"not": {"required": ["cloud"]}, "properties": {"kind": {"not": {"const": "cloud"}}}},
            ]}),
        ),
        rule(
            "/components/schemas/CloudIn/properties/phone_number_id",
            meta_id.clone(),
        ),
        rule(
            "/components/schemas/CloudIn/properties/waba_id",
            meta_id.clone(),
        ),
        rule(
            "/components/schemas/CloudIn/properties/portfolio_id",
            meta_id,
        ),
        rule(
            "/components/schemas/CloudIn/properties/access_token",
            json!({"pattern": format!("^[!-~]{{1,{MAX_TOKEN_LEN}}}$")}),
        ),
        // An IANA name's shape (the server checks it against its bundled database; an
        // enum of the ~600 names breaks client generators on names like GMT+0 and GMT-0).
        rule(
            "/components/schemas/CloudIn/properties/time_zone",
            json!({"pattern": "^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$", "maxLength": 64}),
        ),
        rule(
            "/components/schemas/CloudIn/properties/currency",
            json!({"enum": [CURRENCY]}),
        ),
        // Virtual numbers: the services and countries sold, and hours for rentals only.
        rule(
            "/components/schemas/OrderNumberIn/properties/service",
            json!({"enum": number_services()}),
        ),
        rule(
            "/components/schemas/OrderNumberIn/properties/country",
            json!({"enum": number_countries()}),
        ),
        rule(
            "/components/schemas/OrderNumberIn/properties/kind",
            json!({"enum": ["verification", "rental"]}),
        ),
        rule(
            "/components/schemas/OrderNumberIn",
            json!({"oneOf": [
                {"properties": {"kind": {"const": "verification"}, "hours": {"type": "null"}}},
                {"required": ["hours"], "properties": {"kind": {"const": "rental"}, "hours": {"type": "integer"}}},
            ]}),
        ),
        rule(
            "/components/schemas/SandboxSmsIn/properties/text",
            json!({"minLength": 1, "maxLength": SMS_MAX_CHARS}),
        ),
        // Billing.
        rule(
            "/components/schemas/CardIn/properties/source_id",
            json!({"maxLength": SOURCE_ID_MAX_BYTES, "pattern": source_id_pattern()}),
        ),
        rule(
            "/components/schemas/TopupIn/properties/amount",
            json!({"pattern": topup_amount_pattern()}),
        ),
        rule(
            "/components/schemas/AutoTopupIn/properties/amount",
            json!({"pattern": topup_amount_pattern()}),
        ),
        rule(
            "/components/schemas/AutoTopupIn/properties/threshold",
            json!({"pattern": threshold_pattern()}),
        ),
        // Webhooks.
        rule("/components/schemas/EndpointIn/properties/url", url.clone()),
        rule(
            "/components/schemas/EndpointIn/properties/events",
            events.clone(),
        ),
        rule(
            "/components/schemas/EndpointIn/properties/description",
            description.clone(),
        ),
        rule("/components/schemas/EndpointPatchIn/properties/url", url),
        rule(
            "/components/schemas/EndpointPatchIn/properties/events",
            events,
        ),
        rule(
            "/components/schemas/EndpointPatchIn/properties/description",
            description,
        ),
        // Sandbox.
        rule(
            "/components/schemas/AdvanceIn/properties/seconds",
            json!({"minimum": 0, "maximum": MAX_ADVANCE_SECS}),
        ),
        rule(
            "/components/schemas/AdvanceIn/properties/to",
            json!({"format": "date-time", "pattern": clock_time_pattern()}),
        ),
        rule(
            "/components/schemas/ExtendIn/properties/days",
            json!({"minimum": 1, "maximum": MAX_EXTEND_DAYS}),
        ),
        rule(
            "/components/schemas/ExtendIn/properties/comment",
            json!({"maxLength": crate::routes::lines::EXTEND_COMMENT_MAX_CHARS}),
        ),
        rule(
            "/components/schemas/SubscribeIn/properties/interval",
            json!({"enum": ["month", "year"]}),
        ),
        rule(
            "/components/schemas/SubscribeIn/properties/payment_method",
            json!({"minLength": 1, "maxLength": 255}),
        ),
        // Invoices for days: channel-months or days, one of them.
        rule(
            "/components/schemas/CreateInvoiceIn/properties/channels",
            json!({"minimum": 1, "maximum": MAX_INVOICE_DAYS / DAYS_PER_CHANNEL}),
        ),
        rule(
            "/components/schemas/CreateInvoiceIn/properties/days",
            json!({"minimum": 1, "maximum": MAX_INVOICE_DAYS}),
        ),
        rule(
            "/components/schemas/CreateInvoiceIn",
            json!({"oneOf": [
                {"required": ["channels"], "properties": {"channels": {"type": "integer"}, "days": {"type": "null"}}},
                {"required": ["days"], "properties": {"days": {"type": "integer"}, "channels": {"type": "null"}}},
            ]}),
        ),
        rule(
            "/components/schemas/AdvanceIn",
            json!({"oneOf": [
                {"required": ["seconds"], "properties": {"seconds": {"type": "integer"}, "to": {"type": "null"}}},
                {"required": ["to"], "properties": {"to": {"type": "string"}, "seconds": {"type": "null"}}},
            ]}),
        ),
        rule(
            "/components/schemas/ScanIn/properties/phone_number",
            e164.clone(),
        ),
        rule(
            "/components/schemas/InboundIn/properties/from",
            e164.clone(),
        ),
        rule(
            "/components/schemas/PairCodeIn/properties/phone_number",
            e164,
        ),
        rule("/components/schemas/InboundIn/properties/text", text),
        rule(
            "/components/schemas/InboundIn/properties/type",
            json!({"enum": message_kinds()}),
        ),
        // A text message needs its text; media may come without a caption.
        rule(
            "/components/schemas/InboundIn",
            json!({"anyOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {"required": ["type"], "properties": {"type": {"type": "string", "not": {"const": "text"}}}},
            ]}),
        ),
        // A POST that takes nothing refuses any field (its hand-written Deserialize).
        rule(
            "/components/schemas/EmptyIn",
            json!({"additionalProperties": false}),
        ),
        rule(
            "/components/schemas/FailNextIn/properties/count",
            json!({"minimum": 0, "maximum": FAIL_NEXT_MAX}),
        ),
    ]
}

/// Analytics `dimensions`: Meta's names, comma-separated.
pub fn dimensions_pattern() -> String {
    let one = "(?:COUNTRY|PRICING_CATEGORY|PRICING_TYPE|TIER)";
    format!("^{one}(?:,{one})*$")
}

/// The `limit` query parameter of every list.
pub fn limit_schema() -> Value {
    json!({"minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
}

/// The `Idempotency-Key` header parameter of every authenticated POST.
pub fn idempotency_key_parameter() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes the request safe to retry: the first answer that did something is replayed to repeats for 24 h; the same key with another request is 422 `idempotency_key_reused`.",
        "schema": {
            "type": "string",
            "minLength": KEY_MIN_LEN,
            "maxLength": KEY_MAX_LEN,
            "pattern": idempotency_key_pattern(),
        },
    })
}

/// Writes every rule into `doc`.
pub(super) fn apply(doc: &mut Value) {
    for Rule { at, keywords } in rules() {
        let target = doc.pointer_mut(at).and_then(Value::as_object_mut);
        debug_assert!(target.is_some(), "no schema at {at}");
        if let (Some(target), Value::Object(keywords)) = (target, keywords) {
            target.extend(keywords);
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let params = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in params.into_iter().flatten() {
            let keywords = match (p["in"].as_str(), p["name"].as_str()) {
                (Some("query"), Some("limit")) => limit_schema(),
                (Some("query"), Some("granularity")) => json!({"enum": ["DAILY", "MONTHLY"]}),
                (Some("query"), Some("dimensions")) => json!({"pattern": dimensions_pattern()}),
                (Some("query"), Some("start" | "end")) => json!({"format": "date-time"}),
                (Some("query"), Some("service")) => json!({"enum": number_services()}),
                (Some("query"), Some("country")) => json!({"enum": number_countries()}),
                _ => continue,
            };
            if let (Some(schema), Value::Object(k)) =
                (p.get_mut("schema").and_then(Value::as_object_mut), keywords)
            {
                schema.extend(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::string::string_regex;
    use regex::Regex;
    use wagate_app::billing::wallet::validate_topup_amount;
    use wagate_domain::line::{validate_e164, validate_text};
    use wagate_domain::money::Micros;
    use wagate_domain::webhook::address::parse_endpoint_url;

    use crate::idempotency::valid_key;

    /// What a document pattern admits, for generating values from it.
    fn values(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
        let inner = pattern.trim_start_matches('^').trim_end_matches('$');
        string_regex(inner).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    /// Each bound the document states is the constant its validator checks.
    #[test]
    fn every_stated_bound_is_its_validators_constant() {
        let doc = super::super::document();
        let at = |p: &str| {
            doc.pointer(&format!("/components/schemas/{p}"))
                .unwrap_or_else(|| panic!("nothing at {p}"))
                .clone()
        };
        for schema in ["CreateLineIn", "UpdateLineIn"] {
            let p = |rest: &str| at(&format!("{schema}/properties/{rest}"));
            assert_eq!(p("label/maxLength"), LABEL_MAX_CHARS);
            assert_eq!(p("metadata/propertyNames/minLength"), 1);
            assert_eq!(
                p("metadata/propertyNames/maxLength"),
                METADATA_MAX_KEY_CHARS
            );
            assert_eq!(
                p("metadata/additionalProperties/maxLength"),
                METADATA_MAX_VALUE_CHARS
            );
        }
        assert_eq!(
            at("CreateLineIn/properties/metadata/maxProperties"),
            METADATA_MAX_KEYS
        );
        for (schema, field) in [
            ("SendIn", "to"),
            ("InboundIn", "from"),
            ("ScanIn", "phone_number"),
            ("PairCodeIn", "phone_number"),
            ("PlaceCallIn", "to"),
            ("IncomingCallIn", "from"),
        ] {
            assert_eq!(
                at(&format!("{schema}/properties/{field}/pattern")),
                e164_pattern()
            );
        }
        assert_eq!(
            at("InboundIn/properties/type/enum")
                .as_array()
                .unwrap()
                .len(),
            wagate_domain::line::MessageKind::INBOUND.len() + 1
        );
        for schema in ["SendIn", "InboundIn"] {
            assert_eq!(at(&format!("{schema}/properties/text/minLength")), 1);
            assert_eq!(
                at(&format!("{schema}/properties/text/maxLength")),
                TEXT_MAX_CHARS
            );
            assert_eq!(
                at(&format!("{schema}/properties/text/pattern")),
                not_blank_pattern()
            );
        }
        for p in ["TopupIn/properties/amount", "AutoTopupIn/properties/amount"] {
            assert_eq!(at(&format!("{p}/pattern")), topup_amount_pattern());
        }
        assert_eq!(
            at("AutoTopupIn/properties/threshold/pattern"),
            threshold_pattern()
        );
        assert_eq!(
            at("CardIn/properties/source_id/maxLength"),
            SOURCE_ID_MAX_BYTES
        );
        let mut event_types = vec!["*"];
        event_types.extend(EVENT_TYPES);
        for schema in ["EndpointIn", "EndpointPatchIn"] {
            let p = |rest: &str| at(&format!("{schema}/properties/{rest}"));
            assert_eq!(p("url/maxLength"), MAX_URL_LEN);
            assert_eq!(p("url/pattern"), url_pattern());
            assert_eq!(p("events/items/enum"), json!(event_types));
            assert_eq!(p("events/minItems"), 1);
            assert_eq!(p("description/maxLength"), ENDPOINT_DESCRIPTION_MAX_CHARS);
        }
        assert_eq!(at("AdvanceIn/properties/seconds/minimum"), 0);
        assert_eq!(at("AdvanceIn/properties/seconds/maximum"), MAX_ADVANCE_SECS);
        assert_eq!(at("FailNextIn/properties/count/maximum"), FAIL_NEXT_MAX);
        assert_eq!(
            at("OrderNumberIn/properties/service/enum"),
            json!(wagate_app::numbers::services().collect::<Vec<_>>())
        );
        assert_eq!(
            at("OrderNumberIn/properties/hours/maximum"),
            wagate_domain::number::MAX_RENTAL_HOURS
        );
        assert_eq!(at("SandboxSmsIn/properties/text/maxLength"), SMS_MAX_CHARS);

        let (mut lists, mut posts) = (0, 0);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let find = |name: &str| params.iter().find(|p| p["name"] == name).cloned();
                if let Some(limit) = find("limit") {
                    lists += 1;
                    assert_eq!(limit["schema"]["minimum"], 1, "{path}");
                    assert_eq!(limit["schema"]["maximum"], MAX_LIMIT, "{path}");
                    assert_eq!(limit["schema"]["default"], DEFAULT_LIMIT, "{path}");
                }
                if method == "post" && op.get("security").is_some() {
                    posts += 1;
                    let key = find("Idempotency-Key").unwrap_or_else(|| panic!("{path}"));
                    assert_eq!(key["schema"]["minLength"], KEY_MIN_LEN, "{path}");
                    assert_eq!(key["schema"]["maxLength"], KEY_MAX_LEN, "{path}");
                    assert_eq!(key["schema"]["pattern"], idempotency_key_pattern());
                }
            }
        }
        assert_eq!(
            (lists, posts),
            (8, 35),
            "every list and every authenticated POST"
        );
    }

    /// The E.164 pattern and `validate_e164` agree both ways.
    #[test]
    fn the_e164_pattern_is_exactly_the_validator() {
        let re = Regex::new(&e164_pattern()).unwrap();
        for n in [
            "+447700900123",
            "+1234567",
            "+12345678",
            "+123456789012345",
            "+1234567890123456",
            "+0123456789",
            "447700900123",
            "+44 7700 900123",
            "+4477009001a3",
            "",
            "+",
        ] {
            assert_eq!(re.is_match(n), validate_e164("to", n).is_ok(), "{n:?}");
        }
    }

    proptest! {
        #[test]
        fn top_ups_the_pattern_admits_are_accepted(s in values(&topup_amount_pattern())) {
            let m = Micros::parse(&s).unwrap();
            prop_assert!(validate_topup_amount("amount", m).is_ok(), "{}", s);
        }

        #[test]
        fn thresholds_the_pattern_admits_are_accepted(s in values(&threshold_pattern())) {
            // `BillingService::set_auto_topup`'s check.
            let m = Micros::parse(&s).unwrap();
            prop_assert!(m.0 >= 0 && m <= TOPUP_MAX, "{}", s);
        }

        #[test]
        fn numbers_the_pattern_admits_are_accepted(s in values(&e164_pattern())) {
            prop_assert!(validate_e164("to", &s).is_ok(), "{}", s);
        }

        #[test]
        fn texts_the_pattern_admits_are_accepted(
            (a, c, b) in ("\\PC{0,20}", values(&not_blank_pattern()), "\\s{0,3}")
        ) {
            let text = format!("{a}{c}{b}");
            prop_assert!(validate_text(&text).is_ok(), "{:?}", text);
        }

        #[test]
        fn urls_the_pattern_admits_are_accepted(s in values(&url_pattern())) {
            prop_assume!(s.chars().count() <= MAX_URL_LEN);
            let url = parse_endpoint_url(&s);
            prop_assert!(url.is_ok(), "{:?}: {:?}", s, url);
        }

        #[test]
        fn times_the_pattern_admits_are_read_by_the_clock(
            (y, mo, d, h, mi, sec) in (0..=9000u32, 1..=12u32, 1..=28u32, 0..24u32, 0..60u32, 0..60u32),
            frac in "(\\.[0-9]{1,9})?",
            offset in "Z|[+-](0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]",
        ) {
            // Every RFC 3339 time (`format: date-time`) the pattern admits.
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}{offset}");
            prop_assert!(Regex::new(&clock_time_pattern()).unwrap().is_match(&s), "{}", s);
            prop_assert!(s.parse::<jiff::Timestamp>().is_ok(), "{}", s);
        }

        #[test]
        fn keys_the_pattern_admits_are_accepted(s in values(&idempotency_key_pattern())) {
            prop_assume!((KEY_MIN_LEN..=KEY_MAX_LEN).contains(&s.chars().count()));
            prop_assert!(valid_key(&s), "{:?}", s);
        }

        #[test]
        fn nonces_the_pattern_admits_fit(s in values(&source_id_pattern())) {
            // `BillingService::add_card`'s check, before the processor sees it.
            prop_assert!(!s.trim().is_empty() && s.len() <= SOURCE_ID_MAX_BYTES, "{:?}", s);
        }
    }
}
