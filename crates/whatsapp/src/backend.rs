//! whatsapp-rust's storage `Backend` over wagate's store: one [`LineBackend`] per line.
//!
//! Each of the crate's values becomes one row of `wa_session_values` (see
//! [`wagate_store::WhatsAppSessionStore`]): a kind, a key and a value, sealed with the server
//! key (see [`crate::seal`]). Values the crate hands over as structs are stored as JSON.
//! A value that does not open is reported to the crate as a store error for this line only:
//! the line's client fails to start or to decrypt, the other lines go on.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wagate_domain::clock::Clock;
use wagate_domain::ids::{LineId, MessageId};
use wagate_store::{Store, WaSessionValue};
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::{
    merge_msg_secret_expiry, merge_msg_secret_message_ts, AppStateSyncKey, AppSyncStore,
    DeviceListRecord, DeviceStore, LidPnMappingEntry, MsgSecretEntry, MsgSecretStore,
    PendingInboundKey, PendingInboundRow, ProtocolStore, SignalStore, TcTokenEntry,
};
use whatsapp_rust::wacore::store::Device;

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

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    secret: Vec<u8>,
    expires_at: i64,
    message_ts: i64,
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

#[async_trait]
impl SignalStore for LineBackend {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put(kind::IDENTITY, address, &key).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let rows = identities
            .iter()
            .map(|(a, k)| self.row(kind::IDENTITY, a, k, None))
            .collect();
        self.put_rows(rows).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        self.get(kind::IDENTITY, address)
            .await?
            .map(|v| self.array32(kind::IDENTITY, v))
            .transpose()
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.delete(kind::IDENTITY, &[address]).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self.get(kind::SESSION, address).await?.map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put(kind::SESSION, address, session).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = sessions
            .iter()
            .map(|(a, s)| self.row(kind::SESSION, a, s, None))
            .collect();
        self.put_rows(rows).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.delete(kind::SESSION, &[address]).await
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        let mut value = vec![u8::from(uploaded)];
        value.extend_from_slice(record);
        self.put(kind::PREKEY, &id.to_string(), &value).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let rows = keys
            .iter()
            .map(|(id, record)| {
                let mut value = vec![u8::from(uploaded)];
                value.extend_from_slice(record);
                self.row(kind::PREKEY, &id.to_string(), &value, None)
            })
            .collect();
        self.put_rows(rows).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self
            .get(kind::PREKEY, &id.to_string())
            .await?
            .map(|v| Bytes::from(v).slice(1..)))
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // Update, never insert: a key consumed meanwhile stays deleted.
        let mut rows = Vec::new();
        for id in ids {
            let key = id.to_string();
            if let Some(mut value) = self.get(kind::PREKEY, &key).await? {
                if let Some(flag) = value.first_mut() {
                    *flag = 1;
                }
                rows.push(self.row(kind::PREKEY, &key, &value, None));
            }
        }
        self.put_rows(rows).await
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete(kind::PREKEY, &[&id.to_string()]).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        Ok(self
            .list(kind::PREKEY)
            .await?
            .iter()
            .filter_map(|(k, _)| k.parse::<u32>().ok())
            .max()
            .unwrap_or(0))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.put(kind::SIGNED_PREKEY, &id.to_string(), record).await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get(kind::SIGNED_PREKEY, &id.to_string()).await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut all: Vec<(u32, Vec<u8>)> = self
            .list(kind::SIGNED_PREKEY)
            .await?
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        Ok(all)
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete(kind::SIGNED_PREKEY, &[&id.to_string()]).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put(kind::SENDER_KEY, address, record).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = sender_keys
            .iter()
            .map(|(a, r)| self.row(kind::SENDER_KEY, a, r, None))
            .collect();
        self.put_rows(rows).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get(kind::SENDER_KEY, address).await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete(kind::SENDER_KEY, &[address]).await
    }
}

