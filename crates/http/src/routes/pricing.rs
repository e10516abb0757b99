//! Meta's charges as the account sees them: reconciliation against Meta's pricing objects.

use axum::extract::{Query, State};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::AppState;

/// The period to reconcile.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReconcileParams {
    /// RFC 3339: messages delivered at or after it.
    pub start: String,
    /// RFC 3339: messages delivered before it (at most 31 days after `start`).
    pub end: String,
}

/// A message Meta priced differently from wagate.
#[derive(Debug, Serialize, ToSchema)]
pub struct MismatchOut {
    /// The message.
    pub message_id: String,
    /// wagate's pricing object (as `message.status` carried it).
    #[schema(value_type = Object)]
    pub ours: Value,
    /// Meta's pricing object from its status webhook.
    #[schema(value_type = Object)]
    pub meta: Value,
}

/// wagate's pricing of each delivered message compared with Meta's (`billable`,
/// `pricing_model`, `category`, `type`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationOut {
    /// Always `pricing_reconciliation`.
    pub object: &'static str,
    /// The period's start.
    pub start: String,
    /// The period's end.
    pub end: String,
    /// Messages priced alike.
    pub matched: usize,
    /// Messages Meta sent no pricing object for.
    pub unreported: usize,
    /// How many differ.
    pub mismatched_count: usize,
    /// The first 1,000 that differ, oldest first.
    pub mismatched: Vec<MismatchOut>,
}

fn instant(param: &str, text: &str) -> ApiResult<jiff::Timestamp> {
    text.parse().map_err(|_| {
        ApiError::invalid(param, "must be an RFC 3339 time, e.g. 2026-10-01T00:00:00Z")
    })
}

/// Compares wagate's pricing of the messages delivered in `[start, end)` with the pricing
/// objects Meta sent on their statuses.
#[utoipa::path(get, path = "/api/v1/pricing/reconciliation", operation_id = "reconcilePricing", tag = "pricing", security(("api_key" = [])),
    params(ReconcileParams),
    responses((status = 200, description = "The comparison", body = ReconciliationOut)))]
pub async fn reconciliation(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<ReconcileParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<ReconciliationOut>> {
    let p = super::webhooks::query(q)?;
    let (start, end) = (instant("start", &p.start)?, instant("end", &p.end)?);
    let r = st.app.cloud.reconcile(&who, start, end).await?;
    Ok(ApiJson(ReconciliationOut {
        object: "pricing_reconciliation",
        start: wagate_domain::time::rfc3339(start),
        end: wagate_domain::time::rfc3339(end),
        matched: r.matched,
        unreported: r.unreported,
        mismatched_count: r.mismatched_count,
        mismatched: r
            .mismatched
            .into_iter()
            .map(|m| MismatchOut {
                message_id: m.message_id.to_string(),
                ours: m.ours,
                meta: m.meta,
            })
            .collect(),
    }))
}
