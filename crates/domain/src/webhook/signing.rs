//! Standard Webhooks signing (<https://www.standardwebhooks.com>).
//!
//! A secret is `whsec_` followed by the standard base64 (with padding) of the raw HMAC key.
//! A signature is `v1,` followed by the base64 of HMAC-SHA256(key, `"{msg_id}.{timestamp}.{body}"`),
//! where the body is the exact bytes sent. During a rotation a delivery carries one signature per
//! live secret, space-separated in the `webhook-signature` header; a verifier accepts the message
//! if any of them matches its own secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The text every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest key bytes a secret may have (the specification's minimum).
pub const MIN_SECRET_BYTES: usize = 24;
/// The most key bytes a secret may have (the specification's maximum).
pub const MAX_SECRET_BYTES: usize = 64;
/// How many key bytes [`SigningSecret::generate`] draws.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// The header carrying the message id (the event id, the same on every attempt).
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the attempt's wall-clock time in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the signatures (see [`signature_header`]).
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// An account's webhook signing secret: the raw HMAC key.
///
/// Its `Debug` output never shows the key; [`SigningSecret::to_text`] is the only way out.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
}

/// Why a secret's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    /// The text does not start with `whsec_`.
    #[error("a webhook secret starts with \"whsec_\"")]
    MissingPrefix,
    /// The part after `whsec_` is not standard base64 with padding.
    #[error("a webhook secret is \"whsec_\" followed by standard base64")]
    NotBase64,
    /// The key is shorter than 24 or longer than 64 bytes.
    #[error("a webhook secret's key must be 24 to 64 bytes long, not {0}")]
    WrongLength(usize),
}

impl SigningSecret {
    /// A fresh secret of 32 bytes from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    /// Reads a secret written as `whsec_` + standard base64 of 24 to 64 key bytes.
    pub fn parse(s: &str) -> Result<Self, InvalidSecret> {
        let encoded = s
            .strip_prefix(SECRET_PREFIX)
            .ok_or(InvalidSecret::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| InvalidSecret::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(InvalidSecret::WrongLength(key.len()));
        }
        Ok(Self { key })
    }

    /// The secret as text (`whsec_…`), as shown to the account and stored; [`Self::parse`]
    /// reads it back.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// One signature, `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_secs}.{body}">`, over the
    /// exact body bytes.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts a key of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

impl PartialEq for SigningSecret {
    /// Compares in time independent of where the keys differ.
    fn eq(&self, other: &Self) -> bool {
        self.key.len() == other.key.len()
            && self
                .key
                .iter()
                .zip(&other.key)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Eq for SigningSecret {}

/// The value of the `webhook-signature` header: one `v1,…` per secret, space-separated, in the
/// order given.
pub fn signature_header(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};
    use standardwebhooks::Webhook;

    /// The vector from the standardwebhooks crate's own test suite.
    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TS: i64 = 1649367553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    /// The verifier checks the timestamp against its own wall clock (±5 min), so a test that
    /// hands it a message must sign with the real time.
    fn wall_clock_secs() -> i64 {
        SystemClock.now().as_second()
    }

    fn headers(msg_id: &str, ts: i64, signature: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(HEADER_ID, msg_id.parse().expect("test header"));
        h.insert(
            HEADER_TIMESTAMP,
            ts.to_string().parse().expect("test header"),
        );
        h.insert(HEADER_SIGNATURE, signature.parse().expect("test header"));
        h
    }

    #[test]
    fn the_published_vector_signs_to_the_published_signature() {
        let secret = SigningSecret::parse(VECTOR_SECRET).expect("valid secret");
        assert_eq!(
            secret.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY),
            VECTOR_SIGNATURE
        );
        let theirs = Webhook::new(VECTOR_SECRET).expect("valid secret");
        assert_eq!(
            theirs
                .sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY)
                .expect("utf-8"),
            VECTOR_SIGNATURE
        );
    }

