//! Lines, messages and billing on SQL.

use std::collections::HashSet;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use wagate_domain::billing::ledger::{LedgerAccount, TxnType};
use wagate_domain::billing::plan::Plan;
use wagate_domain::ids::{AccountId, JobId, LineId, MessageId};
use wagate_domain::jobs::NewJob;
use wagate_domain::line::{BillingStatus, LineKind, LineStatus, MessageKind, MessageStatus};
use wagate_domain::money::Micros;
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::to_micros;

use super::fast::Val;
use super::group::{can_join, enqueue_alone, WriteGroup};
use super::jobs::{insert_jobs, insert_jobs_many, remove_unleased_jobs};
use super::script::{Arg, Script};
use super::wallet::{
    ensure_billing_row, ledger_entries_sql, ledger_transactions_sql, move_balances, wallet_delta,
    LedgerRows, START_AUTO_TOPUP,
};
use super::webhooks::insert_events;
use super::{
    count, id, int, opt_int, opt_text, opt_ts, param, param_list, placeholders, text, ts, Backend,
    Cols, SqlStore, MAX_PARAMS,
};
use crate::error::corrupt;
use crate::{
    Batch, BillingAccountRecord, BillingPatch, CardRecord, Conflict, Direction, EnqueueRefused,
    LineRecord, LineStore, MessageRecord, NewEvent, NewLineCharge, NewWalletTxn, PaymentPurpose,
    PaymentRecord, PaymentStatus, StoreResult, TransactionRecord,
};

pub(crate) const LINE_COLS: &str =
    "id, account_id, version, status, calling_enabled, allow_calling, \
    calling_choice, plan, price, phone_number, connect_token, label, metadata, billing_status, \
    trial_ends_at, anchor_at, paid_period, current_period_start, current_period_end, \
    grace_ends_at, link_count, pairing_started_at, disconnected_at, reconnect_attempt, \
    disconnect_notified, sent_day, sent_today, created_at, ready_at, linked_at, released_at, \
    release_reason, updated_at, blocked_reason, rate_limited_until, kind";
pub(crate) const MESSAGE_COLS: &str =
    "id, account_id, line_id, direction, from_number, to_number, body, \
    status, error, provider_id, created_at, updated_at, kind";
const BILLING_COLS: &str = "account_id, currency, balance, customer_id, card_id, card_brand, \
    card_last4, card_exp_month, card_exp_year, card_added_at, auto_topup_enabled, \
    auto_topup_threshold, auto_topup_amount, auto_topup_in_flight, auto_topup_blocked_until, \
    trial_used, version";
const PAYMENT_COLS: &str = "id, account_id, purpose, attempt_key, line_id, period, amount, \
    status, processor_id, error_code, error_message, created_at";
const TXN_COLS: &str =
    "id, type, amount, balance_after, line_id, payment_id, description, created_at";

fn opt_u32(row: &(impl Cols + ?Sized), col: &'static str) -> StoreResult<Option<u32>> {
    Ok(opt_int(row, col)?.map(|v| v.clamp(0, i64::from(u32::MAX)) as u32))
}

pub(crate) fn line(row: &(impl Cols + ?Sized)) -> StoreResult<LineRecord> {
    let status = text(row, "status")?;
    let billing = text(row, "billing_status")?;
    let plan = opt_text(row, "plan")?
        .map(|p| match p.as_str() {
            "messaging" => Ok(Plan::Messaging),
            "calling" => Ok(Plan::Calling),
            _ => Err(corrupt("lines.plan", p)),
        })
        .transpose()?;
    Ok(LineRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        version: int(row, "version")?,
        status: LineStatus::from_db(&status).ok_or_else(|| corrupt("lines.status", &status))?,
        calling_enabled: int(row, "calling_enabled")? != 0,
        allow_calling: int(row, "allow_calling")? != 0,
        calling_choice: int(row, "calling_choice")? != 0,
        plan,
        price: opt_int(row, "price")?.map(Micros),
        phone_number: opt_text(row, "phone_number")?,
        connect_token: opt_text(row, "connect_token")?,
        label: opt_text(row, "label")?,
        metadata: serde_json::from_str(&text(row, "metadata")?)
            .map_err(|e| corrupt("lines.metadata", e))?,
        billing_status: BillingStatus::from_db(&billing)
            .ok_or_else(|| corrupt("lines.billing_status", &billing))?,
        trial_ends_at: opt_ts(row, "trial_ends_at")?,
        anchor_at: opt_ts(row, "anchor_at")?,
        paid_period: opt_u32(row, "paid_period")?,
        current_period_start: opt_ts(row, "current_period_start")?,
        current_period_end: opt_ts(row, "current_period_end")?,
        grace_ends_at: opt_ts(row, "grace_ends_at")?,
        link_count: count(row, "link_count")?,
        pairing_started_at: ts(row, "pairing_started_at")?,
        disconnected_at: opt_ts(row, "disconnected_at")?,
        reconnect_attempt: count(row, "reconnect_attempt")?,
        disconnect_notified: int(row, "disconnect_notified")? != 0,
        sent_day: int(row, "sent_day")?,
        sent_today: count(row, "sent_today")?,
        created_at: ts(row, "created_at")?,
        ready_at: opt_ts(row, "ready_at")?,
        linked_at: opt_ts(row, "linked_at")?,
        released_at: opt_ts(row, "released_at")?,
        release_reason: opt_text(row, "release_reason")?,
        updated_at: ts(row, "updated_at")?,
        blocked_reason: opt_text(row, "blocked_reason")?,
        rate_limited_until: opt_ts(row, "rate_limited_until")?,
        kind: {
            let kind = text(row, "kind")?;
            LineKind::from_db(&kind).ok_or_else(|| corrupt("lines.kind", kind))?
        },
    })
}

