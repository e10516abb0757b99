//! [`MetaStore`] and the Meta part of a batch's commit.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use wagate_domain::ids::{AccountId, LineId, MessageId};
use wagate_domain::money::Micros;
use wagate_domain::time::to_micros;

use super::fast::Val;
use super::lines::MESSAGE_COLS;
use super::{id, int, opt_int, opt_text, opt_ts, text, ts, Cols, SqlStore};
use crate::{
    CloudLineRecord, Conflict, MessagePricingRecord, MetaStore, MetaWrite, PricingKey, PricingRows,
    PricingWrite, StatusTarget, StoreResult,
};

const CLOUD_COLS: &str = "line_id, account_id, phone_number_id, waba_id, portfolio_id, \
    time_zone, currency, access_token, released_at";
const PRICING_COLS: &str = "message_id, account_id, line_id, waba_id, delivered_at, ours, \
    amount, currency, transaction_id, meta";

fn cloud_line(row: &AnyRow) -> StoreResult<CloudLineRecord> {
    Ok(CloudLineRecord {
        line_id: id(row, "line_id")?,
        account_id: id(row, "account_id")?,
        phone_number_id: text(row, "phone_number_id")?,
        waba_id: text(row, "waba_id")?,
        portfolio_id: text(row, "portfolio_id")?,
        time_zone: text(row, "time_zone")?,
        currency: text(row, "currency")?,
        access_token: text(row, "access_token")?,
        released_at: opt_ts(row, "released_at")?,
    })
}

fn message_pricing(row: &AnyRow) -> StoreResult<MessagePricingRecord> {
    Ok(MessagePricingRecord {
        message_id: id(row, "message_id")?,
        account_id: id(row, "account_id")?,
        line_id: id(row, "line_id")?,
        waba_id: text(row, "waba_id")?,
        delivered_at: ts(row, "delivered_at")?,
        ours: text(row, "ours")?,
        amount: Micros(int(row, "amount")?),
        currency: text(row, "currency")?,
        transaction_id: opt_text(row, "transaction_id")?
            .map(|t| t.try_into())
            .transpose()
            .map_err(|e| crate::error::corrupt("message_pricing.transaction_id", e))?,
        meta: opt_text(row, "meta")?,
    })
}

