//! Sealing session values with the server key.
//!
//! Whoever reads a line's session can act as the customer's WhatsApp, so every value is
//! sealed before it reaches the database: AES-256-GCM under a key derived from
//! `WAGATE_SECRET_KEY` (HKDF-SHA256), with a fresh random nonce per write and the row's place
//! (line, kind, key id) as associated data, so a value copied to another row or another
//! line does not open. Keys are not stored in the clear either: a row is named by an
//! HMAC-SHA256 of its line, kind and key, and the key itself travels inside the sealed value.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wagate_domain::ids::LineId;

/// The environment variable holding the server key: 32 random bytes, base64.
pub const SECRET_KEY_ENV: &str = "WAGATE_SECRET_KEY";

/// What the key check value seals: a server that opens it holds the right key.
const CHECK_PLAINTEXT: &[u8] = b"wagate whatsapp sessions v1";
const CHECK_AAD: &[u8] = b"wagate/wa/key-check";
const NONCE_LEN: usize = 12;

/// Why a server key is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not 32 bytes of base64.
    #[error(
        "{SECRET_KEY_ENV} must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`): {0}"
    )]
    Malformed(String),
    /// The key does not open the sessions this database already holds.
    #[error(
        "{SECRET_KEY_ENV} is not the key the WhatsApp sessions in this database were sealed \
         with: start the server with the original key (linked lines would otherwise all need \
         a new scan)"
    )]
    WrongKey,
}

/// Why a stored value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupted WhatsApp session value ({kind}) of line {line}: {detail}")]
pub struct Corrupted {
    /// The line whose session it belongs to.
    pub line: String,
    /// What the value is.
    pub kind: String,
    /// What was wrong.
    pub detail: String,
}

/// The server key, expanded into a sealing key and a naming key.
#[derive(Clone)]
pub struct SealKey {
    aead: Aes256Gcm,
    names: Hmac<Sha256>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// The key from its base64 text (the value of `WAGATE_SECRET_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let secret: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed(format!("it decodes to {} bytes", bytes.len())))?;
        Ok(Self::from_bytes(&secret))
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"wagate/wa-sessions"), secret);
        let mut seal = [0u8; 32];
        let mut names = [0u8; 32];
        // Both lengths are far below HKDF's limit of 255 blocks: expand cannot fail.
        hk.expand(b"seal", &mut seal)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        hk.expand(b"names", &mut names)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        SealKey {
            aead: Aes256Gcm::new(&seal.into()),
            names: <Hmac<Sha256> as KeyInit>::new_from_slice(&names)
                .expect("HMAC takes keys of any length"),
        }
    }

    /// The check value to store beside the sessions: this key sealing a known text.
    pub fn check_value(&self) -> String {
        self.seal_raw(CHECK_AAD, CHECK_PLAINTEXT)
    }

    /// Whether `check` (a stored check value) was made with this key.
    pub fn verify_check(&self, check: &str) -> Result<(), KeyError> {
        match self.open_raw(CHECK_AAD, check) {
            Ok(text) if text == CHECK_PLAINTEXT => Ok(()),
            _ => Err(KeyError::WrongKey),
        }
    }

    /// The stored name of `key` of `kind` in `line`'s session.
    pub fn key_id(&self, line: &LineId, kind: &str, key: &str) -> String {
        let mut mac = self.names.clone();
        for part in [line.as_str(), kind, key] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Seals `key` and `value` for the row (`line`, `kind`, `key_id`).
    pub fn seal(&self, line: &LineId, kind: &str, key_id: &str, key: &str, value: &[u8]) -> String {
        let mut plain = Vec::with_capacity(4 + key.len() + value.len());
        plain.extend_from_slice(&(key.len() as u32).to_le_bytes());
        plain.extend_from_slice(key.as_bytes());
        plain.extend_from_slice(value);
        self.seal_raw(&aad(line, kind, key_id), &plain)
    }

    /// Opens the row (`line`, `kind`, `key_id`): its key and its value.
    pub fn open(
        &self,
        line: &LineId,
        kind: &str,
        key_id: &str,
        sealed: &str,
    ) -> Result<(String, Vec<u8>), Corrupted> {
        let corrupted = |detail: &str| Corrupted {
            line: line.to_string(),
            kind: kind.to_owned(),
            detail: detail.to_owned(),
        };
        let plain = self
            .open_raw(&aad(line, kind, key_id), sealed)
            .map_err(&corrupted)?;
        let (len, rest) = plain
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupted("too short"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(corrupted("key longer than the value"));
        }
        let (key, value) = rest.split_at(len);
        let key = String::from_utf8(key.to_vec()).map_err(|_| corrupted("key is not UTF-8"))?;
        Ok((key, value.to_vec()))
    }

    fn seal_raw(&self, aad: &[u8], plain: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .aead
            .encrypt(&nonce.into(), Payload { msg: plain, aad })
            .expect("AES-GCM seals any message shorter than 64 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    fn open_raw(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, &'static str> {
        let bytes = STANDARD.decode(sealed).map_err(|_| "not base64")?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err("too short");
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| "bad nonce")?;
        self.aead
            .decrypt(&nonce.into(), Payload { msg: body, aad })
            .map_err(|_| {
                "it does not open with the server key (altered, or moved from another row)"
            })
    }
}

