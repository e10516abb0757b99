//! An ordered group of Meta notifications written a kind of row at a time.
//!
//! A notification's batch is about ten statements (its delivery key, the pricing state rows
//! under their versions, the message's move and cost, the wallet debit and its ledger rows),
//! and the ordered flusher ran them one batch after another: on PostgreSQL a round trip each,
//! on SQLite a hand-off to the connection's thread each — what bounded Meta ingest
//! (BENCHMARKS.md, issue 12). A group whose batches all have that shape ([`bulk_shaped`]) is
//! written here in a dozen multi-row statements whatever its size, keeping every guard of
//! the batch-by-batch path:
//! - delivery keys and message costs are inserted `ON CONFLICT DO NOTHING RETURNING`, and
//!   every row must come back (a retried notification, a message priced twice);
//! - message moves are checked together, each message at most once in a group;
//! - a pricing row the group moves several times (a busy market's tier counter) is chained in
//!   memory: each write must have been priced on the state the one before it left, so only
//!   the last state is written, guarded by the version the first write read;
//! - an account's debits are one balance update, which must leave every balance in between
//!   at or above zero, as applying them one by one would.
//!
//! Whatever would be refused makes [`write`] answer `false` before the commit: the caller
//! rolls the transaction back and writes the group batch by batch with savepoints, which
//! finds the batch refused and answers it alone. The statements' order follows
//! [`SqlStore::commit_in`](super::SqlStore): the account's billing row is updated last, so
//! its lock is held only to the commit.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use jiff::Timestamp;
use sqlx::AnyConnection;
use wagate_domain::ids::{AccountId, TransactionId};
use wagate_domain::jobs::NewJob;
use wagate_domain::time::to_micros;

use super::group::{message_update_row, update_messages_sql};
use super::jobs::push_insert_jobs;
use super::lines::push_insert_messages;
use super::script::{bind, Arg, Script};
use super::wallet::{
    ensure_billing_rows_sql, ledger_entries_sql, ledger_transactions_sql, move_balances,
    START_AUTO_TOPUP,
};
use super::{placeholders, Backend, MAX_PARAMS};
use crate::{Batch, MessageUpdate, NewWalletTxn, PricingWrite, StoreResult};

/// Whether a batch can be written kind by kind with the others of its group: a Meta
/// notification (an inbound message or a status, with its pricing and its debit) and nothing
/// that only the batch-by-batch path writes.
pub(crate) fn bulk_shaped(batch: &Batch) -> bool {
    let Some(meta) = &batch.meta else {
        return false;
    };
    let money = !batch.wallet_txns.is_empty() || batch.start_auto_topup.is_some();
    meta.insert_cloud_line.is_none()
        && meta.release_cloud_line.is_none()
        && meta.insert_cloud_message.is_none()
        && batch.insert_line.is_none()
        && batch.update_line.is_none()
        && (batch.update_messages.is_empty() || batch.messages_must_move)
        && batch.billing_patch.is_none()
        && !batch.claim_trial
        && batch.payment_update.is_none()
        && batch.line_charge.is_none()
        && batch.calls.is_none()
        && batch.days.is_none()
        && batch.numbers.is_none()
        && batch.finish_job.is_none()
        && (!money || batch.billing_account.is_some())
}

/// A pricing row as the group leaves it: the version the group's first write of it read
/// (`None`: no row), and its last state with that write's version (`None`: deleted).
struct Chain<S> {
    first: Option<i64>,
    last: Option<(S, i64)>,
}

/// Adds one write of a row to its chain; false when it was not priced on the state the
/// group's previous write of that row left (the batch-by-batch path would refuse it).
fn step<K: Ord, S>(
    chains: &mut BTreeMap<K, Chain<S>>,
    key: K,
    read: Option<i64>,
    state: Option<S>,
    version: i64,
) -> bool {
    let last = state.map(|s| (s, version));
    match chains.entry(key) {
        Entry::Vacant(e) => {
            e.insert(Chain { first: read, last });
            true
        }
        Entry::Occupied(mut e) => {
            if e.get().last.as_ref().map(|(_, v)| *v) != read {
                return false;
            }
            e.get_mut().last = last;
            true
        }
    }
}

