//! Durable jobs: work that must happen at a business time (a trial end, a renewal, a
//! webhook retry) and survive restarts.

use crate::ids::{AccountId, JobId, LineId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// A job to be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewJob {
    /// What to do: the name a handler is registered under (e.g. `line.renew`).
    pub kind: String,
    /// The account the job acts for, if any.
    pub account_id: Option<AccountId>,
    /// Handler-specific input.
    pub payload: serde_json::Value,
    /// The business time at which it becomes due.
    pub due_at: Timestamp,
    /// Scheduling the same `(kind, dedupe_key)` twice keeps only the first: the database
    /// enforces it, so a job that runs twice cannot schedule its follow-up twice.
    pub dedupe_key: Option<String>,
    /// The line whose owner must run the job (sending, reconnecting, unlinking: work on the
    /// line's WhatsApp connection, which one server at a time holds); `None` for any server.
    #[serde(default)]
    pub line_id: Option<LineId>,
}

/// A job claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// The account it acts for, if any.
    pub account_id: Option<AccountId>,
    /// Handler input.
    pub payload: serde_json::Value,
    /// When it became due.
    pub due_at: Timestamp,
    /// Earlier attempts that failed.
    pub attempts: u32,
}

/// How long a claimed job is leased to its worker before another may take it over: a worker
/// that crashed mid-job leaves its lease to expire, so its work is picked up by another
/// server within this time. A live worker renews the leases of the jobs it is still running
/// every [`JOB_LEASE_HEARTBEAT`], so a slow job is never taken over while it runs.
pub const JOB_LEASE: SignedDuration = SignedDuration::from_secs(15);

/// How long a server's proof of life lasts: the lines it owns pass to another server once it
/// has not renewed it for this long (a crashed server's lines are served again within this
/// plus one [`LINE_LEASE_HEARTBEAT`]).
pub const LINE_LEASE: SignedDuration = SignedDuration::from_secs(15);

/// How often a server renews its proof of life and adopts lines whose owner died.
pub const LINE_LEASE_HEARTBEAT: SignedDuration = SignedDuration::from_secs(5);

/// How often a worker renews the leases of its running jobs (a third of [`JOB_LEASE`], so
/// two missed beats in a row still leave the lease alive).
pub const JOB_LEASE_HEARTBEAT: SignedDuration = SignedDuration::from_secs(5);

/// After a handler fails, when to try again: 1 s, 2 s, 4 s … capped at one hour, so a broken
/// job neither spins nor waits forever.
pub fn retry_delay(attempts: u32) -> SignedDuration {
    let exp = attempts.min(12);
    SignedDuration::from_secs((1i64 << exp).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_then_caps() {
        assert_eq!(retry_delay(0), SignedDuration::from_secs(1));
        assert_eq!(retry_delay(3), SignedDuration::from_secs(8));
        assert_eq!(retry_delay(12), SignedDuration::from_secs(3600));
        assert_eq!(retry_delay(u32::MAX), SignedDuration::from_secs(3600));
    }
}
