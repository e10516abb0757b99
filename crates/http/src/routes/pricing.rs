//! Meta's charges as the account sees them: reconciliation against Meta's pricing objects,
//! and analytics in Meta's `pricing_analytics` shape.

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
#[into_params(parameter_in = Query)]
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

/// The period, buckets and splits of an analytics request.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsParams {
    /// RFC 3339: messages delivered at or after it.
    pub start: String,
    /// RFC 3339: messages delivered before it (at most 93 days after `start`).
    pub end: String,
    /// `DAILY` or `MONTHLY` (buckets start at midnight in each WABA's time zone).
    pub granularity: String,
    /// Comma-separated: any of `COUNTRY`, `PRICING_CATEGORY`, `PRICING_TYPE`, `TIER`.
    pub dimensions: Option<String>,
}

/// Volume and cost of one bucket for one combination of the requested dimensions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataPointOut {
    /// The bucket's start (Unix seconds, like Meta's).
    pub start: i64,
    /// The bucket's end (Unix seconds).
    pub end: i64,
    /// With `COUNTRY`: the recipients' country (ISO 3166 alpha-2; null for a shared calling code).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub country: Option<Option<String>>,
    /// With `PRICING_CATEGORY`: `MARKETING`, `UTILITY`, `AUTHENTICATION`,
    /// `AUTHENTICATION_INTERNATIONAL`, `SERVICE`, `REFERRAL_CONVERSION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_category: Option<String>,
    /// With `PRICING_TYPE`: `REGULAR`, `FREE_CUSTOMER_SERVICE`, `FREE_ENTRY_POINT`, `FREE_TIER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<String>,
    /// With `TIER`: the volume tier band (`from:to`; null when no tier table applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub tier: Option<Option<String>>,
    /// Messages delivered.
    pub volume: u64,
    /// What they cost (USD, exact decimal string).
    pub cost: String,
}

/// One WABA's data points.
#[derive(Debug, Serialize, ToSchema)]
pub struct WabaAnalyticsOut {
    /// The WABA.
    pub waba_id: String,
    /// Oldest bucket first.
    pub data_points: Vec<DataPointOut>,
}

/// Meta's `pricing_analytics` shape, computed from wagate's pricing.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsOut {
    /// One entry per WABA with messages in the period.
    pub data: Vec<WabaAnalyticsOut>,
}

/// Volume and cost of the Cloud API messages delivered in `[start, end)`, per WABA, per day
/// or month in the WABA's time zone, split by the requested dimensions (Meta's
/// `pricing_analytics` shape; costs as exact decimal strings).
#[utoipa::path(get, path = "/api/v1/pricing/analytics", operation_id = "pricingAnalytics", tag = "pricing", security(("api_key" = [])),
    params(AnalyticsParams),
    responses((status = 200, description = "The analytics", body = AnalyticsOut)))]
pub async fn analytics(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<AnalyticsParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<AnalyticsOut>> {
    use wagate_app::cloud::{Dimension, Granularity};
    let p = super::webhooks::query(q)?;
    let (start, end) = (instant("start", &p.start)?, instant("end", &p.end)?);
    let granularity = match p.granularity.as_str() {
        "DAILY" => Granularity::Daily,
        "MONTHLY" => Granularity::Monthly,
        _ => return Err(ApiError::invalid("granularity", "must be DAILY or MONTHLY")),
    };
    let mut dimensions = Vec::new();
    for name in p
        .dimensions
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|n| !n.is_empty())
    {
        dimensions.push(Dimension::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "dimensions",
                "each must be COUNTRY, PRICING_CATEGORY, PRICING_TYPE or TIER",
            )
        })?);
    }
    let found = st
        .app
        .cloud
        .analytics(&who, start, end, granularity, &dimensions)
        .await?;
    Ok(ApiJson(AnalyticsOut {
        data: found
            .into_iter()
            .map(|w| WabaAnalyticsOut {
                waba_id: w.waba_id,
                data_points: w
                    .data_points
                    .into_iter()
                    .map(|d| DataPointOut {
                        start: d.start.as_second(),
                        end: d.end.as_second(),
                        country: d.country,
                        pricing_category: d.pricing_category,
                        pricing_type: d.pricing_type,
                        tier: d.tier,
                        volume: d.volume,
                        cost: d.cost.to_decimal(2),
                    })
                    .collect(),
            })
            .collect(),
    }))
}