type PairKey<'a> = (&'a str, &'a str);
type TierKey<'a> = (&'a str, &'a str, i64);

/// The pricing rows of a group, chained.
#[derive(Default)]
struct PricingPlan<'a> {
    /// (business, user) → (state, expires_at).
    pairs: BTreeMap<PairKey<'a>, Chain<(&'a str, i64)>>,
    /// (portfolio, market, month) → (utility, authentication).
    tiers: BTreeMap<TierKey<'a>, Chain<(i64, i64)>>,
    /// WABA → (month, used).
    free: BTreeMap<&'a str, Chain<(i64, i64)>>,
}

impl<'a> PricingPlan<'a> {
    /// Chains one event's write, skipping the rows it leaves alone exactly as
    /// `meta::write_pricing` does; false when the write could not apply after the group's
    /// earlier ones.
    fn add(&mut self, p: &'a PricingWrite) -> bool {
        let k = &p.key;
        let pair_ok = match (&p.read.pair, &p.pair) {
            (None, None) => true,
            (read, state) => step(
                &mut self.pairs,
                (k.business.as_str(), k.user.as_str()),
                read.as_ref().map(|(_, v)| *v),
                state.as_ref().map(|(s, at)| (s.as_str(), to_micros(*at))),
                p.version,
            ),
        };
        let utility = i64::try_from(p.utility).unwrap_or(i64::MAX);
        let authentication = i64::try_from(p.authentication).unwrap_or(i64::MAX);
        let tiers_ok = match p.read.tiers {
            Some((u, a, _)) if (u, a) == (p.utility, p.authentication) => true,
            read => step(
                &mut self.tiers,
                (k.portfolio.as_str(), k.market.as_str(), i64::from(k.month)),
                read.map(|(_, _, v)| v),
                Some((utility, authentication)),
                p.version,
            ),
        };
        let free_ok = match p.read.free {
            Some((month, used, _)) if month == k.month && used == p.free_used => true,
            read => step(
                &mut self.free,
                k.waba.as_str(),
                read.map(|(_, _, v)| v),
                Some((i64::from(k.month), i64::from(p.free_used))),
                p.version,
            ),
        };
        pair_ok && tiers_ok && free_ok
    }
}

