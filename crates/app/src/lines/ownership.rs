//! Line ownership: one server at a time serves a line.
//!
//! A line's WhatsApp connection can live in one process only, and its messages must leave in
//! order and once each; with several servers on one PostgreSQL, each line therefore has an
//! owner. A server proves it is alive by renewing one row every [`LINE_LEASE_HEARTBEAT`]
//! (one write per server, however many lines it owns); a line belongs to its owner while that
//! proof is fresher than [`LINE_LEASE`]. Jobs that act on a line's connection (see
//! [`super::runs_on_owner`]) are claimed only by its owner, or by any server while nobody
//! live owns the line — that server takes the line first. Every heartbeat also adopts the
//! linked lines of dead servers, so a crashed server's lines are served again within
//! `LINE_LEASE + LINE_LEASE_HEARTBEAT` (20 s), without waiting for a job to need them.
//!
//! Nothing here knows which connector runs: the connector is told when this server starts
//! serving a line ([`Connector::adopt`]) and when another server took it over
//! ([`Connector::relinquish`]), so the simulator and a real connection follow the same rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use wagate_domain::clock::Clock;
use wagate_domain::ids::{random_base62, LineId};
use wagate_domain::jobs::{LINE_LEASE, LINE_LEASE_HEARTBEAT};
use wagate_store::{Store, StoreResult};

use crate::connector::Connector;

/// How many ownerless lines one heartbeat adopts at most: a server that finds a dead peer's
/// thousands of lines connects them over several beats instead of all at once.
const ADOPT_PER_BEAT: u32 = 500;

/// This server's share of the lines.
pub struct LineOwnership {
    store: Arc<dyn Store>,
    wall: Arc<dyn Clock>,
    connector: Arc<dyn Connector>,
    holder: String,
    host: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The lines this server serves, with the epoch it took each at.
    owned: HashMap<LineId, i64>,
    /// Until when this server's last recorded proof of life runs (wall-clock).
    alive_until: Option<Timestamp>,
}

impl LineOwnership {
    /// The ownership of the server `holder` (the scheduler's identity, see
    /// [`crate::scheduler::Scheduler::holder`]).
    pub fn new(
        store: Arc<dyn Store>,
        wall: Arc<dyn Clock>,
        connector: Arc<dyn Connector>,
        holder: String,
    ) -> Arc<Self> {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("pid-{}", std::process::id()));
        Arc::new(LineOwnership {
            store,
            wall,
            connector,
            holder,
            host,
            state: Mutex::new(State::default()),
        })
    }

    /// A fresh server identity: `srv_` and random characters, new at every start, so a
    /// restarted server never mistakes a dead run's lines for its own.
    pub fn new_holder() -> String {
        format!("srv_{}", random_base62(16))
    }

    /// This server's identity.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this server may act on `line` now, taking it first if nobody live owns it.
    /// `false`: another live server owns it, and its jobs are that server's.
    pub async fn ensure(&self, line: &LineId) -> StoreResult<bool> {
        let now = self.wall.now();
        // Trusted without asking the store only while the proof of life has a full heartbeat
        // of margin left: no other server can have taken the line before that runs out.
        let margin = LINE_LEASE_HEARTBEAT;
        let (fresh, owned) = {
            let state = self.state();
            let fresh = state.alive_until.is_some_and(|until| until > now + margin);
            (fresh, state.owned.contains_key(line))
        };
        if fresh && owned {
            return Ok(true);
        }
        if !fresh {
            self.prove_alive(now).await?;
        }
        self.take(line, now).await
    }

    async fn take(&self, line: &LineId, now: Timestamp) -> StoreResult<bool> {
        match self.store.take_line(line, &self.holder, now).await? {
            Some(epoch) => {
                let before = self.state().owned.insert(line.clone(), epoch);
                if before != Some(epoch) {
                    tracing::info!(line = %line, epoch, "serving line");
                    self.connector.adopt(line).await;
                }
                Ok(true)
            }
            None => {
                let was_mine = self.state().owned.remove(line).is_some();
                if was_mine {
                    self.connector.relinquish(line).await;
                }
                Ok(false)
            }
        }
    }

    async fn prove_alive(&self, now: Timestamp) -> StoreResult<()> {
        let until = now + LINE_LEASE;
        self.store
            .server_alive(&self.holder, &self.host, now, until)
            .await?;
        let mut state = self.state();
        if state.alive_until.is_none_or(|u| u < until) {
            state.alive_until = Some(until);
        }
        Ok(())
    }

    /// One heartbeat: renews this server's proof of life, lets go of the lines another
    /// server took over meanwhile (this one was presumed dead), and adopts lines nobody live
    /// owns. Returns how many lines it adopted.
    pub async fn beat(&self) -> StoreResult<usize> {
        let now = self.wall.now();
        self.prove_alive(now).await?;
        // Only lines served before the store is read can be missing from what it says: a
        // line taken meanwhile (a message to a new line, say) is this server's, not lost.
        let served: HashMap<LineId, i64> = self.state().owned.clone();
        let mine: HashMap<LineId, i64> = self
            .store
            .owned_lines(&self.holder)
            .await?
            .into_iter()
            .collect();
        let lost: Vec<LineId> = {
            let mut state = self.state();
            let lost = served
                .iter()
                .filter(|(l, epoch)| !mine.contains_key(*l) && state.owned.get(*l) == Some(*epoch))
                .map(|(l, _)| l.clone())
                .collect::<Vec<_>>();
            for l in &lost {
                state.owned.remove(l);
            }
            lost
        };
        for line in &lost {
            tracing::warn!(line = %line, "another server took this line over");
            self.connector.relinquish(line).await;
        }
        let mut adopted = 0;
        for line in self.store.orphan_lines(now, ADOPT_PER_BEAT).await? {
            if self.take(&line, now).await? {
                adopted += 1;
            }
        }
        Ok(adopted)
    }

    /// Stops serving `line` (it was released and unlinked).
    pub async fn give_up(&self, line: &LineId) -> StoreResult<()> {
        self.state().owned.remove(line);
        self.store
            .give_up_lines(&self.holder, std::slice::from_ref(line))
            .await
    }

    /// How many lines this server serves.
    pub fn owned_count(&self) -> usize {
        self.state().owned.len()
    }

    /// The heartbeat loop, every [`LINE_LEASE_HEARTBEAT`] (real time: proofs of life are
    /// wall-clock) until `stop`; then ends this server's proof of life so that the other
    /// servers adopt its lines at once instead of after [`LINE_LEASE`].
    pub async fn run_forever(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = Duration::try_from(LINE_LEASE_HEARTBEAT).unwrap_or(Duration::from_secs(5));
        loop {
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "line ownership heartbeat failed; lines pass to other servers in {LINE_LEASE} without one");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    /// Ends this server's proof of life and gives up its lines (a clean shutdown, after the
    /// worker stopped running jobs).
    pub async fn shutdown(&self) {
        let lines: Vec<LineId> = self.state().owned.drain().map(|(l, _)| l).collect();
        for line in &lines {
            self.connector.relinquish(line).await;
        }
        if let Err(e) = self.store.server_gone(&self.holder).await {
            tracing::warn!(error = %e, "could not give up this server's lines; others adopt them in {LINE_LEASE}");
        }
    }
}
