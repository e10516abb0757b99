//! [`DayStore`] and the days part of a batch's commit.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use wagate_domain::billing::days::{BillingMode, DaysAccount, DaysTxnType};
use wagate_domain::ids::{AccountId, InvoiceId, LineId};
use wagate_domain::money::Micros;
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::to_micros;

use super::fast::Val;
use super::{id, int, opt_int, opt_text, opt_ts, text, ts, SqlStore};
use crate::error::corrupt;
use crate::LineSubscriptionRecord;
use crate::{
    Conflict, DayAccountRecord, DayStore, DaysWrite, InvoiceRecord, InvoiceStatus, LineDaysRecord,
    StoreResult,
};

const INVOICE_COLS: &str = "id, account_id, status, days, day_price, amount, currency, \
    created_at, due_at, paid_at, paid_by, payment_id, period_start, page_token";

const SUBSCRIPTION_COLS: &str = "line_id, account_id, subscription_id, billing_interval, \
    status, amount_cents, created_at";

fn subscription(row: &AnyRow) -> StoreResult<LineSubscriptionRecord> {
    Ok(LineSubscriptionRecord {
        line_id: id(row, "line_id")?,
        account_id: id(row, "account_id")?,
        subscription_id: text(row, "subscription_id")?,
        interval: text(row, "billing_interval")?,
        status: text(row, "status")?,
        amount_cents: int(row, "amount_cents")?,
        created_at: ts(row, "created_at")?,
    })
}

fn day_account(row: &AnyRow) -> StoreResult<DayAccountRecord> {
    let mode = text(row, "mode")?;
    Ok(DayAccountRecord {
        account_id: id(row, "account_id")?,
        mode: BillingMode::from_db(&mode).ok_or_else(|| corrupt("day_accounts.mode", mode))?,
        day_price: Micros(int(row, "day_price")?),
        postpaid: int(row, "postpaid")? != 0,
        balance_days: int(row, "balance_days")?,
    })
}

fn invoice(row: &AnyRow) -> StoreResult<InvoiceRecord> {
    let status = match text(row, "status")?.as_str() {
        "open" => InvoiceStatus::Open,
        "paid" => InvoiceStatus::Paid,
        other => return Err(corrupt("invoices.status", other)),
    };
    Ok(InvoiceRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        status,
        days: u32::try_from(int(row, "days")?).map_err(|e| corrupt("invoices.days", e))?,
        day_price: Micros(int(row, "day_price")?),
        amount: Micros(int(row, "amount")?),
        currency: text(row, "currency")?,
        created_at: ts(row, "created_at")?,
        due_at: ts(row, "due_at")?,
        paid_at: opt_ts(row, "paid_at")?,
        paid_by: opt_text(row, "paid_by")?,
        payment_id: opt_text(row, "payment_id")?,
        period_start: opt_ts(row, "period_start")?,
        page_token: text(row, "page_token")?,
    })
}

/// The stored name of a days ledger account.
fn ledger_name(a: &DaysAccount) -> String {
    match a {
        DaysAccount::Sold => "sold".to_owned(),
        DaysAccount::Balance(_) => "balance".to_owned(),
        DaysAccount::Line(l) => format!("line:{l}"),
        DaysAccount::Used => "used".to_owned(),
    }
}

fn txn_name(t: DaysTxnType) -> &'static str {
    match t {
        DaysTxnType::InvoicePaid => "invoice_paid",
        DaysTxnType::Extend => "extend",
        DaysTxnType::Release => "release",
    }
}

