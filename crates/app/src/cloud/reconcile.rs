//! Reconciliation: our pricing of each delivered message beside the pricing object Meta sent
//! with its status, so a business sees where Meta's bill and ours differ before the invoice.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use wagate_domain::ids::MessageId;

use super::CloudService;
use crate::accounts::Principal;
use crate::error::{AppError, AppResult};

/// The longest period one reconciliation covers.
pub const MAX_RECONCILE_DAYS: i64 = 31;
/// The most mismatches listed (the count says how many there were).
pub const MAX_MISMATCHES: usize = 1_000;

/// Fields both pricing objects have and must agree on.
const COMPARED: [&str; 4] = ["billable", "pricing_model", "category", "type"];

/// One message priced differently by Meta and by us.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The message.
    pub message_id: MessageId,
    /// Our pricing object.
    pub ours: Value,
    /// Meta's.
    pub meta: Value,
}

/// The account's priced messages of a period, compared with Meta.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciliation {
    /// Messages Meta priced as we did.
    pub matched: usize,
    /// Messages whose statuses carried no pricing object from Meta.
    pub unreported: usize,
    /// How many differ.
    pub mismatched_count: usize,
    /// The first [`MAX_MISMATCHES`] that differ, oldest first.
    pub mismatched: Vec<Mismatch>,
}

/// Meta writes `authentication_international`, `wagate rate` `authentication-international`.
fn normalized(v: &Value, field: &str) -> Value {
    match &v[field] {
        Value::String(s) => json!(s.replace('-', "_").to_ascii_lowercase()),
        other => other.clone(),
    }
}

impl CloudService {
    /// Compares every message delivered in `[start, end)` with Meta's pricing of it.
    pub async fn reconcile(
        &self,
        who: &Principal,
        start: Timestamp,
        end: Timestamp,
    ) -> AppResult<Reconciliation> {
        if end <= start {
            return Err(AppError::invalid("end", "must be after start"));
        }
        if end.duration_since(start) > SignedDuration::from_hours(24 * MAX_RECONCILE_DAYS) {
            return Err(AppError::invalid(
                "end",
                format!("a reconciliation covers at most {MAX_RECONCILE_DAYS} days"),
            ));
        }
        let priced = self
            .store
            .priced_messages(&who.account.id, start, end)
            .await?;
        let mut out = Reconciliation::default();
        for p in priced {
            let Some(meta) = p.meta.as_deref() else {
                out.unreported += 1;
                continue;
            };
            let meta: Value = serde_json::from_str(meta).unwrap_or(Value::Null);
            let ours: Value = serde_json::from_str(&p.ours).unwrap_or(Value::Null);
            if COMPARED
                .iter()
                .all(|f| normalized(&ours, f) == normalized(&meta, f))
            {
                out.matched += 1;
                continue;
            }
            out.mismatched_count += 1;
            if out.mismatched.len() < MAX_MISMATCHES {
                out.mismatched.push(Mismatch {
                    message_id: p.message_id,
                    ours,
                    meta,
                });
            }
        }
        Ok(out)
    }
}
