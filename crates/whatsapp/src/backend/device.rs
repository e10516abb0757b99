//! The message-secret and device stores.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use whatsapp_rust::wacore::store::error::Result;
use whatsapp_rust::wacore::store::traits::{
    merge_msg_secret_expiry, merge_msg_secret_message_ts, DeviceStore, MsgSecretEntry,
    MsgSecretStore,
};
use whatsapp_rust::wacore::store::Device;

use super::{db, join, kind, ser, LineBackend};

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    secret: Vec<u8>,
    expires_at: i64,
    message_ts: i64,
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