/// Applies the days part of a batch inside its transaction.
pub(crate) async fn apply_days(
    conn: &mut AnyConnection,
    write: &DaysWrite,
    now: Timestamp,
) -> StoreResult<Result<(), Conflict>> {
    if let Some(event) = &write.stripe_event {
        let done = sqlx::query(
            "INSERT INTO stripe_events (event_id, received_at) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(event)
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::AlreadyApplied));
        }
    }
    if let Some(sub) = &write.subscription {
        sqlx::query(
            "INSERT INTO line_subscriptions (line_id, account_id, subscription_id,
                 billing_interval, status, amount_cents, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (line_id) DO UPDATE SET subscription_id = excluded.subscription_id,
                 billing_interval = excluded.billing_interval, status = excluded.status,
                 amount_cents = excluded.amount_cents, created_at = excluded.created_at",
        )
        .bind(sub.line_id.as_str())
        .bind(sub.account_id.as_str())
        .bind(&sub.subscription_id)
        .bind(&sub.interval)
        .bind(&sub.status)
        .bind(sub.amount_cents)
        .bind(to_micros(sub.created_at))
        .execute(&mut *conn)
        .await?;
    }
    if let Some(i) = &write.insert_invoice {
        // Ids are random: only a second invoice for a postpaid month can conflict.
        let done = sqlx::query(&format!(
            "INSERT INTO invoices ({INVOICE_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT DO NOTHING"
        ))
        .bind(i.id.as_str())
        .bind(i.account_id.as_str())
        .bind(i.status.as_str())
        .bind(i64::from(i.days))
        .bind(i.day_price.0)
        .bind(i.amount.0)
        .bind(&i.currency)
        .bind(to_micros(i.created_at))
        .bind(to_micros(i.due_at))
        .bind(i.paid_at.map(to_micros))
        .bind(i.paid_by.as_deref())
        .bind(i.payment_id.as_deref())
        .bind(i.period_start.map(to_micros))
        .bind(&i.page_token)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::AlreadyApplied));
        }
    }
    if let Some((invoice, at, by, payment)) = &write.pay_invoice {
        // The open → paid step is the once-only gate: a second payment or mark finds it paid
        // and its whole batch (the credit included) rolls back.
        let done = sqlx::query(
            "UPDATE invoices SET status = 'paid', paid_at = $2, paid_by = $3, payment_id = $4
             WHERE id = $1 AND status = 'open'",
        )
        .bind(invoice.as_str())
        .bind(to_micros(*at))
        .bind(by)
        .bind(payment.as_deref())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::InvoiceSettled));
        }
    }
    for p in &write.postings {
        // The entries of one posting share its id.
        let posting_id = format!(
            "{}:{}",
            txn_name(p.posting.txn_type()),
            wagate_domain::ids::random_base62(20)
        );
        for e in p.posting.entries() {
            sqlx::query(
                "INSERT INTO day_entries (account_id, posting, txn_type, ledger, days,
                     invoice_id, line_id, comment, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(p.account_id.as_str())
            .bind(&posting_id)
            .bind(txn_name(p.posting.txn_type()))
            .bind(ledger_name(&e.account))
            .bind(e.days)
            .bind(p.invoice_id.as_ref().map(InvoiceId::as_str))
            .bind(p.line_id.as_ref().map(LineId::as_str))
            .bind(p.comment.as_deref())
            .bind(to_micros(now))
            .execute(&mut *conn)
            .await?;
            match &e.account {
                DaysAccount::Balance(account) => {
                    // A prepaid balance never goes below zero: the guard is in the statement,
                    // so two extensions racing for the last days cannot both win.
                    let done = sqlx::query(
                        "UPDATE day_accounts SET balance_days = balance_days + $2, updated_at = $3
                         WHERE account_id = $1 AND (postpaid = 1 OR balance_days + $2 >= 0)",
                    )
                    .bind(account.as_str())
                    .bind(e.days)
                    .bind(to_micros(now))
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(Err(Conflict::InsufficientDays));
                    }
                }
                DaysAccount::Line(line) => {
                    sqlx::query(
                        "INSERT INTO line_days (line_id, account_id, days_on_line) VALUES ($1, $2, $3)
                         ON CONFLICT (line_id) DO UPDATE
                             SET days_on_line = line_days.days_on_line + excluded.days_on_line",
                    )
                    .bind(line.as_str())
                    .bind(p.account_id.as_str())
                    .bind(e.days)
                    .execute(&mut *conn)
                    .await?;
                }
                DaysAccount::Sold | DaysAccount::Used => {}
            }
        }
    }
    if let Some((line, expected, next)) = &write.paid_until {
        // A line paid by subscription may have no days row yet.
        sqlx::query(
            "INSERT INTO line_days (line_id, account_id, days_on_line)
             SELECT id, account_id, 0 FROM lines WHERE id = $1
             ON CONFLICT DO NOTHING",
        )
        .bind(line.as_str())
        .execute(&mut *conn)
        .await?;
        let done = sqlx::query(
            "UPDATE line_days SET paid_until = $2
             WHERE line_id = $1 AND paid_until IS NOT DISTINCT FROM $3",
        )
        .bind(line.as_str())
        .bind(to_micros(*next))
        .bind(expected.map(to_micros))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::LineChanged));
        }
    }
    if let Some((line, returned)) = &write.days_returned {
        sqlx::query("UPDATE line_days SET days_returned = $2 WHERE line_id = $1")
            .bind(line.as_str())
            .bind(i64::from(*returned))
            .execute(&mut *conn)
            .await?;
    }
    Ok(Ok(()))
}

#[async_trait]
impl DayStore for SqlStore {
    async fn day_account(&self, account: &AccountId) -> StoreResult<Option<DayAccountRecord>> {
        let row = sqlx::query(
            "SELECT account_id, mode, day_price, postpaid, balance_days
             FROM day_accounts WHERE account_id = $1",
        )
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(day_account).transpose()
    }

