//! Accounts and their API keys.
//!
//! A key is shown once, at creation; only its SHA-256 digest is stored. Keys carry 256 random
//! bits, so a fast digest is enough: there is nothing to brute-force.

use crate::ids::{random_base62, AccountId, ApiKeyId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Whether a key (and the server that issued it) works against real money and WhatsApp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// Production: `wg_live_…`.
    Live,
    /// Sandbox: `wg_test_…`.
    Test,
}

impl KeyMode {
    /// The key text prefix for this mode.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyMode::Live => "wg_live_",
            KeyMode::Test => "wg_test_",
        }
    }

    /// The stored name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::Live => "live",
            KeyMode::Test => "test",
        }
    }

    /// Reads a stored mode name.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "live" => Some(KeyMode::Live),
            "test" => Some(KeyMode::Test),
            _ => None,
        }
    }
}

/// A freshly minted key: the secret (to show once) and what is stored of it.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key's public id.
    pub id: ApiKeyId,
    /// The full secret, e.g. `wg_test_3kT…`. Never stored.
    pub secret: String,
    /// Hex SHA-256 of the secret: what the store keeps and looks up by.
    pub hash: String,
    /// The first characters of the secret, kept so a user can tell keys apart.
    pub hint: String,
    /// The key's mode.
    pub mode: KeyMode,
}

/// Random characters in a key: 43 base-62 characters carry more than 256 bits.
const KEY_RANDOM_LEN: usize = 43;

impl NewApiKey {
    /// Mints a new random key of `mode`.
    pub fn generate(mode: KeyMode) -> Self {
        let secret = format!("{}{}", mode.prefix(), random_base62(KEY_RANDOM_LEN));
        let hash = hash_api_key(&secret);
        let hint = secret.chars().take(mode.prefix().len() + 4).collect();
        Self {
            id: ApiKeyId::generate(),
            secret,
            hash,
            hint,
            mode,
        }
    }
}

/// The stored digest of a presented key.
pub fn hash_api_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `s` has the shape of a wagate key at all (saves a store lookup for garbage).
pub fn looks_like_api_key(s: &str) -> bool {
    (s.starts_with(KeyMode::Live.prefix()) || s.starts_with(KeyMode::Test.prefix()))
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A business: one wallet, its keys, its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's id.
    pub id: AccountId,
    /// The business's name.
    pub name: String,
    /// Whether the calling rollout is on for this account.
    pub calling_enabled: bool,
    /// Whether this is a sandbox account.
    pub mode: KeyMode,
    /// When it was created (business time).
    pub created_at: Timestamp,
}

/// What is known of an API key after creation (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// The key's id.
    pub id: ApiKeyId,
    /// The owning account.
    pub account_id: AccountId,
    /// The first characters of the secret.
    pub hint: String,
    /// The key's mode.
    pub mode: KeyMode,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Why an account name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to 200 characters")]
pub struct InvalidAccountName;

/// Validates and trims an account name.
pub fn parse_account_name(name: &str) -> Result<String, InvalidAccountName> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(InvalidAccountName);
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_their_mode_prefix_and_enough_entropy() {
        let k = NewApiKey::generate(KeyMode::Test);
        assert!(k.secret.starts_with("wg_test_"));
        assert_eq!(k.secret.len(), 8 + KEY_RANDOM_LEN);
        assert!(looks_like_api_key(&k.secret));
        assert_eq!(hash_api_key(&k.secret), k.hash);
        assert!(!k.hash.contains(&k.secret[8..]));
        assert_ne!(NewApiKey::generate(KeyMode::Live).secret, k.secret);
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(!looks_like_api_key("Bearer"));
        assert!(!looks_like_api_key("wg_test_a b"));
        assert!(!looks_like_api_key(&format!("wg_test_{}", "a".repeat(200))));
    }

    #[test]
    fn account_names_are_trimmed_and_bounded() {
        assert_eq!(parse_account_name("  Acme ").unwrap(), "Acme");
        assert!(parse_account_name("   ").is_err());
        assert!(parse_account_name(&"x".repeat(201)).is_err());
        assert!(parse_account_name("a\u{0}b").is_err());
    }
}