/// Writes `batches` (all [`bulk_shaped`], in order, their events taken out) in the caller's
/// transaction; false when one of them would be refused (the caller rolls back: some rows
/// may be written).
pub(crate) async fn write(
    conn: &mut AnyConnection,
    backend: Backend,
    batches: &[(&Batch, Timestamp)],
) -> StoreResult<bool> {
    // Everything decided in memory first: a plan that cannot apply costs no statement.
    let mut pricing = PricingPlan::default();
    let mut updates: Vec<&MessageUpdate> = Vec::new();
    // The wallet transactions in order, each account once, and each account's first auto
    // top-up (a later one in the group would find the first in flight).
    let mut txns: Vec<(&NewWalletTxn, &AccountId, Timestamp)> = Vec::new();
    let mut accounts: Vec<&AccountId> = Vec::new();
    let mut topups: Vec<(&AccountId, &NewJob, Timestamp)> = Vec::new();
    for (batch, now) in batches {
        let Some(meta) = &batch.meta else {
            return Ok(false);
        };
        if let Some(p) = &meta.pricing {
            if !pricing.add(p) {
                return Ok(false);
            }
        }
        updates.extend(&batch.update_messages);
        let Some(account) = &batch.billing_account else {
            continue;
        };
        if !accounts.contains(&account) {
            accounts.push(account);
        }
        txns.extend(batch.wallet_txns.iter().map(|t| (t, account, *now)));
        if let Some(job) = &batch.start_auto_topup {
            if !topups.iter().any(|(a, _, _)| *a == account) {
                topups.push((account, job, *now));
            }
        }
    }
    let mut moved: Vec<&str> = updates.iter().map(|u| u.id.as_str()).collect();
    moved.sort_unstable();
    moved.dedup();
    if moved.len() != updates.len() {
        // A message moved twice in one group: each move is checked against the status the
        // one before it left, which only the batch-by-batch path sees.
        return Ok(false);
    }

    // Rows no guard depends on: inbound messages, jobs, billing rows to debit.
    let mut script = Script::new(backend);
    let inserted: Vec<_> = batches
        .iter()
        .flat_map(|(b, _)| &b.insert_messages)
        .collect();
    push_insert_messages(&mut script, &inserted);
    let jobs: Vec<(&NewJob, Timestamp)> = batches
        .iter()
        .flat_map(|(b, now)| b.jobs.iter().map(move |j| (j, *now)))
        .collect();
    if !jobs.is_empty() {
        push_insert_jobs(&mut script, &jobs);
    }
    script.run(conn).await?;

    // The guarded rows, sent together (one statement on PostgreSQL).
    let mut guarded = Guarded::new(backend);
    // Debited later in its own statement, which sees this one's rows.
    guarded.unchecked_rows(&accounts, ensure_billing_rows_sql, |a| [a.as_str().into()]);
    let keys: Vec<(&str, Timestamp)> = batches
        .iter()
        .filter_map(|(b, now)| {
            let key = b.meta.as_ref()?.delivery_key.as_deref()?;
            Some((key, *now))
        })
        .collect();
    guarded.rows(
        &keys,
        |v| {
            format!(
                "INSERT INTO meta_deliveries (dedupe_key, received_at) VALUES {v}
                 ON CONFLICT DO NOTHING RETURNING dedupe_key"
            )
        },
        |(key, now)| [(*key).into(), to_micros(*now).into()],
    );
    guarded.rows(
        &updates,
        |v| format!("{} RETURNING messages.id AS id", update_messages_sql(v)),
        |u| message_update_row(u),
    );

    if !push_pricing(&mut guarded, &pricing) {
        return Ok(false);
    }
    let priced: Vec<&crate::MessagePricingRecord> = batches
        .iter()
        .filter_map(|(b, _)| b.meta.as_ref()?.message_pricing.as_ref())
        .collect();
    guarded.rows(
        &priced,
        |v| {
            format!(
                "INSERT INTO message_pricing (message_id, account_id, line_id, waba_id,
                     delivered_at, ours, amount, currency, transaction_id, meta)
                 VALUES {v} ON CONFLICT DO NOTHING RETURNING message_id"
            )
        },
        |m| {
            [
                m.message_id.as_str().into(),
                m.account_id.as_str().into(),
                m.line_id.as_str().into(),
                m.waba_id.as_str().into(),
                to_micros(m.delivered_at).into(),
                m.ours.as_str().into(),
                m.amount.0.into(),
                m.currency.as_str().into(),
                m.transaction_id.as_ref().map(TransactionId::as_str).into(),
                m.meta.as_deref().into(),
            ]
        },
    );
    if !guarded.all_returned(conn).await? {
        return Ok(false);
    }
    write_money(conn, backend, &txns, &topups).await
}

/// Each account's balance moved once by the sum of its transactions (only if every balance
/// in between stays at or above zero, see [`move_balances`]), then the transactions and their
/// ledger entries, and an auto top-up started for each of `topups` with none in flight;
/// false when a balance would go below zero.
async fn write_money(
    conn: &mut AnyConnection,
    backend: Backend,
    txns: &[(&NewWalletTxn, &AccountId, Timestamp)],
    topups: &[(&AccountId, &NewJob, Timestamp)],
) -> StoreResult<bool> {
    let Some(rows) = move_balances(conn, txns).await? else {
        return Ok(false);
    };
    let mut started: Vec<(&NewJob, Timestamp)> = Vec::new();
    for (account, job, now) in topups {
        let done = sqlx::query(START_AUTO_TOPUP)
            .bind(account.as_str())
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 1 {
            started.push((job, *now));
        }
    }
    let mut ledger = Guarded::new(backend);
    ledger.unchecked_owned_rows(rows.txns, ledger_transactions_sql);
    ledger.unchecked_owned_rows(rows.entries, ledger_entries_sql);
    ledger.all_returned(conn).await?;
    if !started.is_empty() {
        let mut script = Script::new(backend);
        push_insert_jobs(&mut script, &started);
        script.run(conn).await?;
    }
    Ok(true)
}

