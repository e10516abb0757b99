//! The protocol store: sender-key devices, the LID map, base keys, device lists, groups,
//! trusted-contact tokens, sent messages and the pending-inbound buffer.

use std::collections::HashMap;

use async_trait::async_trait;
use whatsapp_rust::wacore::store::error::Result;
use whatsapp_rust::wacore::store::traits::{
    DeviceListRecord, LidPnMappingEntry, PendingInboundKey, PendingInboundRow, ProtocolStore,
    TcTokenEntry,
};

use super::{db, join, kind, ser, LineBackend};

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