pub(crate) fn message(row: &(impl Cols + ?Sized)) -> StoreResult<MessageRecord> {
    let status = text(row, "status")?;
    let direction = match text(row, "direction")?.as_str() {
        "outbound" => Direction::Outbound,
        "inbound" => Direction::Inbound,
        other => return Err(corrupt("messages.direction", other)),
    };
    let kind = text(row, "kind")?;
    Ok(MessageRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        line_id: id(row, "line_id")?,
        direction,
        kind: MessageKind::from_db(&kind).ok_or_else(|| corrupt("messages.kind", &kind))?,
        from: opt_text(row, "from_number")?,
        to: opt_text(row, "to_number")?,
        text: text(row, "body")?,
        status: MessageStatus::from_db(&status)
            .ok_or_else(|| corrupt("messages.status", &status))?,
        error: opt_text(row, "error")?,
        provider_id: opt_text(row, "provider_id")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn billing_account(row: &(impl Cols + ?Sized)) -> StoreResult<BillingAccountRecord> {
    let card = match opt_text(row, "card_id")? {
        None => None,
        Some(card_id) => Some(CardRecord {
            card_id,
            brand: opt_text(row, "card_brand")?.unwrap_or_default(),
            last4: opt_text(row, "card_last4")?.unwrap_or_default(),
            exp_month: opt_u32(row, "card_exp_month")?.unwrap_or(0),
            exp_year: opt_u32(row, "card_exp_year")?.unwrap_or(0),
            added_at: opt_ts(row, "card_added_at")?.unwrap_or(Timestamp::UNIX_EPOCH),
        }),
    };
    Ok(BillingAccountRecord {
        account_id: id(row, "account_id")?,
        currency: text(row, "currency")?,
        balance: Micros(int(row, "balance")?),
        customer_id: opt_text(row, "customer_id")?,
        card,
        auto_topup_enabled: int(row, "auto_topup_enabled")? != 0,
        auto_topup_threshold: Micros(int(row, "auto_topup_threshold")?),
        auto_topup_amount: Micros(int(row, "auto_topup_amount")?),
        auto_topup_in_flight: int(row, "auto_topup_in_flight")? != 0,
        auto_topup_blocked_until: opt_ts(row, "auto_topup_blocked_until")?,
        trial_used: int(row, "trial_used")? != 0,
        version: int(row, "version")?,
    })
}

fn payment(row: &AnyRow) -> StoreResult<PaymentRecord> {
    let purpose = match text(row, "purpose")?.as_str() {
        "topup" => PaymentPurpose::Topup,
        "auto_topup" => PaymentPurpose::AutoTopup,
        "line_charge" => PaymentPurpose::LineCharge,
        "invoice" => PaymentPurpose::Invoice,
        other => return Err(corrupt("payments.purpose", other)),
    };
    let status = match text(row, "status")?.as_str() {
        "pending" => PaymentStatus::Pending,
        "succeeded" => PaymentStatus::Succeeded,
        "declined" => PaymentStatus::Declined,
        "failed" => PaymentStatus::Failed,
        other => return Err(corrupt("payments.status", other)),
    };
    Ok(PaymentRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        purpose,
        attempt_key: text(row, "attempt_key")?,
        line_id: opt_text(row, "line_id")?
            .map(|l| LineId::try_from(l).map_err(|e| corrupt("payments.line_id", e)))
            .transpose()?,
        period: opt_u32(row, "period")?,
        amount: Micros(int(row, "amount")?),
        status,
        processor_id: opt_text(row, "processor_id")?,
        error_code: opt_text(row, "error_code")?,
        error_message: opt_text(row, "error_message")?,
        created_at: ts(row, "created_at")?,
    })
}

fn transaction(row: &AnyRow) -> StoreResult<TransactionRecord> {
    let t = text(row, "type")?;
    let txn_type = match t.as_str() {
        "topup" => TxnType::Topup,
        "line_charge" => TxnType::LineCharge,
        "adjustment" => TxnType::Adjustment,
        "refund" => TxnType::Refund,
        "message_charge" => TxnType::MessageCharge,
        "number_charge" => TxnType::NumberCharge,
        _ => return Err(corrupt("ledger_transactions.type", t)),
    };
    Ok(TransactionRecord {
        id: id(row, "id")?,
        txn_type,
        amount: int(row, "amount")?,
        balance_after: int(row, "balance_after")?,
        line_id: opt_text(row, "line_id")?,
        payment_id: opt_text(row, "payment_id")?,
        description: text(row, "description")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn ledger_account_name(a: &LedgerAccount) -> String {
    match a {
        LedgerAccount::Wallet(acct) => format!("wallet:{acct}"),
        LedgerAccount::CardClearing => "card_clearing".into(),
        LedgerAccount::Revenue => "revenue".into(),
        LedgerAccount::Adjustments => "adjustments".into(),
    }
}

fn opt_micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(to_micros)
}

async fn write_line(conn: &mut AnyConnection, l: &LineRecord, insert: bool) -> StoreResult<bool> {
    let sql = if insert {
        "INSERT INTO lines (id, account_id, version, status, calling_enabled, allow_calling,
             calling_choice, plan, price, phone_number, connect_token, label, metadata,
             billing_status, trial_ends_at, anchor_at, paid_period, current_period_start,
             current_period_end, grace_ends_at, link_count, pairing_started_at, disconnected_at,
             reconnect_attempt, disconnect_notified, sent_day, sent_today, created_at, ready_at,
             linked_at, released_at, release_reason, updated_at, blocked_reason,
             rate_limited_until, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22, $23, $24, $25, 0, 0, $26, $27, $28, $29, $30, $31, $32,
             $33, $34)"
    } else {
        // The daily counters are left alone: only `enqueue_message` moves them, atomically.
        "UPDATE lines SET version = $3 + 1, status = $4, calling_enabled = $5,
             allow_calling = $6, calling_choice = $7, plan = $8, price = $9, phone_number = $10,
             connect_token = $11, label = $12, metadata = $13, billing_status = $14,
             trial_ends_at = $15, anchor_at = $16, paid_period = $17,
             current_period_start = $18, current_period_end = $19, grace_ends_at = $20,
             link_count = $21, pairing_started_at = $22, disconnected_at = $23,
             reconnect_attempt = $24, disconnect_notified = $25, created_at = $26,
             ready_at = $27, linked_at = $28, released_at = $29, release_reason = $30,
             updated_at = $31, blocked_reason = $32, rate_limited_until = $33
         WHERE id = $1 AND account_id = $2 AND version = $3"
    };
    let mut query = bind_line(sqlx::query(sql), l);
    if insert {
        // The kind is fixed at creation: updates never write it.
        query = query.bind(l.kind.as_str());
    }
    let done = query.execute(&mut *conn).await?;
    Ok(done.rows_affected() == 1)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the 33 written columns of a line, in [`LINE_WRITE_COLS`] order.
fn bind_line<'q>(q: AnyQuery<'q>, l: &'q LineRecord) -> AnyQuery<'q> {
    let metadata = serde_json::to_string(&l.metadata).unwrap_or_else(|_| "{}".into());
    q.bind(l.id.as_str())
        .bind(l.account_id.as_str())
        .bind(l.version)
        .bind(l.status.as_str())
        .bind(i64::from(l.calling_enabled))
        .bind(i64::from(l.allow_calling))
        .bind(i64::from(l.calling_choice))
        .bind(l.plan.map(Plan::as_str))
        .bind(l.price.map(|p| p.0))
        .bind(l.phone_number.as_deref())
        .bind(l.connect_token.as_deref())
        .bind(l.label.as_deref())
        .bind(metadata)
        .bind(l.billing_status.as_str())
        .bind(opt_micros(l.trial_ends_at))
        .bind(opt_micros(l.anchor_at))
        .bind(l.paid_period.map(i64::from))
        .bind(opt_micros(l.current_period_start))
        .bind(opt_micros(l.current_period_end))
        .bind(opt_micros(l.grace_ends_at))
        .bind(i64::from(l.link_count))
        .bind(to_micros(l.pairing_started_at))
        .bind(opt_micros(l.disconnected_at))
        .bind(i64::from(l.reconnect_attempt))
        .bind(i64::from(l.disconnect_notified))
        .bind(to_micros(l.created_at))
        .bind(opt_micros(l.ready_at))
        .bind(opt_micros(l.linked_at))
        .bind(opt_micros(l.released_at))
        .bind(l.release_reason.as_deref())
        .bind(to_micros(l.updated_at))
        .bind(l.blocked_reason.as_deref())
        .bind(opt_micros(l.rate_limited_until))
}

/// How many columns [`bind_line`] binds.
const LINE_WRITE_COL_COUNT: usize = 33;

/// The columns [`bind_line`] binds.
const LINE_WRITE_COLS: &str = "id, account_id, version, status, calling_enabled, allow_calling, \
    calling_choice, plan, price, phone_number, connect_token, label, metadata, billing_status, \
    trial_ends_at, anchor_at, paid_period, current_period_start, current_period_end, \
    grace_ends_at, link_count, pairing_started_at, disconnected_at, reconnect_attempt, \
    disconnect_notified, created_at, ready_at, linked_at, released_at, release_reason, updated_at, \
    blocked_reason, rate_limited_until";

pub(crate) async fn insert_message(conn: &mut AnyConnection, m: &MessageRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO messages (id, account_id, line_id, direction, from_number, to_number, body,
             status, error, provider_id, created_at, updated_at, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(m.id.as_str())
    .bind(m.account_id.as_str())
    .bind(m.line_id.as_str())
    .bind(m.direction.as_str())
    .bind(m.from.as_deref())
    .bind(m.to.as_deref())
    .bind(&m.text)
    .bind(m.status.as_str())
    .bind(m.error.as_deref())
    .bind(m.provider_id.as_deref())
    .bind(to_micros(m.created_at))
    .bind(to_micros(m.updated_at))
    .bind(m.kind.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Adds the inserts of `messages` (multi-row statements, in order) to `script`.
pub(crate) fn push_insert_messages<'a>(script: &mut Script<'a>, messages: &[&'a MessageRecord]) {
    script.push_rows(
        messages,
        |values| {
            format!(
                "INSERT INTO messages (id, account_id, line_id, direction, from_number, to_number,
                     body, status, error, provider_id, created_at, updated_at, kind)
                 VALUES {values}"
            )
        },
        |m| {
            [
                m.id.as_str().into(),
                m.account_id.as_str().into(),
                m.line_id.as_str().into(),
                m.direction.as_str().into(),
                m.from.as_deref().into(),
                m.to.as_deref().into(),
                m.text.as_str().into(),
                m.status.as_str().into(),
                m.error.as_deref().into(),
                m.provider_id.as_deref().into(),
                to_micros(m.created_at).into(),
                to_micros(m.updated_at).into(),
                m.kind.as_str().into(),
            ]
        },
    );
}

/// Applies one message status change (skipped if the message moved meanwhile); whether it
/// applied.
pub(crate) async fn update_message(
    conn: &mut AnyConnection,
    u: &crate::MessageUpdate,
) -> StoreResult<bool> {
    let (sql, args) = update_message_statement(Backend::of(conn), u);
    let q = super::script::bind(sqlx::query(&sql), args);
    Ok(q.execute(&mut *conn).await?.rows_affected() == 1)
}

/// Adds the statement of [`update_message`] to `script`.
pub(crate) fn push_update_message<'a>(script: &mut Script<'a>, u: &'a crate::MessageUpdate) {
    let (sql, args) = update_message_statement(script.backend(), u);
    script.push(sql, args);
}

/// The statement of [`update_message`] and its arguments.
fn update_message_statement(backend: Backend, u: &crate::MessageUpdate) -> (String, Vec<Arg<'_>>) {
    let sql = format!(
        "UPDATE messages SET status = {}, error = COALESCE({}, error),
             provider_id = COALESCE({}, provider_id), updated_at = {}
         WHERE id = {} AND status = {}",
        param(backend, 1),
        param(backend, 2),
        param(backend, 3),
        param(backend, 4),
        param(backend, 5),
        param(backend, 6),
    );
    (
        sql,
        vec![
            u.status.as_str().into(),
            u.error.as_deref().into(),
            u.provider_id.as_deref().into(),
            to_micros(u.at).into(),
            u.id.as_str().into(),
            u.from_status.as_str().into(),
        ],
    )
}

async fn patch_billing(
    conn: &mut AnyConnection,
    account: &AccountId,
    p: &BillingPatch,
) -> StoreResult<bool> {
    let row = sqlx::query(&format!(
        "SELECT {BILLING_COLS} FROM billing_accounts WHERE account_id = $1 AND version = $2"
    ))
    .bind(account.as_str())
    .bind(p.expected_version)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let mut b = billing_account(&row)?;
    if let Some(c) = &p.customer_id {
        b.customer_id = c.clone();
    }
    if let Some(c) = &p.card {
        b.card = c.clone();
    }
    if let Some((enabled, threshold, amount)) = p.auto_topup {
        b.auto_topup_enabled = enabled;
        b.auto_topup_threshold = threshold;
        b.auto_topup_amount = amount;
    }
    if let Some(f) = p.auto_topup_in_flight {
        b.auto_topup_in_flight = f;
    }
    if let Some(until) = p.auto_topup_blocked_until {
        b.auto_topup_blocked_until = until;
    }
    let card = b.card.as_ref();
    sqlx::query(
        "UPDATE billing_accounts SET customer_id = $3, card_id = $4, card_brand = $5,
             card_last4 = $6, card_exp_month = $7, card_exp_year = $8, card_added_at = $9,
             auto_topup_enabled = $10, auto_topup_threshold = $11, auto_topup_amount = $12,
             auto_topup_in_flight = $13, auto_topup_blocked_until = $14, version = $2 + 1
         WHERE account_id = $1 AND version = $2",
    )
    .bind(account.as_str())
    .bind(p.expected_version)
    .bind(b.customer_id.as_deref())
    .bind(card.map(|c| c.card_id.clone()))
    .bind(card.map(|c| c.brand.clone()))
    .bind(card.map(|c| c.last4.clone()))
    .bind(card.map(|c| i64::from(c.exp_month)))
    .bind(card.map(|c| i64::from(c.exp_year)))
    .bind(card.map(|c| to_micros(c.added_at)))
    .bind(i64::from(b.auto_topup_enabled))
    .bind(b.auto_topup_threshold.0)
    .bind(b.auto_topup_amount.0)
    .bind(i64::from(b.auto_topup_in_flight))
    .bind(opt_micros(b.auto_topup_blocked_until))
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Applies one wallet transaction: moves the balance (refusing to go below zero), then writes
/// the transaction and its entries with the resulting `balance_after`.
async fn apply_wallet_txn(
    conn: &mut AnyConnection,
    account: &AccountId,
    t: &NewWalletTxn,
    now: Timestamp,
) -> StoreResult<bool> {
    let delta = wallet_delta(t, account)?;
    let row = sqlx::query(
        "UPDATE billing_accounts SET balance = balance + $2
         WHERE account_id = $1 AND balance + $2 >= 0 RETURNING balance",
    )
    .bind(account.as_str())
    .bind(delta)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let mut rows = LedgerRows::default();
    rows.push(account, t, delta, int(&row, "balance")?, now);
    let mut script = Script::new(Backend::of(conn));
    script.push_owned_rows(rows.txns, ledger_transactions_sql);
    script.push_owned_rows(rows.entries, ledger_entries_sql);
    script.run(conn).await?;
    Ok(true)
}

impl SqlStore {
    /// [`LineStore::commit`] in a transaction of its own.
    pub(crate) async fn commit_alone(
        &self,
        batch: &Batch,
        now: Timestamp,
    ) -> StoreResult<Result<(), Conflict>> {
        let mut tx = self.begin_write().await?;
        match Self::commit_in(&mut tx, batch, now).await? {
            Ok(()) => {
                tx.commit().await?;
                Ok(Ok(()))
            }
            Err(conflict) => {
                tx.rollback().await?;
                Ok(Err(conflict))
            }
        }
    }

    /// The body of [`LineStore::commit`], inside its transaction.
    pub(crate) async fn commit_in(
        conn: &mut AnyConnection,
        batch: &Batch,
        now: Timestamp,
    ) -> StoreResult<Result<(), Conflict>> {
        if let Some(l) = &batch.insert_line {
            write_line(conn, l, true).await?;
        }
        if let Some(l) = &batch.update_line {
            if !write_line(conn, l, false).await? {
                return Ok(Err(Conflict::LineChanged));
            }
        }
        for m in &batch.insert_messages {
            insert_message(conn, m).await?;
        }
        for u in &batch.update_messages {
            if !update_message(conn, u).await? && batch.messages_must_move {
                return Ok(Err(Conflict::MessageChanged));
            }
        }
        // Everything else before the account's billing row: every debit and credit of an
        // account updates that one row, so its lock is taken last and held only to the commit.
        if let Some(meta) = &batch.meta {
            if let Err(conflict) = super::meta::apply_meta(conn, meta, now).await? {
                return Ok(Err(conflict));
            }
        }
        if let Some(calls) = &batch.calls {
            if let Err(conflict) = super::calls::apply_calls(conn, calls, now).await? {
                return Ok(Err(conflict));
            }
        }
        if let Some(days) = &batch.days {
            if let Err(conflict) = super::days::apply_days(conn, days, now).await? {
                return Ok(Err(conflict));
            }
        }
        if let Some(numbers) = &batch.numbers {
            if let Err(conflict) = super::numbers::apply_numbers(conn, numbers).await? {
                return Ok(Err(conflict));
            }
        }
        insert_events(conn, &batch.events, now).await?;
        insert_jobs(conn, &batch.jobs, now).await?;
        if let Some(account) = &batch.billing_account {
            ensure_billing_row(conn, account).await?;
            if let Some(p) = &batch.billing_patch {
                if !patch_billing(conn, account, p).await? {
                    return Ok(Err(Conflict::BillingChanged));
                }
            }
            if batch.claim_trial {
                let done = sqlx::query(
                    "UPDATE billing_accounts SET trial_used = 1
                     WHERE account_id = $1 AND trial_used = 0",
                )
                .bind(account.as_str())
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(Err(Conflict::TrialUsed));
                }
            }
            if let Some(u) = &batch.payment_update {
                let done = sqlx::query(
                    "UPDATE payments SET status = $2, processor_id = $3, error_code = $4,
                         error_message = $5, updated_at = $6
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(u.id.as_str())
                .bind(u.status.as_str())
                .bind(u.processor_id.as_deref())
                .bind(u.error_code.as_deref())
                .bind(u.error_message.as_deref())
                .bind(to_micros(now))
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(Err(Conflict::PaymentSettled));
                }
            }
            if let Some(c) = &batch.line_charge {
                let exists = sqlx::query(
                    "SELECT 1 AS one FROM line_charges WHERE line_id = $1 AND period = $2",
                )
                .bind(c.line_id.as_str())
                .bind(i64::from(c.period))
                .fetch_optional(&mut *conn)
                .await?;
                if exists.is_some() {
                    return Ok(Err(Conflict::AlreadyCharged));
                }
            }
            for t in &batch.wallet_txns {
                if !apply_wallet_txn(conn, account, t, now).await? {
                    return Ok(Err(Conflict::InsufficientBalance));
                }
            }
            if let Some(c) = &batch.line_charge {
                // The UNIQUE (line_id, period) key is the last word: a second server racing
                // past the check above fails here and its whole transaction rolls back.
                sqlx::query(
                    "INSERT INTO line_charges (account_id, line_id, period, amount, reason,
                         transaction_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(account.as_str())
                .bind(c.line_id.as_str())
                .bind(i64::from(c.period))
                .bind(c.amount.0)
                .bind(&c.reason)
                .bind(c.transaction_id.as_str())
                .bind(to_micros(now))
                .execute(&mut *conn)
                .await?;
            }
            if let Some(job) = &batch.start_auto_topup {
                let started = sqlx::query(START_AUTO_TOPUP)
                    .bind(account.as_str())
                    .execute(&mut *conn)
                    .await?;
                if started.rows_affected() == 1 {
                    insert_jobs(conn, std::slice::from_ref(job), now).await?;
                }
            }
        }
        if let Some(job) = &batch.finish_job {
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(job.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Ok(Ok(()))
    }

    /// The body of [`LineStore::commit_many`], inside its transaction.
    async fn commit_many_in(
        conn: &mut AnyConnection,
        backend: Backend,
        batches: &[(Batch, Timestamp)],
        done: &[JobId],
        wall_now: Timestamp,
    ) -> StoreResult<Result<(), Conflict>> {
        if !remove_unleased_jobs(conn, backend, done, wall_now).await? {
            return Ok(Err(Conflict::JobTaken));
        }
        if !bulk_shaped(batches) {
            for (batch, now) in batches {
                if let Err(c) = Self::commit_in(conn, batch, *now).await? {
                    return Ok(Err(c));
                }
            }
            return Ok(Ok(()));
        }
        // The batches touch distinct lines, so applying each kind of write for all of them
        // at once, in batch order, leaves what committing them one after the other would.
        let lines: Vec<&LineRecord> = batches
            .iter()
            .filter_map(|(b, _)| b.update_line.as_ref())
            .collect();
        for chunk in lines.chunks(MAX_PARAMS / LINE_WRITE_COL_COUNT) {
            let sql = format!(
                "WITH v ({LINE_WRITE_COLS}) AS (VALUES {})
                 UPDATE lines SET version = v.version + 1, status = v.status,
                     calling_enabled = v.calling_enabled, allow_calling = v.allow_calling,
                     calling_choice = v.calling_choice, plan = v.plan, price = v.price,
                     phone_number = v.phone_number, connect_token = v.connect_token,
                     label = v.label, metadata = v.metadata, billing_status = v.billing_status,
                     trial_ends_at = v.trial_ends_at, anchor_at = v.anchor_at,
                     paid_period = v.paid_period, current_period_start = v.current_period_start,
                     current_period_end = v.current_period_end, grace_ends_at = v.grace_ends_at,
                     link_count = v.link_count, pairing_started_at = v.pairing_started_at,
                     disconnected_at = v.disconnected_at, reconnect_attempt = v.reconnect_attempt,
                     disconnect_notified = v.disconnect_notified, created_at = v.created_at,
                     ready_at = v.ready_at, linked_at = v.linked_at, released_at = v.released_at,
                     release_reason = v.release_reason, updated_at = v.updated_at,
                     blocked_reason = v.blocked_reason, rate_limited_until = v.rate_limited_until
                 FROM v
                 WHERE lines.id = v.id AND lines.account_id = v.account_id
                     AND lines.version = v.version",
                placeholders(backend, chunk.len(), LINE_WRITE_COL_COUNT, 1)
            );
            let mut q = sqlx::query(&sql);
            for l in chunk {
                q = bind_line(q, l);
            }
            if q.execute(&mut *conn).await?.rows_affected() != chunk.len() as u64 {
                return Ok(Err(Conflict::LineChanged));
            }
        }

        let mut accounts: Vec<&AccountId> = Vec::new();
        for (b, _) in batches {
            if let Some(a) = &b.billing_account {
                if !accounts.contains(&a) {
                    accounts.push(a);
                    ensure_billing_row(conn, a).await?;
                }
            }
        }
        let charges: Vec<(&NewLineCharge, &AccountId, Timestamp)> = batches
            .iter()
            .filter_map(|(b, now)| {
                Some((b.line_charge.as_ref()?, b.billing_account.as_ref()?, *now))
            })
            .collect();
        // The wallet: each account's balance moves once by the sum of its transactions.
        let txns: Vec<(&NewWalletTxn, &AccountId, Timestamp)> = batches
            .iter()
            .filter_map(|(b, now)| Some((b, b.billing_account.as_ref()?, *now)))
            .flat_map(|(b, account, now)| b.wallet_txns.iter().map(move |t| (t, account, now)))
            .collect();
        let Some(ledger) = move_balances(conn, &txns).await? else {
            return Ok(Err(Conflict::InsufficientBalance));
        };
        let mut script = Script::new(backend);
        script.push_owned_rows(ledger.txns, ledger_transactions_sql);
        script.push_owned_rows(ledger.entries, ledger_entries_sql);
        script.run(conn).await?;
        for chunk in charges.chunks(MAX_PARAMS / 7) {
            let sql = format!(
                "INSERT INTO line_charges (account_id, line_id, period, amount, reason,
                     transaction_id, created_at)
                 VALUES {} ON CONFLICT (line_id, period) DO NOTHING",
                placeholders(backend, chunk.len(), 7, 1)
            );
            let mut q = sqlx::query(&sql);
            for (c, account, now) in chunk {
                q = q
                    .bind(account.as_str())
                    .bind(c.line_id.as_str())
                    .bind(i64::from(c.period))
                    .bind(c.amount.0)
                    .bind(c.reason.as_str())
                    .bind(c.transaction_id.as_str())
                    .bind(to_micros(*now));
            }
            // A period already charged (the UNIQUE key) refuses the whole batch.
            if q.execute(&mut *conn).await?.rows_affected() != chunk.len() as u64 {
                return Ok(Err(Conflict::AlreadyCharged));
            }
        }

        let all_events: Vec<(&NewEvent, Timestamp)> = batches
            .iter()
            .flat_map(|(b, now)| b.events.iter().map(move |e| (e, *now)))
            .collect();
        let mut script = Script::new(backend);
        super::webhooks::push_insert_events(conn, &mut script, &all_events).await?;
        script.run(conn).await?;
        let jobs: Vec<(&NewJob, Timestamp)> = batches
            .iter()
            .flat_map(|(b, now)| b.jobs.iter().map(|j| (j, *now)))
            .collect();
        insert_jobs_many(conn, backend, &jobs).await?;
        Ok(Ok(()))
    }
}

/// Adds the inserts of events that no endpoint receives (multi-row statements) to `script`.
pub(crate) fn push_insert_events_only<'a>(script: &mut Script<'a>, events: &[&'a NewEvent]) {
    script.push_rows(
        events,
        |values| {
            format!(
                "INSERT INTO events (id, account_id, type, line_id, body, created_at) VALUES {values}"
            )
        },
        |ev| {
            [
                ev.id.as_str().into(),
                ev.account_id.as_str().into(),
                ev.event_type.as_str().into(),
                ev.line_id.as_deref().into(),
                ev.body.as_str().into(),
                to_micros(ev.created_at).into(),
            ]
        },
    );
}

/// Whether [`SqlStore::commit_many_in`] can write the batches kind by kind: each changes at
/// most its line (a different one each), money, events and jobs — what a line charge does.
fn bulk_shaped(batches: &[(Batch, Timestamp)]) -> bool {
    let mut seen: HashSet<&LineId> = HashSet::new();
    batches.iter().all(|(b, _)| {
        let fresh_line = b.update_line.as_ref().is_none_or(|l| seen.insert(&l.id));
        fresh_line
            && b.insert_line.is_none()
            && b.insert_messages.is_empty()
            && b.update_messages.is_empty()
            && b.billing_patch.is_none()
            && !b.claim_trial
            && b.payment_update.is_none()
            && b.start_auto_topup.is_none()
            && (b.wallet_txns.is_empty() && b.line_charge.is_none() || b.billing_account.is_some())
            && b.events.iter().all(|e| e.only_endpoint.is_none())
            && b.meta.is_none()
            && b.calls.is_none()
            && b.days.is_none()
            && b.numbers.is_none()
    })
}

#[async_trait]
impl LineStore for SqlStore {
    async fn commit(&self, batch: Batch, now: Timestamp) -> StoreResult<Result<(), Conflict>> {
        if self.backend == Backend::Sqlite && can_join(&batch) {
            return match WriteGroup::commit(self, batch, now).await {
                Ok(()) => Ok(Ok(())),
                Err(crate::StoreError::Conflict(c)) => Ok(Err(c)),
                Err(e) => Err(e),
            };
        }
        self.commit_alone(&batch, now).await
    }

    fn commit_in_order(&self, batch: Batch, now: Timestamp) -> crate::OrderedCommit {
        super::ordered::OrderedGroup::submit(self, batch, now)
    }

    async fn commit_many(
        &self,
        batches: &[(Batch, Timestamp)],
        done: &[JobId],
        wall_now: Timestamp,
    ) -> StoreResult<Result<(), Conflict>> {
        let mut tx = self.begin_write().await?;
        match Self::commit_many_in(&mut tx, self.backend, batches, done, wall_now).await? {
            Ok(()) => {
                tx.commit().await?;
                Ok(Ok(()))
            }
            Err(conflict) => {
                tx.rollback().await?;
                Ok(Err(conflict))
            }
        }
    }

    async fn lines_by_ids(&self, ids: &[LineId]) -> StoreResult<Vec<LineRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT {LINE_COLS} FROM lines WHERE id IN ({})",
                param_list(self.backend, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(line(&row)?);
            }
        }
        Ok(out)
    }

    async fn charged_periods(&self, lines: &[LineId]) -> StoreResult<Vec<(LineId, u32)>> {
        let mut out = Vec::new();
        for chunk in lines.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT line_id, period FROM line_charges WHERE line_id IN ({})",
                param_list(self.backend, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for row in q.fetch_all(&self.read).await? {
                out.push((id(&row, "line_id")?, count(&row, "period")?));
            }
        }
        Ok(out)
    }

    async fn payments_by_keys(&self, keys: &[String]) -> StoreResult<Vec<PaymentRecord>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT {PAYMENT_COLS} FROM payments WHERE attempt_key IN ({})",
                param_list(self.backend, chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k.as_str());
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(payment(&row)?);
            }
        }
        Ok(out)
    }

    async fn get_line(&self, account: &AccountId, id: &LineId) -> StoreResult<Option<LineRecord>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("SELECT {LINE_COLS} FROM lines WHERE id = $1 AND account_id = $2")
        });
        let args = [Val::Text(id.as_str()), Val::Text(account.as_str())];
        self.read_one(&SQL, &args, |r| line(r)).await
    }

    async fn line_by_id(&self, id: &LineId) -> StoreResult<Option<LineRecord>> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {LINE_COLS} FROM lines WHERE id = $1"));
        self.read_one(&SQL, &[Val::Text(id.as_str())], |r| line(r))
            .await
    }

    async fn line_by_token(&self, token: &str) -> StoreResult<Option<LineRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {LINE_COLS} FROM lines WHERE connect_token = $1"
        ))
        .bind(token)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(line).transpose()
    }

    async fn list_lines(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<LineRecord>> {
        let rows = paged(
            &self.read,
            &format!("SELECT {LINE_COLS} FROM lines WHERE account_id = $1"),
            "lines",
            account,
            None,
            page,
        )
        .await?;
        let items = rows.iter().map(line).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn open_lines(&self, account: &AccountId) -> StoreResult<Vec<LineRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINE_COLS} FROM lines WHERE account_id = $1 AND status <> 'released'
             ORDER BY seq"
        ))
        .bind(account.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(line).collect()
    }

    async fn enqueue_message(
        &self,
        msg: &MessageRecord,
        day: i64,
        limit: u32,
        send_job: NewJob,
    ) -> StoreResult<Result<LineStatus, EnqueueRefused>> {
        let accepted = match self.backend {
            Backend::Sqlite => WriteGroup::enqueue(self, msg.clone(), day, limit, send_job).await?,
            Backend::Postgres => enqueue_alone(self, msg, day, limit, &send_job).await?,
        };
        if let Some(status) = accepted {
            return Ok(Ok(status));
        }
        let current = self.get_line(&msg.account_id, &msg.line_id).await?;
        Ok(Err(match current {
            None => EnqueueRefused::NotFound,
            Some(l) if !l.status.is_linked() => EnqueueRefused::WrongState(l.status),
            Some(_) => EnqueueRefused::LimitReached,
        }))
    }

    async fn get_message(
        &self,
        account: &AccountId,
        id: &MessageId,
    ) -> StoreResult<Option<MessageRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE id = $1 AND account_id = $2"
        ))
        .bind(id.as_str())
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(message).transpose()
    }

    async fn inbound_message(
        &self,
        line: &LineId,
        provider_id: &str,
    ) -> StoreResult<Option<MessageRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLS} FROM messages
             WHERE line_id = $1 AND provider_id = $2 AND direction = 'inbound'"
        ))
        .bind(line.as_str())
        .bind(provider_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(message).transpose()
    }

    async fn list_messages(
        &self,
        account: &AccountId,
        line: &LineId,
        page: &PageRequest,
    ) -> StoreResult<Page<MessageRecord>> {
        let rows = paged(
            &self.read,
            &format!("SELECT {MESSAGE_COLS} FROM messages WHERE account_id = $1 AND line_id = $2"),
            "messages",
            account,
            Some(line.as_str()),
            page,
        )
        .await?;
        let items = rows.iter().map(message).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn queued_messages(&self, line: &LineId, limit: u32) -> StoreResult<Vec<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLS} FROM messages
             WHERE line_id = $1 AND status = 'queued' AND direction = 'outbound'
             ORDER BY seq LIMIT $2"
        ))
        .bind(line.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(message).collect()
    }

    async fn billing_account(&self, account: &AccountId) -> StoreResult<BillingAccountRecord> {
        let sql = format!("SELECT {BILLING_COLS} FROM billing_accounts WHERE account_id = $1");
        if let Some(found) = self
            .read_one(&sql, &[Val::Text(account.as_str())], |r| billing_account(r))
            .await?
        {
            return Ok(found);
        }
        let mut tx = self.begin_write().await?;
        ensure_billing_row(&mut tx, account).await?;
        let row = sqlx::query(&sql)
            .bind(account.as_str())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        billing_account(&row)
    }

    async fn list_transactions(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<TransactionRecord>> {
        let rows = paged(
            &self.read,
            &format!("SELECT {TXN_COLS} FROM ledger_transactions WHERE account_id = $1"),
            "ledger_transactions",
            account,
            None,
            page,
        )
        .await?;
        let items = rows
            .iter()
            .map(transaction)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn begin_payment(&self, p: &PaymentRecord) -> StoreResult<PaymentRecord> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO payments (id, account_id, purpose, attempt_key, line_id, period, amount,
                 status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)
             ON CONFLICT (attempt_key) DO NOTHING",
        )
        .bind(p.id.as_str())
        .bind(p.account_id.as_str())
        .bind(p.purpose.as_str())
        .bind(&p.attempt_key)
        .bind(p.line_id.as_ref().map(|l| l.as_str()))
        .bind(p.period.map(i64::from))
        .bind(p.amount.0)
        .bind(to_micros(p.created_at))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE attempt_key = $1"
        ))
        .bind(&p.attempt_key)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        payment(&row)
    }

    async fn payment_by_key(&self, attempt_key: &str) -> StoreResult<Option<PaymentRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE attempt_key = $1"
        ))
        .bind(attempt_key)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(payment).transpose()
    }

    async fn line_charged(&self, line: &LineId, period: u32) -> StoreResult<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM line_charges WHERE line_id = $1 AND period = $2")
                .bind(line.as_str())
                .bind(i64::from(period))
                .fetch_optional(&self.read)
                .await?;
        Ok(row.is_some())
    }
}

/// A newest-first page of `select` (which filters on `account_id = $1` and, when `scope` is
/// given, on a second parameter `$2`), with keyset pagination on `seq`.
pub(super) async fn paged(
    pool: &sqlx::AnyPool,
    select: &str,
    table: &str,
    account: &AccountId,
    scope: Option<&str>,
    page: &PageRequest,
) -> StoreResult<Vec<AnyRow>> {
    let next = if scope.is_some() { 3 } else { 2 };
    let cursor = match page.starting_after {
        Some(_) => format!(
            " AND seq < (SELECT seq FROM {table} WHERE id = ${} AND account_id = $1)",
            next + 1
        ),
        None => String::new(),
    };
    let sql = format!("{select}{cursor} ORDER BY seq DESC LIMIT ${next}");
    let mut q = sqlx::query(&sql).bind(account.as_str());
    if let Some(s) = scope {
        q = q.bind(s);
    }
    q = q.bind(i64::from(page.limit) + 1);
    if let Some(after) = &page.starting_after {
        q = q.bind(after.as_str());
    }
    Ok(q.fetch_all(pool).await?)
}