    #[test]
    fn the_signature_is_a_plain_hmac_of_id_timestamp_and_body() {
        let secret = SigningSecret::parse(VECTOR_SECRET).expect("valid secret");
        let key = STANDARD
            .decode(&VECTOR_SECRET["whsec_".len()..])
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(format!("{VECTOR_ID}.{VECTOR_TS}.").as_bytes());
        mac.update(VECTOR_BODY);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(secret.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY), expected);
    }

    #[test]
    fn standardwebhooks_accepts_our_signature_on_a_generated_secret() {
        let secret = SigningSecret::generate();
        let ts = wall_clock_secs();
        let body = br#"{"id":"evt_1","type":"webhook.test","data":{}}"#;
        let header = signature_header(&[&secret], "evt_1", ts, body);
        let verifier = Webhook::new(&secret.to_text()).expect("our text is a valid secret");
        verifier
            .verify(body, &headers("evt_1", ts, &header))
            .expect("standardwebhooks accepts our signature");
    }

    #[test]
    fn standardwebhooks_accepts_a_two_signature_header_when_only_the_second_secret_is_theirs() {
        let old = SigningSecret::generate();
        let new = SigningSecret::generate();
        let ts = wall_clock_secs();
        let body = br#"{"id":"evt_2","type":"line.ready","data":{"line":{}}}"#;
        let header = signature_header(&[&old, &new], "evt_2", ts, body);
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(
            header,
            format!(
                "{} {}",
                old.sign("evt_2", ts, body),
                new.sign("evt_2", ts, body)
            )
        );
        let verifier = Webhook::new(&new.to_text()).expect("valid secret");
        verifier
            .verify(body, &headers("evt_2", ts, &header))
            .expect("the second signature matches");
    }

    #[test]
    fn standardwebhooks_rejects_a_tampered_body_a_wrong_secret_and_a_changed_id() {
        let secret = SigningSecret::generate();
        let ts = wall_clock_secs();
        let body = br#"{"id":"evt_3","amount":"10.00"}"#;
        let header = signature_header(&[&secret], "evt_3", ts, body);
        let verifier = Webhook::new(&secret.to_text()).expect("valid secret");

        let tampered = br#"{"id":"evt_3","amount":"99.00"}"#;
        assert!(verifier
            .verify(tampered, &headers("evt_3", ts, &header))
            .is_err());
        assert!(verifier
            .verify(body, &headers("evt_4", ts, &header))
            .is_err());
        let stranger = Webhook::new(&SigningSecret::generate().to_text()).expect("valid secret");
        assert!(stranger
            .verify(body, &headers("evt_3", ts, &header))
            .is_err());
    }

    #[test]
    fn the_body_is_signed_as_raw_bytes() {
        let secret = SigningSecret::generate();
        let a = secret.sign("evt_1", 1, b"{\"a\":1}");
        let b = secret.sign("evt_1", 1, b"{\"a\": 1}");
        assert_ne!(a, b, "a single byte of whitespace changes the signature");
        // Bytes that are not UTF-8 are signed too (verifiers that insist on UTF-8 aside).
        let c = secret.sign("evt_1", 1, &[0xff, 0xfe]);
        assert!(c.starts_with("v1,"));
    }

    #[test]
    fn an_empty_secret_list_gives_an_empty_header() {
        assert_eq!(signature_header(&[], "evt_1", 1, b"{}"), "");
    }

    #[test]
    fn a_secret_round_trips_through_its_text() {
        for _ in 0..16 {
            let secret = SigningSecret::generate();
            let text = secret.to_text();
            assert!(text.starts_with("whsec_"));
            assert_eq!(SigningSecret::parse(&text), Ok(secret.clone()));
        }
        assert_eq!(
            SigningSecret::parse(VECTOR_SECRET)
                .expect("valid")
                .to_text(),
            VECTOR_SECRET
        );
    }

    #[test]
    fn generated_secrets_are_32_bytes_and_differ() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_eq!(a.key.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let secret = SigningSecret::parse(VECTOR_SECRET).expect("valid");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("C2FVsBQI"), "{shown}");
        assert_eq!(shown, "SigningSecret(<redacted>)");
    }

    #[test]
    fn parse_refuses_text_that_is_not_a_secret() {
        use InvalidSecret::*;
        let cases: &[(&str, InvalidSecret)] = &[
            ("", MissingPrefix),
            ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", MissingPrefix),
            ("WHSEC_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", MissingPrefix),
            ("whsec_not base64!", NotBase64),
            // URL-safe alphabet is not standard base64.
            ("whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD", NotBase64),
            (" whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", MissingPrefix),
            ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n", NotBase64),
            ("whsec_", WrongLength(0)),
        ];
        for (text, want) in cases {
            assert_eq!(SigningSecret::parse(text), Err(*want), "{text:?}");
        }
        let unpadded = format!("whsec_{}", STANDARD.encode([7u8; 32]).trim_end_matches('='));
        assert_eq!(SigningSecret::parse(&unpadded), Err(NotBase64));
        let too_short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert_eq!(SigningSecret::parse(&too_short), Err(WrongLength(23)));
        let too_long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(SigningSecret::parse(&too_long), Err(WrongLength(65)));
    }

    #[test]
    fn parse_accepts_24_and_64_byte_keys() {
        for len in [24usize, 64] {
            let text = format!("whsec_{}", STANDARD.encode(vec![1u8; len]));
            assert!(SigningSecret::parse(&text).is_ok(), "{len}");
        }
    }
}
