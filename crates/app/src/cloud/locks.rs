//! Serialises, within this server, the pricing of events that share engine state; and the
//! short memory of which line serves a Meta number.
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

/// How long a number's line is remembered.
const REMEMBER_NUMBER: std::time::Duration = std::time::Duration::from_secs(1);
/// Numbers remembered at most; beyond it the memory starts over.
const MAX_NUMBERS: usize = 10_000;

/// A line and its Meta identity.
type ServedBy = (wagate_store::LineRecord, wagate_store::CloudLineRecord);

/// The open line of each Meta phone number id, for a second (see `line_of`).
#[derive(Default)]
pub(crate) struct RecentNumbers {
    lines: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, ServedBy)>>,
}

impl RecentNumbers {
    /// The number's line, if read less than a second ago.
    pub(crate) fn get(&self, number: &str) -> Option<ServedBy> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .get(number)
            .filter(|(at, _)| at.elapsed() < REMEMBER_NUMBER)
            .map(|(_, line)| line.clone())
    }

    /// Remembers the number's line.
    pub(crate) fn put(&self, number: &str, line: ServedBy) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() >= MAX_NUMBERS {
            lines.clear();
        }
        lines.insert(number.to_owned(), (std::time::Instant::now(), line));
    }
}
