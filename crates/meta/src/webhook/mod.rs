//! Meta's webhooks: the verification `GET`, the `X-Hub-Signature-256` check, and the
//! parsing of a delivery into typed notifications.
//!
//! Meta signs each `POST` with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
//! keyed by the app secret>`; the signature covers the exact bytes received, so check it
//! before parsing (and before any JSON re-encoding).

mod parse;
mod types;
mod wire;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use parse::{parse, ParseError};
pub use types::{
    InboundMessage, MessageStatus, MetaConversation, MetaErrorItem, MetaPricing, Notification,
    Referral, StatusUpdate, TierUpdate,
};

/// The header Meta signs deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const SIGNATURE_PREFIX: &str = "sha256=";

fn mac(app_secret: &[u8], raw_body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(app_secret)
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(raw_body);
    mac
}

/// The `X-Hub-Signature-256` value Meta sends for `raw_body`: `sha256=<64 hex digits>`.
pub fn sign(app_secret: &[u8], raw_body: &[u8]) -> String {
    let digest = mac(app_secret, raw_body).finalize().into_bytes();
    format!("{SIGNATURE_PREFIX}{}", hex::encode(digest))
}

/// Whether `header` (the `X-Hub-Signature-256` value, if any) is Meta's signature of
/// `raw_body` with `app_secret`.
///
/// Accepts only `sha256=` followed by exactly 64 hex digits; compares in constant time. An
/// empty app secret never verifies: an unconfigured secret must not let deliveries in.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.strip_prefix(SIGNATURE_PREFIX)) else {
        return false;
    };
    if app_secret.is_empty() || hex_digest.len() != 64 {
        return false;
    }
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    mac(app_secret, raw_body).verify_slice(&expected).is_ok()
}

/// Answers Meta's verification request (`GET` with `hub.mode=subscribe`, `hub.verify_token`,
/// `hub.challenge`): the challenge to echo back when the token is `verify_token`, else `None`
/// (answer 403).
///
/// `params` are the query's name–value pairs, e.g. `&HashMap<String, String>` or
/// `url::form_urlencoded::parse(query)`. An empty configured token never matches.
pub fn verify_challenge<K, V>(
    params: impl IntoIterator<Item = (K, V)>,
    verify_token: &str,
) -> Option<String>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (name, value) in params {
        let value = value.as_ref().to_owned();
        match name.as_ref() {
            "hub.mode" => mode = Some(value),
            "hub.verify_token" => token = Some(value),
            "hub.challenge" => challenge = Some(value),
            _ => {}
        }
    }
    if verify_token.is_empty() || mode.as_deref() != Some("subscribe") {
        return None;
    }
    // Compare MACs of both tokens, so the comparison takes the same time wherever they differ.
    let given = mac(b"hub.verify_token", token?.as_bytes()).finalize();
    let wanted = mac(b"hub.verify_token", verify_token.as_bytes()).finalize();
    (given == wanted).then_some(challenge?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn signatures_match_a_published_vector() {
        // HMAC-SHA256("secret", "test"), as in the whatsapp_sdk (Elixir) documentation.
        assert_eq!(
            sign(b"secret", b"test"),
            "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        );
    }

    #[test]
    fn only_the_right_signature_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = sign(b"app-secret", body);
        assert!(verify_signature(b"app-secret", body, Some(&good)));
        assert!(verify_signature(
            b"app-secret",
            body,
            Some(&good.to_uppercase().replace("SHA256=", "sha256="))
        ));
        assert!(!verify_signature(b"other", body, Some(&good)));
        assert!(!verify_signature(b"app-secret", b"{}", Some(&good)));
        assert!(!verify_signature(b"app-secret", body, None));
        assert!(!verify_signature(b"app-secret", body, Some(&good[7..])));
        assert!(!verify_signature(
            b"app-secret",
            body,
            Some(&format!("sha1={}", &good[7..]))
        ));
        assert!(!verify_signature(
            b"app-secret",
            body,
            Some(&good[..good.len() - 2])
        ));
        assert!(!verify_signature(
            b"app-secret",
            body,
            Some(&format!("{good}00"))
        ));
        assert!(!verify_signature(
            b"app-secret",
            body,
            Some(&format!("sha256={}", "zz".repeat(32)))
        ));
        assert!(!verify_signature(b"", body, Some(&sign(b"", body))));
    }

    #[test]
    fn the_challenge_is_echoed_only_for_the_configured_token() {
        let q = |mode: &str, token: &str| {
            HashMap::from([
                ("hub.mode".to_owned(), mode.to_owned()),
                ("hub.verify_token".to_owned(), token.to_owned()),
                ("hub.challenge".to_owned(), "1158201444".to_owned()),
            ])
        };
        assert_eq!(
            verify_challenge(&q("subscribe", "tok"), "tok"),
            Some("1158201444".to_owned())
        );
        assert_eq!(verify_challenge(&q("subscribe", "nope"), "tok"), None);
        assert_eq!(verify_challenge(&q("unsubscribe", "tok"), "tok"), None);
        assert_eq!(verify_challenge(&q("subscribe", ""), ""), None);
        let raw = "hub.mode=subscribe&hub.challenge=42&hub.verify_token=a%20b";
        assert_eq!(
            verify_challenge(url::form_urlencoded::parse(raw.as_bytes()), "a b"),
            Some("42".to_owned())
        );
        let no_challenge = [("hub.mode", "subscribe"), ("hub.verify_token", "tok")];
        assert_eq!(verify_challenge(no_challenge, "tok"), None);
    }
}