/// Adds the chained pricing rows to `guarded`, each guarded by the version its first write
/// read; false when the plan cannot be written so (a pair inserted and deleted again within
/// the group: no single statement checks that no row exists).
fn push_pricing<'a>(guarded: &mut Guarded<'a>, plan: &'a PricingPlan<'a>) -> bool {
    type PairRow<'a> = (&'a PairKey<'a>, &'a (&'a str, i64), i64, i64);
    let (mut new, mut changed, mut gone): (Vec<PairRow<'_>>, Vec<PairRow<'_>>, Vec<_>) =
        Default::default();
    for (k, c) in &plan.pairs {
        match (c.first, &c.last) {
            (None, None) => return false,
            (None, Some((state, version))) => new.push((k, state, *version, 0)),
            (Some(read), Some((state, version))) => changed.push((k, state, *version, read)),
            (Some(read), None) => gone.push((k, read)),
        }
    }
    guarded.rows(
        &new,
        |v| {
            format!(
                "INSERT INTO pricing_pairs (business, user_number, state, expires_at, version)
                 VALUES {v} ON CONFLICT DO NOTHING RETURNING version"
            )
        },
        |((b, u), (state, expires), version, _)| {
            [
                (*b).into(),
                (*u).into(),
                (*state).into(),
                (*expires).into(),
                (*version).into(),
            ]
        },
    );
    guarded.rows(
        &changed,
        |v| {
            format!(
                "WITH v (business, user_number, state, expires_at, version, read_version)
                     AS (VALUES {v})
                 UPDATE pricing_pairs SET state = v.state, expires_at = v.expires_at,
                     version = v.version
                 FROM v
                 WHERE pricing_pairs.business = v.business
                     AND pricing_pairs.user_number = v.user_number
                     AND pricing_pairs.version = v.read_version
                 RETURNING pricing_pairs.version AS version"
            )
        },
        |((b, u), (state, expires), version, read)| {
            [
                (*b).into(),
                (*u).into(),
                (*state).into(),
                (*expires).into(),
                (*version).into(),
                (*read).into(),
            ]
        },
    );
    guarded.rows(
        &gone,
        |v| {
            format!(
                "DELETE FROM pricing_pairs WHERE (business, user_number, version) IN
                     (VALUES {v})
                 RETURNING version"
            )
        },
        |((b, u), read)| [(*b).into(), (*u).into(), (*read).into()],
    );

    let (new, changed) = split_counters(&plan.tiers);
    guarded.rows(
        &new,
        |v| {
            format!(
                "INSERT INTO pricing_tiers (portfolio, market, month, utility, authentication,
                     version)
                 VALUES {v} ON CONFLICT DO NOTHING RETURNING version"
            )
        },
        |((p, m, month), u, a, version, _)| {
            [
                (*p).into(),
                (*m).into(),
                (*month).into(),
                (*u).into(),
                (*a).into(),
                (*version).into(),
            ]
        },
    );
    guarded.rows(
        &changed,
        |v| {
            format!(
                "WITH v (portfolio, market, month, utility, authentication, version,
                     read_version) AS (VALUES {v})
                 UPDATE pricing_tiers SET utility = v.utility,
                     authentication = v.authentication, version = v.version
                 FROM v
                 WHERE pricing_tiers.portfolio = v.portfolio
                     AND pricing_tiers.market = v.market AND pricing_tiers.month = v.month
                     AND pricing_tiers.version = v.read_version
                 RETURNING pricing_tiers.version AS version"
            )
        },
        |((p, m, month), u, a, version, read)| {
            [
                (*p).into(),
                (*m).into(),
                (*month).into(),
                (*u).into(),
                (*a).into(),
                (*version).into(),
                (*read).into(),
            ]
        },
    );
    let (new, changed) = split_counters(&plan.free);
    guarded.rows(
        &new,
        |v| {
            format!(
                "INSERT INTO pricing_free_tiers (waba, month, used, version)
                 VALUES {v} ON CONFLICT DO NOTHING RETURNING version"
            )
        },
        |(waba, month, used, version, _)| {
            [
                (**waba).into(),
                (*month).into(),
                (*used).into(),
                (*version).into(),
            ]
        },
    );
    guarded.rows(
        &changed,
        |v| {
            format!(
                "WITH v (waba, month, used, version, read_version) AS (VALUES {v})
                 UPDATE pricing_free_tiers SET month = v.month, used = v.used,
                     version = v.version
                 FROM v
                 WHERE pricing_free_tiers.waba = v.waba
                     AND pricing_free_tiers.version = v.read_version
                 RETURNING pricing_free_tiers.version AS version"
            )
        },
        |(waba, month, used, version, read)| {
            [
                (**waba).into(),
                (*month).into(),
                (*used).into(),
                (*version).into(),
                (*read).into(),
            ]
        },
    );
    true
}