fn aad(line: &LineId, kind: &str, key_id: &str) -> Vec<u8> {
    format!("wagate/wa/{line}/{kind}/{key_id}").into_bytes()
}

/// Cloud API access tokens are sealed like session values: to their line, under the server
/// key, so a token copied to another line's row does not open.
impl wagate_app::cloud::TokenSealer for SealKey {
    fn seal(&self, line: &LineId, token: &str) -> String {
        SealKey::seal(
            self,
            line,
            CLOUD_TOKEN_KIND,
            CLOUD_TOKEN_KIND,
            "",
            token.as_bytes(),
        )
    }

    fn open(&self, line: &LineId, sealed: &str) -> anyhow::Result<String> {
        let (_, value) = SealKey::open(self, line, CLOUD_TOKEN_KIND, CLOUD_TOKEN_KIND, sealed)?;
        Ok(String::from_utf8(value)?)
    }
}

/// The row kind a cloud line's access token is sealed under.
const CLOUD_TOKEN_KIND: &str = "cloud_access_token";

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn a_value_opens_only_in_its_own_row_with_its_own_key() {
        let k = key(1);
        let line = LineId::generate();
        let other = LineId::generate();
        let id = k.key_id(&line, "session", "123@s.whatsapp.net");
        let sealed = k.seal(&line, "session", &id, "123@s.whatsapp.net", b"ratchet");
        assert!(!sealed.contains("ratchet"));
        assert_eq!(
            k.open(&line, "session", &id, &sealed).unwrap(),
            ("123@s.whatsapp.net".to_owned(), b"ratchet".to_vec())
        );
        assert!(k.open(&other, "session", &id, &sealed).is_err());
        assert!(k.open(&line, "identity", &id, &sealed).is_err());
        assert!(key(2).open(&line, "session", &id, &sealed).is_err());
        // Names are stable per row and differ between lines, so contacts do not correlate.
        assert_eq!(id, k.key_id(&line, "session", "123@s.whatsapp.net"));
        assert_ne!(id, k.key_id(&other, "session", "123@s.whatsapp.net"));
        assert!(!id.contains("123"));
    }

    #[test]
    fn the_check_value_tells_the_right_key_from_a_wrong_one() {
        let check = key(1).check_value();
        assert_eq!(key(1).verify_check(&check), Ok(()));
        assert_eq!(key(2).verify_check(&check), Err(KeyError::WrongKey));
        assert_eq!(key(1).verify_check("garbage"), Err(KeyError::WrongKey));
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert!(SealKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(matches!(
            SealKey::from_base64(&STANDARD.encode([7u8; 16])),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            SealKey::from_base64("not base64!"),
            Err(KeyError::Malformed(_))
        ));
    }
}
