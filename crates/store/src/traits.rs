//! The storage use cases, grouped by domain. [`Store`] is all of them together.

use async_trait::async_trait;
use jiff::Timestamp;
use wagate_domain::account::{Account, ApiKeyInfo, KeyMode, NewApiKey};
use wagate_domain::ids::{AccountId, ApiKeyId, JobId, LineId};
use wagate_domain::jobs::{Job, NewJob};

use crate::StoreResult;

/// Everything wagate stores.
pub trait Store:
    AccountStore
    + IdempotencyStore
    + JobStore
    + SandboxStore
    + OwnershipStore
    + crate::WebhookStore
    + crate::LineStore
    + crate::WhatsAppSessionStore
    + crate::MetaStore
    + crate::CallStore
    + crate::DayStore
    + crate::NumberStore
    + crate::SessionStore
    + Send
    + Sync
{
}
impl<
        T: AccountStore
            + IdempotencyStore
            + JobStore
            + SandboxStore
            + OwnershipStore
            + crate::WebhookStore
            + crate::LineStore
            + crate::WhatsAppSessionStore
            + crate::MetaStore
            + crate::CallStore
            + crate::DayStore
            + crate::NumberStore
            + crate::SessionStore
            + Send
            + Sync,
    > Store for T
{
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The business's name (already validated).
    pub name: String,
    /// Whether the calling rollout is on.
    pub calling_enabled: bool,
    /// Whether this is the sandbox's demo account.
    pub is_demo: bool,
}

/// Accounts and API keys.
#[async_trait]
pub trait AccountStore {
    /// The mode the store was first used in, if it has been used.
    async fn store_mode(&self) -> StoreResult<Option<KeyMode>>;
    /// Records the store's mode on first use; refuses a store of the other mode.
    async fn claim_store_mode(&self, mode: KeyMode) -> StoreResult<()>;
    /// Creates an account and its first key, atomically.
    async fn create_account(
        &self,
        new: NewAccount,
        key: &NewApiKey,
        now: Timestamp,
    ) -> StoreResult<Account>;
    /// The account and key behind a presented key's digest, unless the key was revoked.
    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<(Account, ApiKeyId)>>;
    /// One account by id.
    async fn get_account(&self, id: &AccountId) -> StoreResult<Option<Account>>;
    /// The sandbox demo account, if one was created.
    async fn demo_account(&self) -> StoreResult<Option<Account>>;
    /// Adds a key to an account.
    async fn create_api_key(
        &self,
        account: &AccountId,
        key: &NewApiKey,
        now: Timestamp,
    ) -> StoreResult<ApiKeyInfo>;
    /// The account's keys, newest first (revoked ones included).
    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKeyInfo>>;
    /// Revokes a key of the account; `None` when the account has no such key. Revoking a
    /// revoked key returns it unchanged.
    async fn revoke_api_key(
        &self,
        account: &AccountId,
        key: &ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<Option<ApiKeyInfo>>;
}

/// A stored response, replayed for a repeated idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The exact body bytes (JSON).
    pub body: String,
}

/// What a request carrying an `Idempotency-Key` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key (or a retry after a release, or a takeover of an abandoned
    /// claim): do the work, then [`IdempotencyStore::idempotency_finish`] or
    /// [`IdempotencyStore::idempotency_release`]. `since` is when this use of the key began
    /// (wall clock): the same across releases and takeovers, new once the key has expired,
    /// so work keyed by it (a card payment) is shared by retries and never by a later reuse.
    Started {
        /// When this use of the key began.
        since: Timestamp,
    },
    /// The key was used before for this same request: replay this response.
    Replay(StoredResponse),
    /// The same request is being processed right now by another call.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// Idempotency keys: the first response to a key is stored and replayed.
#[async_trait]
pub trait IdempotencyStore {
    /// Claims `key` for a request with `fingerprint`. `lock_until` (wall-clock) bounds how
    /// long a claim blocks others if its holder dies; keys older than `expire_before` are
    /// forgotten and may be used afresh.
    async fn idempotency_begin(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        wall_now: Timestamp,
        lock_until: Timestamp,
        expire_before: Timestamp,
    ) -> StoreResult<IdempotencyBegin>;
    /// Stores the response of a started request.
    async fn idempotency_finish(
        &self,
        account: &AccountId,
        key: &str,
        response: &StoredResponse,
    ) -> StoreResult<()>;
    /// Releases a started request whose answer is not kept (it failed on our side, or was
    /// refused before doing anything), so a retry runs it again — with the same `since`, and
    /// with a corrected body if the caller changed it.
    async fn idempotency_release(&self, account: &AccountId, key: &str) -> StoreResult<()>;
    /// Deletes every key that began before `expire_before`; how many.
    async fn idempotency_sweep(&self, expire_before: Timestamp) -> StoreResult<u64>;
}