#[async_trait]
impl AppSyncStore for LineBackend {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.get_json(kind::SYNC_KEY, &hex(key_id)).await
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        let value = serde_json::to_vec(&key).map_err(ser)?;
        self.put_rows(vec![
            self.row(kind::SYNC_KEY, &hex(key_id), &value, None),
            self.row(kind::SYNC_KEY_LATEST, "", key_id, None),
        ])
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        Ok(self
            .get_json(kind::APP_VERSION, name)
            .await?
            .unwrap_or_default())
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.put_json(kind::APP_VERSION, name, &state).await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        _version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let rows = mutations
            .iter()
            .map(|m| {
                let key = join(&[name, &hex(&m.index_mac)]);
                self.row(kind::MUTATION_MAC, &key, &m.value_mac, None)
            })
            .collect();
        self.put_rows(rows).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(kind::MUTATION_MAC, &join(&[name, &hex(index_mac)]))
            .await
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let keys: Vec<String> = index_macs.iter().map(|m| join(&[name, &hex(m)])).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.delete(kind::MUTATION_MAC, &keys).await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        let prefix = join(&[name, ""]);
        let keys: Vec<String> = self
            .list(kind::MUTATION_MAC)
            .await?
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k)
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.delete(kind::MUTATION_MAC, &keys).await
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.get(kind::SYNC_KEY_LATEST, "").await
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl ProtocolStore for LineBackend {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        let map: HashMap<String, bool> = self
            .get_json(kind::SENDER_KEY_DEVICES, group_jid)
            .await?
            .unwrap_or_default();
        Ok(map.into_iter().collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let mut map: HashMap<String, bool> = self
            .get_json(kind::SENDER_KEY_DEVICES, group_jid)
            .await?
            .unwrap_or_default();
        for (device, has_key) in entries {
            map.insert((*device).to_owned(), *has_key);
        }
        self.put_json(kind::SENDER_KEY_DEVICES, group_jid, &map)
            .await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete(kind::SENDER_KEY_DEVICES, &[group_jid]).await
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for (group, value) in self.list(kind::SENDER_KEY_DEVICES).await? {
            let mut map: HashMap<String, bool> = serde_json::from_slice(&value).map_err(ser)?;
            let before = map.len();
            map.retain(|jid, _| !device_jids.contains(&jid.as_str()));
            if map.len() != before {
                let value = serde_json::to_vec(&map).map_err(ser)?;
                rows.push(self.row(kind::SENDER_KEY_DEVICES, &group, &value, None));
            }
        }
        self.put_rows(rows).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.store
            .wa_delete_kind(&self.line, kind::SENDER_KEY_DEVICES)
            .await
            .map(drop)
            .map_err(db)
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get_json(kind::LID, lid).await
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        let Some(lid) = self.get(kind::PN, phone).await? else {
            return Ok(None);
        };
        let lid = String::from_utf8(lid).map_err(ser)?;
        self.get_json(kind::LID, &lid).await
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let mut rows = Vec::with_capacity(entries.len() * 2);
        let mut stale = Vec::new();
        for entry in entries {
            // A LID that moved to another number leaves no reverse entry behind.
            if let Some(old) = self.get_lid_mapping(&entry.lid).await? {
                if old.phone_number != entry.phone_number {
                    stale.push(old.phone_number);
                }
            }
            let value = serde_json::to_vec(entry).map_err(ser)?;
            rows.push(self.row(kind::LID, &entry.lid, &value, None));
            rows.push(self.row(kind::PN, &entry.phone_number, entry.lid.as_bytes(), None));
        }
        let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
        self.delete(kind::PN, &stale).await?;
        self.put_rows(rows).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.list(kind::LID)
            .await?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(ser))
            .collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.put(kind::BASE_KEY, &join(&[address, message_id]), base_key)
            .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(kind::BASE_KEY, &join(&[address, message_id]))
            .await?
            .is_some_and(|stored| stored == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete(kind::BASE_KEY, &[&join(&[address, message_id])])
            .await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let rows = records
            .iter()
            .map(|r| {
                let value = serde_json::to_vec(r).map_err(ser)?;
                Ok(self.row(kind::DEVICES, &r.user, &value, None))
            })
            .collect::<Result<Vec<_>>>()?;
        self.put_rows(rows).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get_json(kind::DEVICES, user).await
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.delete(kind::DEVICES, &[user]).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(kind::GROUP, group_jid).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.put(kind::GROUP, group_jid, blob).await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete(kind::GROUP, &[group_jid]).await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get_json(kind::TC_TOKEN, jid).await
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.put_json(kind::TC_TOKEN, jid, entry).await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.delete(kind::TC_TOKEN, &[jid]).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self
            .list(kind::TC_TOKEN)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        let mut expired = Vec::new();
        for (jid, value) in self.list(kind::TC_TOKEN).await? {
            let entry: TcTokenEntry = serde_json::from_slice(&value).map_err(ser)?;
            let token_live = !entry.token.is_empty() && entry.token_timestamp >= token_cutoff;
            let sender_live = entry.sender_timestamp.is_some_and(|t| t >= sender_cutoff);
            if !token_live && !sender_live {
                expired.push(jid);
            }
        }
        let keys: Vec<&str> = expired.iter().map(String::as_str).collect();
        self.delete(kind::TC_TOKEN, &keys).await?;
        Ok(expired.len() as u32)
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        let now = self.now_secs();
        self.put_stamped(kind::SENT, &join(&[chat_jid, message_id]), payload, now)
            .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let key = join(&[chat_jid, message_id]);
        let payload = self.get(kind::SENT, &key).await?;
        if payload.is_some() {
            self.delete(kind::SENT, &[&key]).await?;
        }
        Ok(payload)
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        let now = self.now_secs();
        self.put_stamped(
            kind::PENDING_INBOUND,
            &join(&[chat, sender, id]),
            message,
            now,
        )
        .await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.get(kind::PENDING_INBOUND, &join(&[chat, sender, id]))
            .await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete(kind::PENDING_INBOUND, &[&join(&[chat, sender, id])])
            .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.store
            .wa_delete_before(&self.line, kind::PENDING_INBOUND, cutoff_timestamp)
            .await
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
            .map_err(db)
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let now = self.now_secs();
        let rows = rows
            .iter()
            .map(|r| {
                let key = join(&[r.chat, r.sender, r.id]);
                self.row(kind::PENDING_INBOUND, &key, r.message, Some(now))
            })
            .collect();
        self.put_rows(rows).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        let keys: Vec<String> = keys
            .iter()
            .map(|k| join(&[k.chat, k.sender, k.id]))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.delete(kind::PENDING_INBOUND, &keys).await
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.store
            .wa_delete_before(&self.line, kind::SENT, cutoff_timestamp)
            .await
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
            .map_err(db)
    }
}

