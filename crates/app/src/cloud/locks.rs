//! Serialises, within this server, the pricing of events that share engine state.
//!
//! The state rows are written under the versions they were read at, which keeps several
//! servers correct; but a busy market's tier counter is moved by every utility and
//! authentication message of the portfolio, and concurrent deliveries racing on it would
//! mostly be refused and priced again. Events that share a pair or a counter take their turn
//! here instead, so within a server the versioned write (almost) never conflicts.

use std::hash::{BuildHasher, Hash};

use tokio::sync::{Mutex, MutexGuard};

/// Lock stripes: keys hash onto them (two keys may share a stripe; that only costs a wait).
const STRIPES: usize = 512;

/// Striped locks keyed by any hashable state name.
pub(crate) struct StateLocks {
    stripes: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for StateLocks {
    fn default() -> Self {
        StateLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
        }
    }
}

impl StateLocks {
    /// Waits for every key's stripe, taken in stripe order so two events never wait on each
    /// other; held until the guards drop.
    pub(crate) async fn lock<K: Hash>(&self, keys: &[K]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys
            .iter()
            .map(|k| (self.hasher.hash_one(k) as usize) % STRIPES)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            guards.push(self.stripes[s].lock().await);
        }
        guards
    }
}