/// The durable job queue.
#[async_trait]
pub trait JobStore {
    /// Schedules jobs; a `(kind, dedupe_key)` already present is kept as it is.
    async fn schedule_jobs(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<()>;
    /// Leases up to `limit` jobs due at business time `now`, earliest first, that no live
    /// lease holds. `lease_until` is wall-clock time: a crashed worker's jobs come back when
    /// it passes, whatever the business clock does. Jobs bound to a line that another live
    /// server owns are left to that server (see [`OwnershipStore`]); `holder` is this server.
    async fn claim_due_jobs(
        &self,
        now: Timestamp,
        wall_now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        holder: &str,
    ) -> StoreResult<Vec<Job>>;
    /// Up to `limit` jobs due at business time `now` that no live lease holds, earliest first,
    /// without leasing them: for work that removes its jobs in its own transaction, guarded
    /// against a worker that leased one meanwhile (see `LineStore::commit_many`).
    async fn peek_due_jobs(
        &self,
        now: Timestamp,
        wall_now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// Removes a job that ran to completion.
    async fn finish_job(&self, id: &JobId) -> StoreResult<()>;
    /// Gives a claimed job back unrun, as due as it was and with no attempt counted: its line
    /// turned out to be another server's, which claims it next.
    async fn release_job(&self, id: &JobId) -> StoreResult<()>;
    /// Records a failed run and makes the job due again at `retry_at`.
    async fn fail_job(&self, id: &JobId, error: &str, retry_at: Timestamp) -> StoreResult<()>;
    /// The due time of the earliest job, leased or not.
    async fn next_job_due_at(&self) -> StoreResult<Option<Timestamp>>;
    /// Extends to `lease_until` the leases of these jobs that are still leased at `wall_now`
    /// (the heartbeat of a worker still running them); how many were extended. A job that
    /// finished, failed or lost its lease meanwhile is left alone.
    async fn extend_leases(
        &self,
        ids: &[JobId],
        wall_now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<u64>;
    /// Drops every lease, job leases and servers' proofs of life alike: for a single-process
    /// store at start, when no other worker can hold one.
    async fn release_all_leases(&self) -> StoreResult<u64>;
    /// Changes every time another process (or this one) commits a job bound to a line
    /// (`NewJob::line_id`): those run only on the line's owner, which may be another server
    /// whose worker would otherwise find them at its next poll. `None` where one process owns
    /// the store (SQLite).
    fn line_job_wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// State that only the sandbox keeps.
#[async_trait]
pub trait SandboxStore {
    /// The persisted sandbox clock, if the sandbox ran before.
    async fn load_sandbox_clock(&self) -> StoreResult<Option<Timestamp>>;
    /// Persists the sandbox clock (it only moves forward).
    async fn save_sandbox_clock(&self, now: Timestamp) -> StoreResult<()>;
}

/// Which server serves which line: servers prove they are alive, and a line belongs to one
/// live server at a time (its WhatsApp connection and its line-bound jobs).
#[async_trait]
pub trait OwnershipStore {
    /// Records that `holder` (a server, on `host`) is alive until `until` (wall-clock).
    async fn server_alive(
        &self,
        holder: &str,
        host: &str,
        wall_now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<()>;
    /// Takes `line` for `holder` if it has no owner or its owner is not alive at `wall_now`
    /// (or already is `holder`): the ownership's epoch, raised at every change of owner, or
    /// `None` when another live server owns it.
    async fn take_line(
        &self,
        line: &LineId,
        holder: &str,
        wall_now: Timestamp,
    ) -> StoreResult<Option<i64>>;
    /// The lines `holder` owns, with their epochs.
    async fn owned_lines(&self, holder: &str) -> StoreResult<Vec<(LineId, i64)>>;
    /// Up to `limit` linked lines (ready or reconnecting) that no live server owns at
    /// `wall_now`: the lines of a server that died, to adopt.
    async fn orphan_lines(&self, wall_now: Timestamp, limit: u32) -> StoreResult<Vec<LineId>>;
    /// Gives up `holder`'s ownership of `lines` (released lines, or a server shutting down).
    async fn give_up_lines(&self, holder: &str, lines: &[LineId]) -> StoreResult<()>;
    /// Ends `holder`'s proof of life (a clean shutdown): its lines are adopted at once.
    async fn server_gone(&self, holder: &str) -> StoreResult<()>;
    /// Publishes the QR code that `holder`'s pairing client shows for `line`, for the other
    /// servers' connect pages (written only while `holder` owns the line).
    async fn publish_pairing_qr(
        &self,
        line: &LineId,
        holder: &str,
        payload: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Publishes the answer to pairing-code request `request` (only while `holder` owns the
    /// line).
    async fn publish_pair_code(
        &self,
        line: &LineId,
        holder: &str,
        request: &str,
        answer: &str,
    ) -> StoreResult<()>;
    /// What the owner of `line` published for its pairing, recording that a connect page
    /// looks at it (through another server) at `wall_now`; `None` if nobody owns the line.
    async fn look_at_pairing(
        &self,
        line: &LineId,
        wall_now: Timestamp,
    ) -> StoreResult<Option<PublishedPairing>>;
    /// [`OwnershipStore::look_at_pairing`] without recording a look: a server waiting for
    /// what the owner will publish reads again and again.
    async fn published_pairing(&self, line: &LineId) -> StoreResult<Option<PublishedPairing>>;
    /// The lines `holder` owns that a connect page on another server looked at since `since`.
    async fn watched_pairings(&self, holder: &str, since: Timestamp) -> StoreResult<Vec<LineId>>;
}

/// What a line's owner published for connect pages served by other servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedPairing {
    /// The QR code its pairing client shows, and until when it is valid.
    pub qr: Option<(String, Timestamp)>,
    /// The latest pairing-code request it answered, and the answer.
    pub pair_code: Option<(String, String)>,
}