    async fn set_day_account(
        &self,
        account: &AccountId,
        mode: BillingMode,
        day_price: Micros,
        postpaid: bool,
        now: Timestamp,
    ) -> StoreResult<DayAccountRecord> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO day_accounts (account_id, mode, day_price, postpaid, balance_days,
                 updated_at)
             VALUES ($1, $2, $3, $4, 0, $5)
             ON CONFLICT (account_id) DO UPDATE SET mode = excluded.mode,
                 day_price = excluded.day_price, postpaid = excluded.postpaid,
                 updated_at = excluded.updated_at",
        )
        .bind(account.as_str())
        .bind(mode.as_str())
        .bind(day_price.0)
        .bind(i64::from(postpaid))
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT account_id, mode, day_price, postpaid, balance_days
             FROM day_accounts WHERE account_id = $1",
        )
        .bind(account.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let record = day_account(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_invoice(
        &self,
        account: &AccountId,
        id: &InvoiceId,
    ) -> StoreResult<Option<InvoiceRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE id = $1 AND account_id = $2"
        ))
        .bind(id.as_str())
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(invoice).transpose()
    }

    async fn invoice_by_page_token(&self, token: &str) -> StoreResult<Option<InvoiceRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE page_token = $1"
        ))
        .bind(token)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(invoice).transpose()
    }

    async fn invoice_by_id(&self, id: &InvoiceId) -> StoreResult<Option<InvoiceRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(invoice).transpose()
    }

    async fn list_invoices(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<InvoiceRecord>> {
        let rows = super::lines::paged(
            &self.read,
            &format!("SELECT {INVOICE_COLS} FROM invoices WHERE account_id = $1"),
            "invoices",
            account,
            None,
            page,
        )
        .await?;
        let items = rows.iter().map(invoice).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn line_with_days(
        &self,
        account: &AccountId,
        id: &LineId,
    ) -> StoreResult<Option<(crate::LineRecord, Option<LineDaysRecord>)>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let cols: Vec<String> = super::lines::LINE_COLS
                .split(',')
                .map(|c| format!("l.{}", c.trim()))
                .collect();
            format!(
                "SELECT {}, da.mode AS days_mode, ld.days_on_line, ld.paid_until AS days_paid_until,
                     ld.days_returned
                 FROM lines l
                 LEFT JOIN day_accounts da ON da.account_id = l.account_id
                 LEFT JOIN line_days ld ON ld.line_id = l.id
                 WHERE l.id = $1 AND l.account_id = $2",
                cols.join(", ")
            )
        });
        let args = [Val::Text(id.as_str()), Val::Text(account.as_str())];
        self.read_one(&SQL, &args, |row| {
            let line = super::lines::line(row)?;
            let days = match opt_text(row, "days_mode")?.as_deref() {
                None | Some("flat") => None,
                Some("days") => Some(LineDaysRecord {
                    days_on_line: opt_int(row, "days_on_line")?.unwrap_or(0),
                    paid_until: opt_ts(row, "days_paid_until")?,
                    days_returned: opt_int(row, "days_returned")?
                        .map(|d| u32::try_from(d).unwrap_or(0)),
                }),
                Some(other) => return Err(corrupt("day_accounts.mode", other)),
            };
            Ok((line, days))
        })
        .await
    }

    async fn line_days(&self, line: &LineId) -> StoreResult<LineDaysRecord> {
        let row = sqlx::query(
            "SELECT days_on_line, paid_until, days_returned FROM line_days WHERE line_id = $1",
        )
        .bind(line.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            None => LineDaysRecord::default(),
            Some(r) => LineDaysRecord {
                days_on_line: int(&r, "days_on_line")?,
                paid_until: opt_ts(&r, "paid_until")?,
                days_returned: opt_int(&r, "days_returned")?.map(|d| u32::try_from(d).unwrap_or(0)),
            },
        })
    }

    async fn balance_moves(
        &self,
        account: &AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(days), 0) AS BIGINT) AS total FROM day_entries
             WHERE account_id = $1 AND ledger = 'balance' AND txn_type <> 'invoice_paid'
               AND created_at >= $2 AND created_at < $3",
        )
        .bind(account.as_str())
        .bind(to_micros(from))
        .bind(to_micros(to))
        .fetch_one(&self.read)
        .await?;
        int(&row, "total")
    }

    async fn stripe_customer(&self, account: &AccountId) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT customer_id FROM stripe_customers WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(|r| text(r, "customer_id")).transpose()
    }

    async fn set_stripe_customer(
        &self,
        account: &AccountId,
        customer: &str,
    ) -> StoreResult<String> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO stripe_customers (account_id, customer_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(account.as_str())
        .bind(customer)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT customer_id FROM stripe_customers WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let id = text(&row, "customer_id")?;
        tx.commit().await?;
        Ok(id)
    }

    async fn line_subscription(
        &self,
        line: &LineId,
    ) -> StoreResult<Option<LineSubscriptionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLS} FROM line_subscriptions WHERE line_id = $1"
        ))
        .bind(line.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(subscription).transpose()
    }

    async fn subscription_by_stripe_id(
        &self,
        id: &str,
    ) -> StoreResult<Option<LineSubscriptionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLS} FROM line_subscriptions WHERE subscription_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(subscription).transpose()
    }

    async fn day_ledger_totals(&self, account: &AccountId) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT ledger, CAST(SUM(days) AS BIGINT) AS total FROM day_entries WHERE account_id = $1
             GROUP BY ledger ORDER BY ledger",
        )
        .bind(account.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, "ledger")?, int(r, "total")?)))
            .collect()
    }
}
