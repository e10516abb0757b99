//! [`NumberStore`] and the numbers part of a batch's commit.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use wagate_domain::ids::{AccountId, NumberId, TransactionId};
use wagate_domain::money::Micros;
use wagate_domain::number::{NumberKind, NumberStatus};
use wagate_domain::page::{Page, PageRequest};
use wagate_domain::time::to_micros;

use super::{id, int, opt_int, opt_text, opt_ts, param_list, text, ts, SqlStore};
use crate::error::corrupt;
use crate::{Conflict, NumberMessageRecord, NumberRecord, NumberStore, NumberWrite, StoreResult};

const NUMBER_COLS: &str = "id, account_id, version, kind, status, service, country, \
    phone_number, provider, provider_ref, unit_price, price, currency, hours, code, \
    charge_transaction_id, refund_transaction_id, created_at, expires_at, code_received_at, \
    ended_at, updated_at";

const MESSAGE_COLS: &str = "number_id, provider_key, text, code, received_at";

fn number(row: &AnyRow) -> StoreResult<NumberRecord> {
    let kind = text(row, "kind")?;
    let status = text(row, "status")?;
    Ok(NumberRecord {
        id: id(row, "id")?,
        account_id: id(row, "account_id")?,
        version: int(row, "version")?,
        kind: NumberKind::parse(&kind).ok_or_else(|| corrupt("numbers.kind", kind))?,
        status: NumberStatus::from_db(&status).ok_or_else(|| corrupt("numbers.status", status))?,
        service: text(row, "service")?,
        country: text(row, "country")?,
        phone_number: text(row, "phone_number")?,
        provider: text(row, "provider")?,
        provider_ref: text(row, "provider_ref")?,
        unit_price: Micros(int(row, "unit_price")?),
        price: Micros(int(row, "price")?),
        currency: text(row, "currency")?,
        hours: opt_int(row, "hours")?
            .map(|h| u32::try_from(h).map_err(|e| corrupt("numbers.hours", e)))
            .transpose()?,
        code: opt_text(row, "code")?,
        charge_transaction_id: id(row, "charge_transaction_id")?,
        refund_transaction_id: opt_text(row, "refund_transaction_id")?
            .map(|t| TransactionId::parse(&t).map_err(|e| corrupt("numbers.refund", e)))
            .transpose()?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        code_received_at: opt_ts(row, "code_received_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn message(row: &AnyRow) -> StoreResult<NumberMessageRecord> {
    Ok(NumberMessageRecord {
        number_id: id(row, "number_id")?,
        provider_key: text(row, "provider_key")?,
        text: text(row, "text")?,
        code: opt_text(row, "code")?,
        received_at: ts(row, "received_at")?,
    })
}

/// Applies the numbers part of a batch inside its transaction.
pub(crate) async fn apply_numbers(
    conn: &mut AnyConnection,
    write: &NumberWrite,
) -> StoreResult<Result<(), Conflict>> {
    if let Some(n) = &write.insert {
        sqlx::query(&format!(
            "INSERT INTO numbers ({NUMBER_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18, $19, $20, $21, $22)"
        ))
        .bind(n.id.as_str())
        .bind(n.account_id.as_str())
        .bind(n.version)
        .bind(n.kind.as_str())
        .bind(n.status.as_str())
        .bind(&n.service)
        .bind(&n.country)
        .bind(&n.phone_number)
        .bind(&n.provider)
        .bind(&n.provider_ref)
        .bind(n.unit_price.0)
        .bind(n.price.0)
        .bind(&n.currency)
        .bind(n.hours.map(i64::from))
        .bind(n.code.as_deref())
        .bind(n.charge_transaction_id.as_str())
        .bind(n.refund_transaction_id.as_ref().map(TransactionId::as_str))
        .bind(to_micros(n.created_at))
        .bind(to_micros(n.expires_at))
        .bind(n.code_received_at.map(to_micros))
        .bind(n.ended_at.map(to_micros))
        .bind(to_micros(n.updated_at))
        .execute(&mut *conn)
        .await?;
    }
    if let Some(n) = &write.update {
        // The refund column only ever goes from NULL to a value: with its UNIQUE key and the
        // version guard, a number is refunded at most once whoever races to do it.
        let done = sqlx::query(
            "UPDATE numbers SET version = $2 + 1, status = $3, price = $4, hours = $5,
                 code = $6, refund_transaction_id = COALESCE(refund_transaction_id, $7),
                 expires_at = $8, code_received_at = $9, ended_at = $10, updated_at = $11
             WHERE id = $1 AND version = $2",
        )
        .bind(n.id.as_str())
        .bind(n.version)
        .bind(n.status.as_str())
        .bind(n.price.0)
        .bind(n.hours.map(i64::from))
        .bind(n.code.as_deref())
        .bind(n.refund_transaction_id.as_ref().map(TransactionId::as_str))
        .bind(to_micros(n.expires_at))
        .bind(n.code_received_at.map(to_micros))
        .bind(n.ended_at.map(to_micros))
        .bind(to_micros(n.updated_at))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::NumberChanged));
        }
    }
    for m in &write.messages {
        let done = sqlx::query(&format!(
            "INSERT INTO number_messages ({MESSAGE_COLS}) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (number_id, provider_key) DO NOTHING"
        ))
        .bind(m.number_id.as_str())
        .bind(&m.provider_key)
        .bind(&m.text)
        .bind(m.code.as_deref())
        .bind(to_micros(m.received_at))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::AlreadyApplied));
        }
    }
    Ok(Ok(()))
}

#[async_trait]
impl NumberStore for SqlStore {
    async fn get_number(
        &self,
        account: &AccountId,
        id: &NumberId,
    ) -> StoreResult<Option<NumberRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {NUMBER_COLS} FROM numbers WHERE id = $1 AND account_id = $2"
        ))
        .bind(id.as_str())
        .bind(account.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(number).transpose()
    }

    async fn number_by_id(&self, id: &NumberId) -> StoreResult<Option<NumberRecord>> {
        let row = sqlx::query(&format!("SELECT {NUMBER_COLS} FROM numbers WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(number).transpose()
    }

    async fn list_numbers(
        &self,
        account: &AccountId,
        page: &PageRequest,
    ) -> StoreResult<Page<NumberRecord>> {
        let rows = super::lines::paged(
            &self.read,
            &format!("SELECT {NUMBER_COLS} FROM numbers WHERE account_id = $1"),
            "numbers",
            account,
            None,
            page,
        )
        .await?;
        let items = rows.iter().map(number).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit))
    }

    async fn number_messages(&self, numbers: &[NumberId]) -> StoreResult<Vec<NumberMessageRecord>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {MESSAGE_COLS} FROM number_messages WHERE number_id IN ({}) ORDER BY seq",
            param_list(self.backend, numbers.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for n in numbers {
            q = q.bind(n.as_str());
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter().map(message).collect()
    }
}