/// A counter row to write: its key, its two values, its new version, and the version read
/// (0 for a new row).
type CountRow<'a, K> = (&'a K, i64, i64, i64, i64);

/// A chained counter's rows split into those to insert and those to update.
fn split_counters<K>(
    chains: &BTreeMap<K, Chain<(i64, i64)>>,
) -> (Vec<CountRow<'_, K>>, Vec<CountRow<'_, K>>) {
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    for (k, c) in chains {
        // Counters are never deleted.
        let Some(((a, b), version)) = c.last else {
            continue;
        };
        match c.first {
            None => new.push((k, a, b, version, 0)),
            Some(read) => changed.push((k, a, b, version, read)),
        }
    }
    (new, changed)
}

/// One multi-row statement of a [`Guarded`] set: its arguments, and how many rows it must
/// return (`None`: it returns none and nothing is checked).
struct Part<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
    expected: Option<usize>,
}

/// Multi-row statements whose `RETURNING` rows are counted against what each must return.
/// On PostgreSQL they are sent as one statement, each a data-modifying CTE and their counts
/// selected: one round trip instead of one each. That is sound for the statements of a
/// group because they write different tables or different rows (the parts of one statement
/// see the same snapshot, not one another's rows). On SQLite they run one after another: a
/// hand-off each, which is cheap there.
struct Guarded<'a> {
    backend: Backend,
    parts: Vec<Part<'a>>,
}

impl<'a> Guarded<'a> {
    fn new(backend: Backend) -> Self {
        Guarded {
            backend,
            parts: Vec::new(),
        }
    }

    /// The number of the next statement's first parameter: on PostgreSQL the parts share one
    /// argument list.
    fn next_param(&self) -> usize {
        match self.backend {
            Backend::Postgres => 1 + self.parts.iter().map(|p| p.args.len()).sum::<usize>(),
            Backend::Sqlite => 1,
        }
    }