#[async_trait]
impl MsgSecretStore for LineBackend {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let mut rows = Vec::with_capacity(entries.len());
        for e in &entries {
            let key = join(&[&e.chat, &e.sender, &e.msg_id]);
            let (expires_at, message_ts) = match self.get(kind::MSG_SECRET, &key).await? {
                Some(old) => {
                    let old: StoredSecret = serde_json::from_slice(&old).map_err(ser)?;
                    (
                        merge_msg_secret_expiry(old.expires_at, e.expires_at),
                        merge_msg_secret_message_ts(old.message_ts, e.message_ts),
                    )
                }
                None => (e.expires_at, e.message_ts),
            };
            let value = serde_json::to_vec(&StoredSecret {
                secret: e.secret.to_vec(),
                expires_at,
                message_ts,
            })
            .map_err(ser)?;
            let stamp = (expires_at != 0).then_some(expires_at);
            rows.push(self.row(kind::MSG_SECRET, &key, &value, stamp));
        }
        self.put_rows(rows).await?;
        Ok(entries.len())
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(s, _)| s))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        let stored: Option<StoredSecret> = self
            .get_json(kind::MSG_SECRET, &join(&[chat, sender, msg_id]))
            .await?;
        Ok(stored.map(|s| (s.secret, s.message_ts)))
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        // Rows expire at or before the cutoff; `wa_delete_before` is strict.
        self.store
            .wa_delete_before(
                &self.line,
                kind::MSG_SECRET,
                cutoff_timestamp.saturating_add(1),
            )
            .await
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
            .map_err(db)
    }
}

#[async_trait]
impl DeviceStore for LineBackend {
    async fn save(&self, device: &Device) -> Result<()> {
        self.put_json(kind::DEVICE, "", device).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.get_json(kind::DEVICE, "").await
    }

    async fn exists(&self) -> Result<bool> {
        Ok(self.get(kind::DEVICE, "").await?.is_some())
    }

    async fn create(&self) -> Result<i32> {
        // One device per line: the first save writes it; until then `load` finds none and
        // the client starts from a fresh device, which is what a pending line needs.
        Ok(1)
    }

    async fn resource_report(&self) -> whatsapp_rust::wacore::stats::StorageResourceReport {
        // The values live in the database, not in this process.
        whatsapp_rust::wacore::stats::StorageResourceReport {
            memory_bytes: Some(0),
            ..Default::default()
        }
    }
}
