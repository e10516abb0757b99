//! The pricing engine's state rows as this server last wrote them, so the next event that
//! shares a row is priced at once instead of after the previous one's commit.
//!
//! A write is remembered when its batch is handed over to be committed in order (while its
//! turn on the state is held), not when it commits: the next event builds on it, and its
//! batch reaches the database after it. Every write stays guarded by the versions it was
//! priced on, and each write's version is unique (see `PricingWrite::version`), so the memory
//! can only make the database refuse a write, never accept a wrong one: a write priced on
//! state that did not commit (another server moved the row, or the write before it failed) is
//! refused, its state forgotten, and the event priced again from the database.

use std::collections::HashMap;
use std::sync::Mutex;

use wagate_store::{PricingKey, PricingRows, PricingWrite};

/// Rows remembered at most; beyond it the memory starts over (only a cost: rows are read
/// again).
const MAX_ROWS: usize = 200_000;

type PairRow = Option<(String, i64)>;
type TiersRow = Option<(u64, u64, i64)>;
type FreeRow = Option<(i32, u32, i64)>;

#[derive(Default)]
struct Rows {
    pairs: HashMap<(String, String), PairRow>,
    tiers: HashMap<(String, String, i32), TiersRow>,
    free: HashMap<String, FreeRow>,
}

impl Rows {
    fn len(&self) -> usize {
        self.pairs.len() + self.tiers.len() + self.free.len()
    }
}

/// The pricing state rows this server wrote, by key (`None` inside: known to be absent).
#[derive(Default)]
pub(crate) struct StateMemory {
    rows: Mutex<Rows>,
}

/// What the memory holds of one key's rows (`None`: not remembered).
pub(crate) struct Remembered {
    pair: Option<PairRow>,
    tiers: Option<TiersRow>,
    free: Option<FreeRow>,
}

impl Remembered {
    /// Whether every row is remembered (nothing to read from the database).
    pub(crate) fn complete(&self) -> bool {
        self.pair.is_some() && self.tiers.is_some() && self.free.is_some()
    }

    /// The rows, the remembered ones over `read` (what the database held when it was read,
    /// which a remembered row is never older than).
    pub(crate) fn over(self, read: PricingRows) -> PricingRows {
        PricingRows {
            pair: self.pair.unwrap_or(read.pair),
            tiers: self.tiers.unwrap_or(read.tiers),
            free: self.free.unwrap_or(read.free),
        }
    }
}

fn pair_key(k: &PricingKey) -> (String, String) {
    (k.business.clone(), k.user.clone())
}

fn tiers_key(k: &PricingKey) -> (String, String, i32) {
    (k.portfolio.clone(), k.market.clone(), k.month)
}

impl StateMemory {
    fn lock(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is remembered of `key`'s rows.
    pub(crate) fn get(&self, key: &PricingKey) -> Remembered {
        let rows = self.lock();
        Remembered {
            pair: rows.pairs.get(&pair_key(key)).cloned(),
            tiers: rows.tiers.get(&tiers_key(key)).copied(),
            free: rows.free.get(&key.waba).copied(),
        }
    }

    /// Remembers the rows as `write` leaves them once committed: exactly what the store's
    /// write does. A counter the event did not move keeps its row and version, and is only
    /// remembered as read if nothing is remembered of it: the event held no turn on that row
    /// (a marketing template does not wait for its market's tier counter), so an event that
    /// moved it meanwhile may have remembered a newer state, which a stale read must not
    /// overwrite (every later write of the counter would be refused by the database).
    pub(crate) fn remember(&self, write: &PricingWrite) {
        let k = &write.key;
        let pair = write
            .pair
            .as_ref()
            .map(|(state, _)| (state.clone(), write.version));
        let tiers = match write.read.tiers {
            Some((u, a, v)) if (u, a) == (write.utility, write.authentication) => {
                Err(Some((u, a, v)))
            }
            _ => Ok(Some((write.utility, write.authentication, write.version))),
        };
        let free = match write.read.free {
            Some((m, used, v)) if m == k.month && used == write.free_used => {
                Err(Some((m, used, v)))
            }
            _ => Ok(Some((k.month, write.free_used, write.version))),
        };
        let mut rows = self.lock();
        if rows.len() >= MAX_ROWS {
            *rows = Rows::default();
        }
        rows.pairs.insert(pair_key(k), pair);
        // Ok: moved by this write; Err: left as read.
        match tiers {
            Ok(moved) => drop(rows.tiers.insert(tiers_key(k), moved)),
            Err(read) => drop(rows.tiers.entry(tiers_key(k)).or_insert(read)),
        }
        match free {
            Ok(moved) => drop(rows.free.insert(k.waba.clone(), moved)),
            Err(read) => drop(rows.free.entry(k.waba.clone()).or_insert(read)),
        }
    }

    /// Forgets `key`'s rows: a write on them was refused or failed, so the database, not the
    /// memory, says what they hold.
    pub(crate) fn forget(&self, key: &PricingKey) {
        let mut rows = self.lock();
        rows.pairs.remove(&pair_key(key));
        rows.tiers.remove(&tiers_key(key));
        rows.free.remove(&key.waba);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PricingKey {
        PricingKey {
            business: "+15550001".into(),
            user: "+919800000001".into(),
            waba: "waba1".into(),
            portfolio: "acme".into(),
            market: "India".into(),
            month: 24321,
        }
    }

    fn write(read: PricingRows, pair: Option<&str>, utility: u64, version: i64) -> PricingWrite {
        PricingWrite {
            key: key(),
            read,
            pair: pair.map(|p| (p.to_owned(), "2026-10-02T00:00:00Z".parse().unwrap())),
            utility,
            authentication: 0,
            free_used: 0,
            version,
        }
    }

    #[test]
    fn remembers_what_the_store_write_leaves() {
        let memory = StateMemory::default();
        assert!(!memory.get(&key()).complete());
        memory.remember(&write(PricingRows::default(), Some("a"), 1, 7));
        let got = memory.get(&key());
        assert!(got.complete());
        let rows = got.over(PricingRows::default());
        assert_eq!(rows.pair, Some(("a".into(), 7)));
        assert_eq!(rows.tiers, Some((1, 0, 7)));
        assert_eq!(rows.free, Some((24321, 0, 7)));

        // A counter left as read keeps its version; a deleted pair is known to be absent.
        memory.remember(&write(rows, None, 1, 9));
        let rows = memory.get(&key()).over(PricingRows {
            pair: Some(("stale".into(), 1)),
            ..PricingRows::default()
        });
        assert_eq!(rows.pair, None);
        assert_eq!(rows.tiers, Some((1, 0, 7)));
        assert_eq!(rows.free, Some((24321, 0, 7)));

        // An event that left the counter as it read it (a marketing template, which takes no
        // turn on the counter) does not put back what it read over a newer state.
        memory.remember(&write(rows.clone(), None, 2, 11));
        memory.remember(&write(rows, None, 1, 12));
        let rows = memory.get(&key()).over(PricingRows::default());
        assert_eq!(rows.tiers, Some((2, 0, 11)));

        memory.forget(&key());
        let read = PricingRows {
            tiers: Some((5, 5, 3)),
            ..PricingRows::default()
        };
        assert_eq!(memory.get(&key()).over(read.clone()), read);
    }
}
