//! whatsapp-rust's storage `Backend` over wagate's store: one [`LineBackend`] per line.
//!
//! Each of the crate's values becomes one row of `wa_session_values` (see
//! [`wagate_store::WhatsAppSessionStore`]): a kind, a key and a value, sealed with the server
//! key (see [`crate::seal`]). Values the crate hands over as structs are stored as JSON.
//! A value that does not open is reported to the crate as a store error for this line only:
//! the line's client fails to start or to decrypt, the other lines go on.

mod app_sync;
mod device;
mod protocol;
mod signal;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wagate_domain::clock::Clock;
use wagate_domain::ids::{LineId, MessageId};
use wagate_store::{Store, WaSessionValue};
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::DeviceStore;

use crate::seal::SealKey;

/// The kinds of value a line's session holds.
pub mod kind {
    /// The device itself: identity, noise key, ADV secret, the linked account's ids.
    pub const DEVICE: &str = "device";
    /// Remote identity keys, by Signal address.
    pub const IDENTITY: &str = "identity";
    /// Signal sessions, by address.
    pub const SESSION: &str = "session";
    /// One-time pre-keys, by id.
    pub const PREKEY: &str = "prekey";
    /// Signed pre-keys, by id.
    pub const SIGNED_PREKEY: &str = "signed_prekey";
    /// Group sender keys, by address.
    pub const SENDER_KEY: &str = "sender_key";
    /// App-state sync keys, by key id (base64).
    pub const SYNC_KEY: &str = "sync_key";
    /// The id of the latest app-state sync key.
    pub const SYNC_KEY_LATEST: &str = "sync_key_latest";
    /// App-state collection versions, by collection name.
    pub const APP_VERSION: &str = "app_version";
    /// App-state mutation MACs, by collection and index MAC.
    pub const MUTATION_MAC: &str = "mutation_mac";
    /// Which group devices hold our sender key, by group.
    pub const SENDER_KEY_DEVICES: &str = "sender_key_devices";
    /// LID → phone-number mappings, by LID.
    pub const LID: &str = "lid";
    /// Phone number → LID, by phone number.
    pub const PN: &str = "pn";
    /// Retry base keys, by address and message id.
    pub const BASE_KEY: &str = "base_key";
    /// Device lists, by user.
    pub const DEVICES: &str = "devices";
    /// Group metadata snapshots, by group.
    pub const GROUP: &str = "group";
    /// Trusted-contact tokens, by JID.
    pub const TC_TOKEN: &str = "tc_token";
    /// Sent message payloads kept for retries, by chat and message id (stamped).
    pub const SENT: &str = "sent";
    /// Message secrets, by chat, sender and message id (stamped with their expiry).
    pub const MSG_SECRET: &str = "msg_secret";
    /// Decrypted inbound messages waiting for wagate to store them, by chat, sender and id.
    pub const PENDING_INBOUND: &str = "pending_inbound";
    /// wagate's own: WhatsApp message id → wagate message id, for receipts (stamped).
    pub const MESSAGE_MAP: &str = "message_map";
}

/// The storage of one line's session.
#[derive(Clone)]
pub struct LineBackend {
    store: Arc<dyn Store>,
    key: Arc<SealKey>,
    clock: Arc<dyn Clock>,
    line: LineId,
}

impl std::fmt::Debug for LineBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineBackend")
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

