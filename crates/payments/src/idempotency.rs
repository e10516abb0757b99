//! Fitting our idempotency keys into the processor's limit.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The longest idempotency key Square accepts (`CreatePayment`, `CreateCard`: "Max: 45
/// characters"; fewer if multi-byte characters are used).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 45;

/// Marks a key that was replaced by its digest.
const DIGEST_PREFIX: &str = "h_";

/// The idempotency key sent to the processor for our `key`.
///
/// An ASCII key of at most [`MAX_IDEMPOTENCY_KEY_LEN`] bytes is sent unchanged. Any other key
/// is replaced by `h_` followed by the unpadded base64url SHA-256 of the key (2 + 43 = 45
/// characters): stable across processes and restarts, so a retry or a resolve of the same
/// attempt always reaches the same payment, and distinct keys stay distinct.
pub fn processor_idempotency_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_IDEMPOTENCY_KEY_LEN && key.is_ascii() {
        Cow::Borrowed(key)
    } else {
        let digest = Sha256::digest(key.as_bytes());
        Cow::Owned(format!("{DIGEST_PREFIX}{}", URL_SAFE_NO_PAD.encode(digest)))
    }
}

/// A key for a secondary request made on behalf of `key` (e.g. creating the customer before
/// the card), distinct from `key` itself and from other purposes.
pub(crate) fn derived_key(purpose: &str, key: &str) -> String {
    processor_idempotency_key(&format!("{purpose}:{key}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ascii_keys_are_sent_unchanged() {
        assert_eq!(processor_idempotency_key("pay_123"), "pay_123");
        let exactly = "k".repeat(MAX_IDEMPOTENCY_KEY_LEN);
        assert_eq!(processor_idempotency_key(&exactly), exactly.as_str());
    }

    #[test]
    fn long_keys_are_shortened_stably_and_distinctly() {
        let a = "line_charge:line_0123456789abcdefghijklmn:period:0007:attempt:1";
        let b = "line_charge:line_0123456789abcdefghijklmn:period:0007:attempt:2";
        let ka = processor_idempotency_key(a);
        assert_eq!(ka.len(), MAX_IDEMPOTENCY_KEY_LEN);
        assert!(ka.starts_with(DIGEST_PREFIX));
        assert_eq!(ka, processor_idempotency_key(a));
        assert_ne!(ka, processor_idempotency_key(b));
        assert!(ka
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
    }

    #[test]
    fn non_ascii_keys_are_hashed_even_when_short() {
        let k = processor_idempotency_key("clé");
        assert_eq!(k.len(), MAX_IDEMPOTENCY_KEY_LEN);
    }

    #[test]
    fn derived_keys_differ_from_the_key_and_fit() {
        let d = derived_key("customer", "pay_1");
        assert_ne!(d, "pay_1");
        assert_eq!(d, "customer:pay_1");
        let long = derived_key("customer", &"x".repeat(60));
        assert_eq!(long.len(), MAX_IDEMPOTENCY_KEY_LEN);
        assert_eq!(long, derived_key("customer", &"x".repeat(60)));
    }
}
