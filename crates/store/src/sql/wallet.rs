//! The wallet's writes, shared by a batch committed alone (`lines.rs`), a worker's batches
//! committed together (`LineStore::commit_many`) and a group of Meta notifications
//! (`meta_group.rs`): the billing row made on first use, a balance moved once for several
//! transactions, and the ledger rows of each transaction.

use jiff::Timestamp;
use sqlx::AnyConnection;
use wagate_domain::billing::ledger::LedgerAccount;
use wagate_domain::ids::{AccountId, TransactionId};
use wagate_domain::time::to_micros;

use super::lines::ledger_account_name;
use super::script::Arg;
use super::{int, param, Backend};
use crate::error::corrupt;
use crate::{NewWalletTxn, StoreResult};

/// Starts an auto top-up unless one is in flight (`$1`: the account); one row when started.
pub(crate) const START_AUTO_TOPUP: &str = "UPDATE billing_accounts SET auto_topup_in_flight = 1
     WHERE account_id = $1 AND auto_topup_in_flight = 0";

/// Creates the billing rows of the accounts in `values` (one column: the account id) that
/// have none.
pub(crate) fn ensure_billing_rows_sql(values: &str) -> String {
    format!(
        "INSERT INTO billing_accounts (account_id, currency, balance, auto_topup_enabled,
             auto_topup_threshold, auto_topup_amount, auto_topup_in_flight, trial_used, version)
         SELECT v.column1, 'USD', 0, 0, 0, 0, 0, 0, 0 FROM (VALUES {values}) AS v WHERE true
         ON CONFLICT (account_id) DO NOTHING"
    )
}

/// Creates the account's billing row if missing (inside the caller's transaction).
pub(crate) async fn ensure_billing_row(
    conn: &mut AnyConnection,
    account: &AccountId,
) -> StoreResult<()> {
    let sql = ensure_billing_rows_sql(&format!("({})", param(Backend::of(conn), 1)));
    sqlx::query(&sql)
        .bind(account.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The ledger rows of wallet transactions, to insert with [`ledger_transactions_sql`] and
/// [`ledger_entries_sql`].
#[derive(Default)]
pub(crate) struct LedgerRows<'a> {
    /// `ledger_transactions` rows.
    pub(crate) txns: Vec<[Arg<'a>; 10]>,
    /// `ledger_entries` rows.
    pub(crate) entries: Vec<[Arg<'a>; 4]>,
}

impl<'a> LedgerRows<'a> {
    /// Adds transaction `t` of `account`'s wallet, which moved it by `delta` to
    /// `balance_after`, at `now`.
    pub(crate) fn push(
        &mut self,
        account: &'a AccountId,
        t: &'a NewWalletTxn,
        delta: i64,
        balance_after: i64,
        now: Timestamp,
    ) {
        self.txns.push([
            t.id.as_str().into(),
            account.as_str().into(),
            t.posting.txn_type().as_str().into(),
            delta.into(),
            balance_after.into(),
            t.line_id.as_ref().map(|l| l.as_str()).into(),
            t.payment_id.as_ref().map(|p| p.as_str()).into(),
            t.reverses.as_ref().map(TransactionId::as_str).into(),
            t.description.as_str().into(),
            to_micros(now).into(),
        ]);
        let wallet = LedgerAccount::Wallet(account.clone());
        for e in t.posting.entries() {
            self.entries.push([
                t.id.as_str().into(),
                ledger_account_name(&e.account).into(),
                e.amount.into(),
                Arg::Int((e.account == wallet).then_some(balance_after)),
            ]);
        }
    }
}

/// Inserts the `ledger_transactions` rows of `values` (rows of [`LedgerRows::txns`]).
pub(crate) fn ledger_transactions_sql(values: &str) -> String {
    format!(
        "INSERT INTO ledger_transactions (id, account_id, type, amount, balance_after, line_id,
             payment_id, reverses, description, created_at)
         VALUES {values}"
    )
}

/// Inserts the `ledger_entries` rows of `values` (rows of [`LedgerRows::entries`]).
pub(crate) fn ledger_entries_sql(values: &str) -> String {
    format!(
        "INSERT INTO ledger_entries (transaction_id, ledger_account, amount, balance_after)
         VALUES {values}"
    )
}

/// The wallet change of `t` for `account`.
pub(crate) fn wallet_delta(t: &NewWalletTxn, account: &AccountId) -> StoreResult<i64> {
    i64::try_from(t.posting.wallet_delta(account)).map_err(|_| corrupt("wallet delta", "overflow"))
}

/// Applies wallet transactions (in order, each with its account and time) with one balance
/// move per account, refused (`None`) if any running balance on the way would be negative;
/// otherwise the ledger rows to insert, each transaction's `balance_after` being that
/// running balance. The account rows must exist.
pub(crate) async fn move_balances<'a>(
    conn: &mut AnyConnection,
    txns: &[(&'a NewWalletTxn, &'a AccountId, Timestamp)],
) -> StoreResult<Option<LedgerRows<'a>>> {
    // (account, total, lowest running total)
    let mut moves: Vec<(&AccountId, i64, i64)> = Vec::new();
    let mut running = Vec::with_capacity(txns.len());
    for (t, account, _) in txns {
        let delta = wallet_delta(t, account)?;
        let i = match moves.iter().position(|(a, _, _)| a == account) {
            Some(i) => i,
            None => {
                moves.push((account, 0, 0));
                moves.len() - 1
            }
        };
        moves[i].1 += delta;
        moves[i].2 = moves[i].2.min(moves[i].1);
        running.push((delta, moves[i].1));
    }
    let mut start: Vec<(&AccountId, i64)> = Vec::new();
    for (account, total, lowest) in &moves {
        let row = sqlx::query(
            "UPDATE billing_accounts SET balance = balance + $2
             WHERE account_id = $1 AND balance + $3 >= 0 RETURNING balance",
        )
        .bind(account.as_str())
        .bind(*total)
        .bind(*lowest)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        start.push((account, int(&row, "balance")? - total));
    }
    let mut rows = LedgerRows::default();
    for ((t, account, now), (delta, running)) in txns.iter().zip(running) {
        let from = start
            .iter()
            .find(|(a, _)| a == account)
            .map_or(0, |(_, s)| *s);
        rows.push(account, t, delta, from + running, *now);
    }
    Ok(Some(rows))
}
