//! The app-state store: sync keys, collection versions, mutation MACs.

use async_trait::async_trait;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::error::Result;
use whatsapp_rust::wacore::store::traits::{AppStateSyncKey, AppSyncStore};

use super::{join, kind, ser, LineBackend};

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
