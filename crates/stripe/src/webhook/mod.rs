//! Stripe's webhooks: the `Stripe-Signature` check and the parsing of an event.
//!
//! Stripe signs each delivery with `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`
//! where each `v1` is the hex HMAC-SHA256, keyed by the endpoint's signing secret
//! (`whsec_…`), of `"{t}.{raw body}"`. There can be several `v1` (one per active secret while
//! a secret is rolled); any match passes. Other schemes (`v0`) are ignored. The timestamp is
//! signed too, so refusing old timestamps stops replays. Check the exact bytes received,
//! before parsing.

mod event;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use event::{parse_event, EventError, EventObject, StripeEvent};

/// The header Stripe signs deliveries with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// The tolerance Stripe's libraries use by default: five minutes either way.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=…,v1=…` (an element without `=`, no or several `t`, a `t` that
    /// is not a number).
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    /// The header has no `v1` signature (only other schemes, or none).
    #[error("the Stripe-Signature header has no v1 signature")]
    NoSignature,
    /// The signed timestamp is further from now than the tolerance (a replay, or a clock
    /// far off).
    #[error(
        "the signature's timestamp {timestamp} is more than {tolerance_secs} s from now ({now})"
    )]
    TimestampOutsideTolerance {
        /// The header's `t`.
        timestamp: i64,
        /// The time it was checked at.
        now: i64,
        /// The tolerance used.
        tolerance_secs: i64,
    },
    /// No `v1` is the signature of this payload with this secret.
    #[error("no v1 signature matches the payload")]
    Mismatch,
    /// The configured secret is empty: nothing can be verified against it.
    #[error("the webhook signing secret is empty")]
    EmptySecret,
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; the fallback only
    // keeps this path free of panics.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The `v1` signature of `payload` at `timestamp`: 64 lowercase hex digits.
pub fn signature_v1(payload: &[u8], secret: &str, timestamp: i64) -> String {
    hex::encode(mac(secret, timestamp, payload).finalize().into_bytes())
}

/// The `Stripe-Signature` value Stripe would send for `payload` at `timestamp`:
/// `t={timestamp},v1={hex}`. For tests and for the fake.
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        signature_v1(payload, secret, timestamp)
    )
}

/// Checks a delivery: `header` is the `Stripe-Signature` value, `payload` the raw body,
/// `secret` the endpoint's signing secret, `now_unix` the current time from the caller's
/// clock, and `tolerance_secs` how far the signed timestamp may be from it, either way
/// ([`DEFAULT_TOLERANCE_SECS`]).
///
/// Passes when any `v1` matches (compared in constant time). The timestamp is checked before
/// the signatures, as Stripe's libraries do, but only a matching signature proves it.
pub fn verify_signature(
    payload: &[u8],
    header: &str,
    secret: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(',') {
        let element = element.trim();
        let Some((key, value)) = element.split_once('=') else {
            return Err(SignatureError::MalformedHeader(
                "an element is not key=value",
            ));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedHeader("more than one t"));
                }
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::MalformedHeader("t is not a number"))?;
                timestamp = Some(t);
            }
            // A v1 that is not 32 hex-encoded bytes cannot match; skipping it lets another v1
            // (from a second secret) still pass.
            "v1" => signatures.push(hex::decode(value).ok().filter(|s| s.len() == 32)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader("no t"))?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let tolerance_secs = tolerance_secs.max(0);
    if now_unix.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::TimestampOutsideTolerance {
            timestamp,
            now: now_unix,
            tolerance_secs,
        });
    }
    let expected = mac(secret, timestamp, payload);
    let matched = signatures
        .iter()
        .flatten()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_hmac_sha256_of_t_dot_payload() {
        // HMAC-SHA256("secret", "test") from a published vector; here the signed payload is
        // "{t}.{body}", so t=1 and body "x" sign "1.x".
        assert_eq!(
            hex::encode(
                <Hmac<Sha256> as Mac>::new_from_slice(b"secret")
                    .unwrap()
                    .chain_update(b"test")
                    .finalize()
                    .into_bytes()
            ),
            "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        );
        let direct = hex::encode(
            <Hmac<Sha256> as Mac>::new_from_slice(b"whsec_1")
                .unwrap()
                .chain_update(b"1.x")
                .finalize()
                .into_bytes(),
        );
        assert_eq!(signature_v1(b"x", "whsec_1", 1), direct);
        assert_eq!(sign(b"x", "whsec_1", 1), format!("t=1,v1={direct}"));
    }

    #[test]
    fn odd_headers_are_refused_without_panicking() {
        let p = b"{}";
        for header in [
            "",
            "garbage",
            "t=",
            "t=abc,v1=00",
            "v1=00",
            "t=1,t=1,v1=00",
            "t=1,,v1=00",
        ] {
            assert!(
                matches!(
                    verify_signature(p, header, "s", 1, 300),
                    Err(SignatureError::MalformedHeader(_))
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            verify_signature(p, "t=1,v0=abcd", "s", 1, 300),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            verify_signature(p, "t=1,v1=zz", "s", 1, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(p, &sign(p, "", 1), "", 1, 300),
            Err(SignatureError::EmptySecret)
        );
        // Extreme values must not overflow.
        assert!(matches!(
            verify_signature(p, &sign(p, "s", i64::MIN), "s", i64::MAX, i64::MAX),
            Err(SignatureError::TimestampOutsideTolerance { .. })
        ));
    }
}
