//! WhatsApp Web sessions: the values a linked device keeps, per line (see
//! [`WhatsAppSessionStore`]).

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::ids::LineId;

use crate::StoreResult;

/// One stored value of a line's WhatsApp session. The store keeps it as it is given: the
/// connector seals `value` and hashes `key_id` before it gets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaSessionValue {
    /// What the value is (`device`, `session`, `prekey`, ...).
    pub kind: String,
    /// The value's key within its kind (a keyed hash, for the connector to compute).
    pub key_id: String,
    /// The sealed value.
    pub value: String,
    /// A unix-seconds time the kind is swept by ([`WhatsAppSessionStore::wa_delete_before`]),
    /// if it has one.
    pub stamp: Option<i64>,
}

/// The WhatsApp Web sessions of the lines, and the check value of the key that seals them.
///
/// Every method is one statement or one transaction of its own; values of different lines
/// never mix, and forgetting a line removes all of its values at once.
#[async_trait]
pub trait WhatsAppSessionStore {
    /// Records `check` as the server key's check value unless one is recorded already, and
    /// returns the recorded one (the first server's wins).
    async fn wa_key_check(&self, check: &str, now: Timestamp) -> StoreResult<String>;
    /// One value of `line`, by kind and key.
    async fn wa_get(&self, line: &LineId, kind: &str, key_id: &str) -> StoreResult<Option<String>>;
    /// Every value of one kind of `line`, in no particular order.
    async fn wa_list(&self, line: &LineId, kind: &str) -> StoreResult<Vec<WaSessionValue>>;
    /// Writes `values` of `line` (inserting or replacing each), in one transaction.
    async fn wa_put(
        &self,
        line: &LineId,
        values: &[WaSessionValue],
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Deletes these keys of one kind of `line`, in one transaction.
    async fn wa_delete(&self, line: &LineId, kind: &str, key_ids: &[String]) -> StoreResult<()>;
    /// Deletes every value of one kind of `line`; how many.
    async fn wa_delete_kind(&self, line: &LineId, kind: &str) -> StoreResult<u64>;
    /// Deletes the values of one kind of `line` stamped before `cutoff` (unix seconds); how
    /// many.
    async fn wa_delete_before(&self, line: &LineId, kind: &str, cutoff: i64) -> StoreResult<u64>;
    /// Forgets `line`'s whole session (an unlink or a logout); how many values went.
    async fn wa_forget(&self, line: &LineId) -> StoreResult<u64>;
    /// The lines that have a value of `kind` (e.g. a stored device), in id order.
    async fn wa_lines_with(&self, kind: &str) -> StoreResult<Vec<LineId>>;
}