    /// Adds `sql` (given each part's placeholder rows) for `rows` (split so that no part has
    /// more than [`MAX_PARAMS`] parameters; `row` gives one row's arguments); every row must
    /// come back.
    fn rows<'r, T, const COLS: usize>(
        &mut self,
        rows: &'r [T],
        sql: impl Fn(&str) -> String,
        row: impl Fn(&'r T) -> [Arg<'a>; COLS],
    ) {
        self.push(rows.iter().map(row).collect(), sql, true);
    }

    /// [`Guarded::rows`] for a statement that returns nothing.
    fn unchecked_rows<'r, T, const COLS: usize>(
        &mut self,
        rows: &'r [T],
        sql: impl Fn(&str) -> String,
        row: impl Fn(&'r T) -> [Arg<'a>; COLS],
    ) {
        self.push(rows.iter().map(row).collect(), sql, false);
    }

    /// [`Guarded::unchecked_rows`] for rows whose arguments are made already.
    fn unchecked_owned_rows<const COLS: usize>(
        &mut self,
        rows: Vec<[Arg<'a>; COLS]>,
        sql: impl Fn(&str) -> String,
    ) {
        self.push(rows, sql, false);
    }

    fn push<const COLS: usize>(
        &mut self,
        rows: Vec<[Arg<'a>; COLS]>,
        sql: impl Fn(&str) -> String,
        checked: bool,
    ) {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<[Arg<'a>; COLS]> = rows.by_ref().take(MAX_PARAMS / COLS).collect();
            let values = placeholders(self.backend, chunk.len(), COLS, self.next_param());
            self.parts.push(Part {
                sql: sql(&values),
                expected: checked.then_some(chunk.len()),
                args: chunk.into_iter().flatten().collect(),
            });
        }
    }

    /// Runs the statements; whether each checked one returned all its rows.
    async fn all_returned(self, conn: &mut AnyConnection) -> StoreResult<bool> {
        if self.parts.is_empty() {
            return Ok(true);
        }
        match self.backend {
            Backend::Sqlite => {
                for p in self.parts {
                    let returned = bind(sqlx::query(&p.sql), p.args)
                        .fetch_all(&mut *conn)
                        .await?
                        .len();
                    if p.expected.is_some_and(|n| n != returned) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Backend::Postgres => {
                let mut sql = String::from("WITH ");
                let mut expected = Vec::new();
                let mut args = Vec::new();
                for (i, p) in self.parts.into_iter().enumerate() {
                    if i > 0 {
                        sql.push_str(",\n");
                    }
                    sql.push_str(&format!("s{i} AS ({})", p.sql));
                    if let Some(n) = p.expected {
                        expected.push((i, n));
                    }
                    args.extend(p.args);
                }
                let counts: Vec<String> = expected
                    .iter()
                    .map(|(i, _)| format!("(SELECT count(*) FROM s{i})"))
                    .collect();
                // A statement must select something; the unchecked parts run all the same.
                let select = match counts.is_empty() {
                    true => "0".to_string(),
                    false => counts.join(", "),
                };
                sql.push_str(&format!(" SELECT {select}"));
                let row = bind(sqlx::query(&sql), args).fetch_one(&mut *conn).await?;
                for (col, (_, n)) in expected.iter().enumerate() {
                    let returned: i64 = sqlx::Row::try_get(&row, col)?;
                    if usize::try_from(returned).ok() != Some(*n) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PricingKey, PricingRows};

    fn write(user: &str, read: PricingRows, utility: u64, version: i64) -> PricingWrite {
        PricingWrite {
            key: PricingKey {
                business: "+15550001".into(),
                user: user.into(),
                waba: "w".into(),
                portfolio: "p".into(),
                market: "India".into(),
                month: 24_321,
            },
            read,
            pair: Some(("s".into(), Timestamp::UNIX_EPOCH)),
            utility,
            authentication: 0,
            free_used: 0,
            version,
        }
    }

    fn read(pair: Option<i64>, tiers: Option<(u64, i64)>) -> PricingRows {
        PricingRows {
            pair: pair.map(|v| ("s".into(), v)),
            tiers: tiers.map(|(u, v)| (u, 0, v)),
            free: Some((24_321, 0, 1)),
        }
    }

    #[test]
    fn a_row_moved_in_turn_is_written_once_from_the_first_read() {
        let writes = [
            write("+1", read(None, Some((4, 10))), 5, 11),
            write("+2", read(Some(7), Some((5, 11))), 6, 12),
            // A marketing message: the counter is not moved, so its stale read is no conflict.
            write("+3", read(None, Some((4, 10))), 4, 13),
            write("+1", read(Some(11), Some((6, 12))), 7, 14),
        ];
        let mut plan = PricingPlan::default();
        assert!(writes.iter().all(|w| plan.add(w)));
        let tiers = &plan.tiers[&("p", "India", 24_321)];
        assert_eq!((tiers.first, tiers.last), (Some(10), Some(((7, 0), 14))));
        let first = &plan.pairs[&("+15550001", "+1")];
        assert_eq!((first.first, first.last.map(|(_, v)| v)), (None, Some(14)));
        assert_eq!(plan.pairs[&("+15550001", "+2")].first, Some(7));
        // The free-tier row was read as it stays: never written.
        assert!(plan.free.is_empty());
    }

    #[test]
    fn a_write_not_priced_on_the_one_before_it_refuses_the_plan() {
        let (first, stale) = (
            write("+1", read(None, Some((4, 10))), 5, 11),
            write("+2", read(None, Some((4, 10))), 5, 12),
        );
        let mut plan = PricingPlan::default();
        assert!(plan.add(&first));
        assert!(!plan.add(&stale));
        // The pair was created by the first write: a second that read no pair is stale.
        let (first, stale) = (
            write("+1", read(None, Some((4, 10))), 4, 11),
            write("+1", read(None, Some((4, 10))), 4, 12),
        );
        let mut plan = PricingPlan::default();
        assert!(plan.add(&first));
        assert!(!plan.add(&stale));
    }
}
