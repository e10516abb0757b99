//! The Signal store: identities, sessions, pre-keys, sender keys.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use whatsapp_rust::wacore::store::error::Result;
use whatsapp_rust::wacore::store::traits::SignalStore;

use super::{kind, LineBackend};

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