fn db(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn ser(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Serialization(Box::new(e))
}

fn join(parts: &[&str]) -> String {
    parts.join("\u{0}")
}

impl LineBackend {
    /// The storage of `line`'s session in `store`, sealed with `key`; `clock` stamps the values
    /// that are swept by age.
    pub fn new(
        store: Arc<dyn Store>,
        key: Arc<SealKey>,
        clock: Arc<dyn Clock>,
        line: LineId,
    ) -> Self {
        LineBackend {
            store,
            key,
            clock,
            line,
        }
    }

    /// The line.
    pub fn line(&self) -> &LineId {
        &self.line
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().as_second()
    }

    fn row(&self, kind: &str, key: &str, value: &[u8], stamp: Option<i64>) -> WaSessionValue {
        let key_id = self.key.key_id(&self.line, kind, key);
        let value = self.key.seal(&self.line, kind, &key_id, key, value);
        WaSessionValue {
            kind: kind.to_owned(),
            key_id,
            value,
            stamp,
        }
    }

    /// Writes values of this line.
    pub(crate) async fn put_rows(&self, rows: Vec<WaSessionValue>) -> Result<()> {
        self.store
            .wa_put(&self.line, &rows, self.clock.now())
            .await
            .map_err(db)
    }

    pub(crate) async fn put(&self, kind: &str, key: &str, value: &[u8]) -> Result<()> {
        self.put_rows(vec![self.row(kind, key, value, None)]).await
    }

    pub(crate) async fn put_stamped(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        stamp: i64,
    ) -> Result<()> {
        self.put_rows(vec![self.row(kind, key, value, Some(stamp))])
            .await
    }

    pub(crate) async fn get(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let key_id = self.key.key_id(&self.line, kind, key);
        let Some(sealed) = self
            .store
            .wa_get(&self.line, kind, &key_id)
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let (stored_key, value) = self
            .key
            .open(&self.line, kind, &key_id, &sealed)
            .map_err(ser)?;
        if stored_key != key {
            return Err(StoreError::Validation(format!(
                "WhatsApp session value ({kind}) of line {} is filed under another key",
                self.line
            )));
        }
        Ok(Some(value))
    }

    /// Every value of a kind, with its key.
    pub(crate) async fn list(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = self.store.wa_list(&self.line, kind).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                self.key
                    .open(&self.line, kind, &r.key_id, &r.value)
                    .map_err(ser)
            })
            .collect()
    }

    pub(crate) async fn delete(&self, kind: &str, keys: &[&str]) -> Result<()> {
        let ids: Vec<String> = keys
            .iter()
            .map(|k| self.key.key_id(&self.line, kind, k))
            .collect();
        self.store
            .wa_delete(&self.line, kind, &ids)
            .await
            .map_err(db)
    }

    async fn get_json<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Result<Option<T>> {
        self.get(kind, key)
            .await?
            .map(|v| serde_json::from_slice(&v).map_err(ser))
            .transpose()
    }

    async fn put_json<T: Serialize>(&self, kind: &str, key: &str, value: &T) -> Result<()> {
        self.put(kind, key, &serde_json::to_vec(value).map_err(ser)?)
            .await
    }

    fn array32(&self, kind: &str, value: Vec<u8>) -> Result<[u8; 32]> {
        value.try_into().map_err(|_| {
            StoreError::Validation(format!(
                "WhatsApp session value ({kind}) of line {} is not 32 bytes",
                self.line
            ))
        })
    }

    /// Whether this line has a device whose account is linked (it paired once and was not
    /// logged out since).
    pub async fn linked_phone(&self) -> Result<Option<String>> {
        Ok(self
            .load()
            .await?
            .and_then(|d| d.pn.map(|pn| format!("+{}", pn.user))))
    }

    /// Remembers that WhatsApp's message `wa_id` is wagate's `message` (for its receipts),
    /// stamped `at` (unix seconds) for the sweep.
    pub async fn remember_message(&self, wa_id: &str, message: &MessageId, at: i64) -> Result<()> {
        self.put_stamped(kind::MESSAGE_MAP, wa_id, message.as_str().as_bytes(), at)
            .await
    }

    /// wagate's message behind WhatsApp's `wa_id`, if this line sent it.
    pub async fn message_for(&self, wa_id: &str) -> Result<Option<MessageId>> {
        Ok(self
            .get(kind::MESSAGE_MAP, wa_id)
            .await?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| MessageId::parse(&s).ok()))
    }

    /// Forgets the whole session of this line.
    pub async fn forget(&self) -> Result<()> {
        self.store.wa_forget(&self.line).await.map(drop).map_err(db)
    }
}
