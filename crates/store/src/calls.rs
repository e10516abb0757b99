//! Call storage (PRODUCT.md §9): the call records, the calling minutes per line and UTC day
//! that fair use is computed from, and the part of a [`crate::Batch`] that writes them.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::call::{CallDirection, CallStatus, CallTimes, EndReason};
use wagate_domain::ids::{AccountId, CallId, LineId};
use wagate_domain::page::{Page, PageRequest};

use crate::StoreResult;

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// `call_…`
    pub id: CallId,
    /// The owner.
    pub account_id: AccountId,
    /// The line it is on.
    pub line_id: LineId,
    /// Bumped by every write; a write from a stale read is refused.
    pub version: i64,
    /// Which way.
    pub direction: CallDirection,
    /// The caller (the line's number for an outbound call).
    pub from: Option<String>,
    /// The called number (the line's number for an inbound call).
    pub to: Option<String>,
    /// Where it is.
    pub status: CallStatus,
    /// Why it ended.
    pub end_reason: Option<EndReason>,
    /// The connector's id for the call, once it has one.
    pub provider_id: Option<String>,
    /// Authenticates the call's media socket.
    pub media_token: String,
    /// Asked for (outbound) or reported (inbound).
    pub created_at: Timestamp,
    /// Began to ring.
    pub ringing_at: Option<Timestamp>,
    /// Answered.
    pub answered_at: Option<Timestamp>,
    /// Ended.
    pub ended_at: Option<Timestamp>,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl CallRecord {
    /// What the call rules need of the call.
    pub fn times(&self) -> CallTimes {
        CallTimes {
            status: self.status,
            ringing_at: self.ringing_at,
            answered_at: self.answered_at,
            ended_at: self.ended_at,
            end_reason: self.end_reason,
        }
    }

    /// The call moved to `times` (the rules' answer) at `now`.
    pub fn with_times(&self, times: CallTimes, now: Timestamp) -> CallRecord {
        CallRecord {
            status: times.status,
            ringing_at: times.ringing_at,
            answered_at: times.answered_at,
            ended_at: times.ended_at,
            end_reason: times.end_reason,
            updated_at: now,
            ..self.clone()
        }
    }
}

/// The calls part of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallWrite {
    /// A new call; a [`crate::Conflict::LineBusy`] if its line has a call that is not over.
    pub insert: Option<CallRecord>,
    /// A changed call, as read and then changed (its `version` is the one read); a
    /// [`crate::Conflict::CallChanged`] if the stored version moved on.
    pub update: Option<CallRecord>,
    /// Seconds talked to add to a line's UTC days: `(line, day, seconds)`.
    pub add_seconds: Vec<(LineId, i64, u64)>,
}

/// Calls and calling minutes.
#[async_trait]
pub trait CallStore {
    /// One call of the account.
    async fn get_call(&self, account: &AccountId, id: &CallId) -> StoreResult<Option<CallRecord>>;
    /// One call, whatever its account (jobs, the connector, the media socket).
    async fn call_by_id(&self, id: &CallId) -> StoreResult<Option<CallRecord>>;
    /// The call the connector knows as `provider_id` on `line`.
    async fn call_by_provider(
        &self,
        line: &LineId,
        provider_id: &str,
    ) -> StoreResult<Option<CallRecord>>;
    /// A line's calls, newest first.
    async fn list_calls(
        &self,
        account: &AccountId,
        line: &LineId,
        page: &PageRequest,
    ) -> StoreResult<Page<CallRecord>>;
    /// Seconds talked per UTC day from `from_day` on, for these lines: `(line, day, seconds)`.
    async fn call_seconds(
        &self,
        lines: &[LineId],
        from_day: i64,
    ) -> StoreResult<Vec<(LineId, i64, u64)>>;
}
