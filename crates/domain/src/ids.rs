//! Opaque, typed, prefixed identifiers (`acct_…`, `line_…`, `evt_…`).
//!
//! Each kind of object has its own newtype so an event id can never be passed where an
//! account id is expected; [`parse`](AccountId::parse) checks the prefix once at the edge.

use rand::Rng;

use crate::clock::{Clock, SystemClock};

/// The alphabet of the random part: URL-safe and unambiguous in logs.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Characters after the prefix: a time part then a random part.
const RANDOM_LEN: usize = 24;
/// The time part: milliseconds since the Unix epoch in 8 base-62 digits (enough until the
/// year 8900).
const TIME_LEN: usize = 8;

/// Base-62 digits of the wall-clock milliseconds, zero-padded to [`TIME_LEN`], so ids of one
/// kind sort roughly by creation.
///
/// Only for the database's sake: a new row's id then lands at the right edge of its unique
/// index instead of on a random page of it, and a busy writer rewrites a few index pages
/// per commit instead of one per row (bench_lines: the WAL grew by ~40 KB per message with
/// fully random ids). Nothing reads the time back; business time is the injected clock.
fn time_base62() -> String {
    // The wall clock, not the injected one: a sandbox clock set years ahead or behind would
    // scatter new ids over the index again.
    let ms = SystemClock.now().as_millisecond().max(0);
    base62_fixed(ms as u128)
}

/// `n` in [`TIME_LEN`] base-62 digits, zero-padded: text order is number order.
fn base62_fixed(n: u128) -> String {
    let mut digits = [b'0'; TIME_LEN];
    let mut rest = n;
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(rest % 62) as usize];
        rest /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// Random base-62 text of `len` characters from the OS-seeded thread RNG.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct InvalidId {
    /// The prefix that was expected, e.g. `line`.
    pub kind: &'static str,
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The type prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: a time part (see `time_base62`) then 16 random base-62
            /// characters (~95 bits), so ids are unguessable and new ones sort last.
            pub fn generate() -> Self {
                Self(format!(
                    "{}_{}{}",
                    $prefix,
                    time_base62(),
                    random_base62(RANDOM_LEN - TIME_LEN)
                ))
            }

            /// Accepts `s` if it carries this kind's prefix and only id characters.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                let rest = s
                    .strip_prefix($prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .ok_or(InvalidId { kind: $prefix })?;
                if rest.is_empty()
                    || rest.len() > 64
                    || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(InvalidId { kind: $prefix });
                }
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

define_id!(
    /// An account: one business, one wallet, its API keys.
    AccountId, "acct");
define_id!(
    /// An API key's public identifier (the secret itself is never stored).
    ApiKeyId, "key");
define_id!(
    /// A WhatsApp line.
    LineId, "line");
define_id!(
    /// A message, inbound or outbound.
    MessageId, "msg");
define_id!(
    /// A call.
    CallId, "call");
define_id!(
    /// A webhook event.
    EventId, "evt");
define_id!(
    /// A webhook endpoint.
    EndpointId, "ep");
define_id!(
    /// A wallet transaction.
    TransactionId, "txn");
define_id!(
    /// An invoice.
    InvoiceId, "inv");
define_id!(
    /// A virtual number.
    NumberId, "num");
define_id!(
    /// A scheduled job.
    JobId, "job");
define_id!(
    /// A webhook delivery (one event to one endpoint).
    DeliveryId, "dlv");
define_id!(
    /// A card payment attempt (a top-up, or the card charge that funds a line charge).
    PaymentId, "pay");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_carry_their_prefix() {
        let id = LineId::generate();
        assert!(id.as_str().starts_with("line_"));
        assert_eq!(LineId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.as_str().len(), "line_".len() + RANDOM_LEN);
    }

    #[test]
    fn the_time_part_sorts_like_the_time() {
        let now: u128 = 1_796_000_000_000;
        for (a, b) in [(0, 1), (61, 62), (now, now + 1), (now - 62, now), (1, now)] {
            assert!(base62_fixed(a) < base62_fixed(b), "{a} < {b}");
            assert_eq!(base62_fixed(a).len(), TIME_LEN);
        }
        let id = MessageId::generate();
        let time = &id.as_str()["msg_".len().."msg_".len() + TIME_LEN];
        assert!(
            time >= base62_fixed(now).as_str(),
            "{id} has the current time first"
        );
    }

    #[test]
    fn wrong_prefix_or_characters_are_rejected() {
        assert!(LineId::parse("acct_abc").is_err());
        assert!(LineId::parse("line_").is_err());
        assert!(LineId::parse("line_a-b").is_err());
        assert!(LineId::parse("lineabc").is_err());
        assert!(AccountId::parse("acct_abc").is_ok());
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = EventId::parse("evt_123").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"evt_123\"");
        assert!(serde_json::from_str::<EventId>("\"line_1\"").is_err());
    }
}