/// Counts are stored as BIGINT; a negative one can only come from a corrupt row.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Applies the Meta part of a batch inside its transaction: first the delivery key (so a
/// retried notification stops here), then the pricing state under the versions read, then the
/// message's cost.
pub(crate) async fn apply_meta(
    conn: &mut AnyConnection,
    meta: &MetaWrite,
    now: Timestamp,
) -> StoreResult<Result<(), Conflict>> {
    if let Some(key) = &meta.delivery_key {
        let done = sqlx::query(
            "INSERT INTO meta_deliveries (dedupe_key, received_at) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::AlreadyApplied));
        }
    }
    if let Some(c) = &meta.insert_cloud_line {
        sqlx::query(&format!(
            "INSERT INTO cloud_lines ({CLOUD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(c.line_id.as_str())
        .bind(c.account_id.as_str())
        .bind(&c.phone_number_id)
        .bind(&c.waba_id)
        .bind(&c.portfolio_id)
        .bind(&c.time_zone)
        .bind(&c.currency)
        .bind(&c.access_token)
        .bind(c.released_at.map(to_micros))
        .execute(&mut *conn)
        .await?;
    }
    if let Some(line) = &meta.release_cloud_line {
        sqlx::query(
            "UPDATE cloud_lines SET released_at = $2 WHERE line_id = $1 AND released_at IS NULL",
        )
        .bind(line.as_str())
        .bind(to_micros(now))
        .execute(&mut *conn)
        .await?;
    }
    if let Some(m) = &meta.insert_cloud_message {
        sqlx::query(
            "INSERT INTO cloud_messages (message_id, line_id, template_name, template_language,
                 category)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(m.message_id.as_str())
        .bind(m.line_id.as_str())
        .bind(m.template_name.as_deref())
        .bind(m.template_language.as_deref())
        .bind(m.category.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    if let Some(p) = &meta.pricing {
        if !write_pricing(conn, p).await? {
            return Ok(Err(Conflict::PricingChanged));
        }
    }
    if let Some(m) = &meta.message_pricing {
        let done = sqlx::query(&format!(
            "INSERT INTO message_pricing ({PRICING_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
        ))
        .bind(m.message_id.as_str())
        .bind(m.account_id.as_str())
        .bind(m.line_id.as_str())
        .bind(&m.waba_id)
        .bind(to_micros(m.delivered_at))
        .bind(&m.ours)
        .bind(m.amount.0)
        .bind(&m.currency)
        .bind(m.transaction_id.as_ref().map(|t| t.as_str()))
        .bind(m.meta.as_deref())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Err(Conflict::AlreadyPriced));
        }
    }
    Ok(Ok(()))
}

/// Writes one event's pricing state; false when a row is not at the version read (another
/// server priced an event of the same pair, portfolio month or WABA meanwhile).
async fn write_pricing(conn: &mut AnyConnection, p: &PricingWrite) -> StoreResult<bool> {
    let k = &p.key;
    // The pair: insert (none was read), update under its version, or delete.
    let pair_ok = match (&p.read.pair, &p.pair) {
        (None, None) => true,
        (None, Some((state, expires))) => {
            sqlx::query(
                "INSERT INTO pricing_pairs (business, user_number, state, expires_at, version)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&k.business)
            .bind(&k.user)
            .bind(state)
            .bind(to_micros(*expires))
            .bind(p.version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
        (Some((_, version)), Some((state, expires))) => {
            sqlx::query(
                "UPDATE pricing_pairs SET state = $3, expires_at = $4, version = $6
                 WHERE business = $1 AND user_number = $2 AND version = $5",
            )
            .bind(&k.business)
            .bind(&k.user)
            .bind(state)
            .bind(to_micros(*expires))
            .bind(version)
            .bind(p.version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
        (Some((_, version)), None) => {
            sqlx::query(
                "DELETE FROM pricing_pairs WHERE business = $1 AND user_number = $2
                     AND version = $3",
            )
            .bind(&k.business)
            .bind(&k.user)
            .bind(version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
    };
    if !pair_ok {
        return Ok(false);
    }
    let utility = i64::try_from(p.utility).unwrap_or(i64::MAX);
    let authentication = i64::try_from(p.authentication).unwrap_or(i64::MAX);
    let tiers_ok = match p.read.tiers {
        None => {
            sqlx::query(
                "INSERT INTO pricing_tiers (portfolio, market, month, utility, authentication,
                     version)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&k.portfolio)
            .bind(&k.market)
            .bind(i64::from(k.month))
            .bind(utility)
            .bind(authentication)
            .bind(p.version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
        // Unchanged: the event did not count (a marketing or free message), so its price did
        // not depend on the counters and a concurrent change to them is no conflict. (The hot
        // row of a busy market is only contended by the messages that move it.)
        Some((u, a, _)) if (u, a) == (p.utility, p.authentication) => true,
        Some((_, _, version)) => {
            sqlx::query(
                "UPDATE pricing_tiers SET utility = $4, authentication = $5, version = $7
                 WHERE portfolio = $1 AND market = $2 AND month = $3 AND version = $6",
            )
            .bind(&k.portfolio)
            .bind(&k.market)
            .bind(i64::from(k.month))
            .bind(utility)
            .bind(authentication)
            .bind(version)
            .bind(p.version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
    };
    if !tiers_ok {
        return Ok(false);
    }
    let free_ok = match p.read.free {
        None => {
            sqlx::query(
                "INSERT INTO pricing_free_tiers (waba, month, used, version)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&k.waba)
            .bind(i64::from(k.month))
            .bind(i64::from(p.free_used))
            .bind(p.version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
        Some((month, used, _)) if month == k.month && used == p.free_used => true,
        Some((_, _, version)) => {
            sqlx::query(
                "UPDATE pricing_free_tiers SET month = $2, used = $3, version = $5
                 WHERE waba = $1 AND version = $4",
            )
            .bind(&k.waba)
            .bind(i64::from(k.month))
            .bind(i64::from(p.free_used))
            .bind(version)
            .bind(p.version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
    };
    Ok(free_ok)
}

#[async_trait]
impl MetaStore for SqlStore {
    async fn cloud_line(&self, line: &LineId) -> StoreResult<Option<CloudLineRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CLOUD_COLS} FROM cloud_lines WHERE line_id = $1"
        ))
        .bind(line.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(cloud_line).transpose()
    }

    async fn cloud_line_by_number(
        &self,
        phone_number_id: &str,
    ) -> StoreResult<Option<CloudLineRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CLOUD_COLS} FROM cloud_lines
             WHERE phone_number_id = $1 AND released_at IS NULL"
        ))
        .bind(phone_number_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(cloud_line).transpose()
    }

    async fn pricing_rows(&self, k: &PricingKey) -> StoreResult<PricingRows> {
        // One round trip for the three rows (each may be missing).
        const SQL: &str = "SELECT p.state AS pair_state, p.version AS pair_version,
                 t.utility AS utility, t.authentication AS authentication,
                 t.version AS tiers_version,
                 f.month AS free_month, f.used AS free_used, f.version AS free_version
             FROM (SELECT 1 AS one) AS here
             LEFT JOIN pricing_pairs p ON p.business = $1 AND p.user_number = $2
             LEFT JOIN pricing_tiers t ON t.portfolio = $3 AND t.market = $4 AND t.month = $5
             LEFT JOIN pricing_free_tiers f ON f.waba = $6";
        let args = [
            Val::Text(&k.business),
            Val::Text(&k.user),
            Val::Text(&k.portfolio),
            Val::Text(&k.market),
            Val::Int(i64::from(k.month)),
            Val::Text(&k.waba),
        ];
        let rows = |row: &dyn Cols| {
            let pair = match (opt_text(row, "pair_state")?, opt_int(row, "pair_version")?) {
                (Some(state), Some(version)) => Some((state, version)),
                _ => None,
            };
            let tiers = match (
                opt_int(row, "utility")?,
                opt_int(row, "authentication")?,
                opt_int(row, "tiers_version")?,
            ) {
                (Some(u), Some(a), Some(version)) => Some((unsigned(u), unsigned(a), version)),
                _ => None,
            };
            let free = match (
                opt_int(row, "free_month")?,
                opt_int(row, "free_used")?,
                opt_int(row, "free_version")?,
            ) {
                (Some(month), Some(used), Some(version)) => Some((
                    i32::try_from(month).unwrap_or(0),
                    u32::try_from(used).unwrap_or(0),
                    version,
                )),
                _ => None,
            };
            Ok(PricingRows { pair, tiers, free })
        };
        // The query always answers one row (the three joins may each find nothing).
        Ok(self.read_one(SQL, &args, rows).await?.unwrap_or_default())
    }

    async fn status_target(
        &self,
        line: &LineId,
        provider_id: &str,
        own_id: Option<&MessageId>,
    ) -> StoreResult<Option<StatusTarget>> {
        fn sql(by: &str) -> String {
            let cols: Vec<String> = MESSAGE_COLS
                .split(',')
                .map(|c| format!("m.{}", c.trim()))
                .collect();
            format!(
                "SELECT {}, cm.category AS cloud_category, mp.message_id AS priced_id
                 FROM messages m
                 LEFT JOIN cloud_messages cm ON cm.message_id = m.id
                 LEFT JOIN message_pricing mp ON mp.message_id = m.id
                 WHERE m.{by} = $1 AND m.line_id = $2 AND m.direction = 'outbound'",
                cols.join(", ")
            )
        }
        static BY_PROVIDER: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| sql("provider_id"));
        static BY_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sql("id"));
        let target = |r: &dyn Cols| {
            Ok(StatusTarget {
                message: super::lines::message(r)?,
                category: opt_text(r, "cloud_category")?,
                priced: opt_text(r, "priced_id")?.is_some(),
            })
        };
        let by_provider = [Val::Text(provider_id), Val::Text(line.as_str())];
        if let Some(found) = self.read_one(&BY_PROVIDER, &by_provider, target).await? {
            return Ok(Some(found));
        }
        let Some(own) = own_id else {
            return Ok(None);
        };
        let by_id = [Val::Text(own.as_str()), Val::Text(line.as_str())];
        self.read_one(&BY_ID, &by_id, target).await
    }

    async fn message_pricing(
        &self,
        message: &MessageId,
    ) -> StoreResult<Option<MessagePricingRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {PRICING_COLS} FROM message_pricing WHERE message_id = $1"
        ))
        .bind(message.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(message_pricing).transpose()
    }

    async fn priced_messages(
        &self,
        account: &AccountId,
        start: Timestamp,
        end: Timestamp,
    ) -> StoreResult<Vec<MessagePricingRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PRICING_COLS} FROM message_pricing
             WHERE account_id = $1 AND delivered_at >= $2 AND delivered_at < $3
             ORDER BY delivered_at, message_id"
        ))
        .bind(account.as_str())
        .bind(to_micros(start))
        .bind(to_micros(end))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(message_pricing).collect()
    }
}
