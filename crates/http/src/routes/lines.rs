//! Lines and their messages.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use wagate_app::connector::ConnectorState;
use wagate_app::lines::view::{line_json, message_json};
use wagate_app::lines::CreateLine;
use wagate_domain::ids::LineId;
use wagate_domain::line::{
    validate_label, validate_metadata, FieldError, LineStatus, ReleaseReason, METADATA_MAX_KEYS,
};

use super::webhooks::{query, ListParams};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ApiJson;
use crate::AppState;

/// The line object (schema only: the body is built by `wagate_app::lines::view`, and a test
/// checks the two list the same fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct LineOut {
    /// `line_…`; never changes across reconnects and rescans.
    pub id: String,
    /// Always `line`.
    pub object: String,
    /// `web` (a WhatsApp account linked by QR, on a flat plan) or `cloud` (an official number
    /// on Meta's Cloud API, billed Meta's charges).
    pub kind: String,
    /// `pending`, `ready`, `reconnecting`, `logged_out`, `blocked` or `released`.
    pub status: String,
    /// Calling from the start ($20 plan).
    pub calling_enabled: bool,
    /// The connect page offers the calling toggle.
    pub allow_calling: bool,
    /// `messaging` or `calling`; null until the first scan.
    pub plan: Option<String>,
    /// Monthly price (decimal string); null until the first scan.
    pub price: Option<String>,
    /// `USD`.
    pub currency: String,
    /// The linked phone's number.
    pub phone_number: Option<String>,
    /// The hosted connect page; null once released.
    pub connect_url: Option<String>,
    /// `none`, `trialing`, `active`, `past_due` or `canceled`.
    pub billing_status: String,
    /// End of the free week (the account's first line only).
    pub trial_ends_at: Option<String>,
    /// Start of the running period (or trial).
    pub current_period_start: Option<String>,
    /// End of the running period: the next renewal.
    pub current_period_end: Option<String>,
    /// While past due: when the line is released if still unpaid.
    pub grace_ends_at: Option<String>,
    /// Your label.
    pub label: Option<String>,
    /// Your metadata.
    pub metadata: BTreeMap<String, String>,
    /// Outbound daily limit.
    pub limits: LimitsOut,
    /// RFC 3339.
    pub created_at: String,
    /// First `ready`.
    pub ready_at: Option<String>,
    /// When released.
    pub released_at: Option<String>,
    /// `requested` or `payment_failed`.
    pub release_reason: Option<String>,
    /// While `blocked`: `temporarily_banned`, `banned` or `client_outdated`.
    pub blocked_reason: Option<String>,
    /// Calling lines: the average minutes a day over the last 30 UTC days and whether it
    /// reached the fair-use level of 50 (flagged lines are never blocked or charged); null
    /// on messaging lines.
    pub fair_use: Option<FairUseOut>,
    /// Accounts billed in days: the line sends while this is in the future (extend it with
    /// `POST /wa/lines/{id}/extend`); null otherwise.
    pub paid_until: Option<String>,
    /// Accounts billed in days: the whole unused days its release returned to the balance.
    pub days_returned: Option<u32>,
    /// A sentence on why the line is not working and what happens next; null when `status`
    /// says it all.
    pub status_detail: Option<String>,
}

/// A line's outbound daily limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsOut {
    /// Outbound messages allowed per UTC day (lower during the first 3 days after ready).
    pub daily_outbound: u32,
    /// Accepted today.
    pub sent_today: u32,
    /// Next UTC midnight.
    pub resets_at: String,
}

/// The message object.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    /// `msg_…`
    pub id: String,
    /// Always `message`.
    pub object: String,
    /// The line.
    pub line_id: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    /// Sender.
    pub from: Option<String>,
    /// Recipient.
    pub to: Option<String>,
    /// The text, or a media message's caption (empty when it has none).
    pub text: String,
    /// What it carries: `text` or `template` (outbound; templates from Cloud API lines, the
    /// template's name as `text`), or for inbound messages `image`, `video`, `audio`, `voice`,
    /// `document`, `sticker`, `location` or `contacts`. Media content is not downloaded: the
    /// type and caption are what wagate reports.
    #[serde(rename = "type")]
    pub kind: String,
    /// `queued`, `sent`, `delivered`, `read`, `failed` (outbound) or `received` (inbound).
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Last status change.
    pub updated_at: String,
}

/// A page of lines.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineList {
    /// Newest first.
    #[schema(value_type = Vec<LineOut>)]
    pub data: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
}

/// Days to move from the balance to a line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendIn {
    /// Whole days, 1 to 3660.
    pub days: u32,
    /// Your note, kept with the move of days.
    pub comment: Option<String>,
}

/// Extends a line of an account billed in days: `days` move from the balance to the line and
/// its `paid_until` grows by them from the later of now and `paid_until`. A prepaid balance
/// short of them → 402 `insufficient_days`; an account billed flat → 409 `invalid_state`.
#[utoipa::path(post, path = "/api/v1/wa/lines/{id}/extend", operation_id = "extendLine", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = ExtendIn,
    responses((status = 200, description = "The line, with its new `paid_until`", body = LineOut),
        (status = 402, description = "`insufficient_days`", body = crate::openapi::ErrorOut),
        (status = 409, description = "`line_released`, `invalid_state` (billed flat)", body = crate::openapi::ErrorOut)))]
pub async fn extend(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ExtendIn>,
) -> ApiResult<ApiJson<Value>> {
    if let Some(c) = &input.comment {
        if c.chars().count() > EXTEND_COMMENT_MAX_CHARS {
            return Err(ApiError::invalid(
                "comment",
                format!("at most {EXTEND_COMMENT_MAX_CHARS} characters"),
            ));
        }
    }
    let (line, _) = st
        .app
        .lines
        .extend(&who, &line_id(&id)?, input.days, input.comment)
        .await?;
    Ok(ApiJson(line_out(&st, &line).await?))
}

/// Longest extension comment, in characters.
pub const EXTEND_COMMENT_MAX_CHARS: usize = 500;

/// A calling line's fair-use reading.
#[derive(Debug, Serialize, ToSchema)]
pub struct FairUseOut {
    /// Average minutes a day over the last 30 UTC days, today included (two decimals).
    pub avg_minutes_30d: f64,
    /// Whether the average reached 50 minutes a day.
    pub flagged: bool,
}

/// A page of messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    /// Newest first.
    #[schema(value_type = Vec<MessageOut>)]
    pub data: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
}

/// Provision a line.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLineIn {
    /// Calling from the start: the line bills $20/month from ready.
    #[serde(default)]
    pub calling_enabled: bool,
    /// Let the end customer choose calling on the connect page ($20 on, $15 off).
    #[serde(default)]
    pub allow_calling: bool,
    /// Up to 200 characters.
    pub label: Option<String>,
    /// Up to 20 keys (1–40 characters), values up to 500 characters.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// `web` (default: linked by the end customer's QR scan) or `cloud` (an official number on
    /// Meta's Cloud API; give `cloud`).
    pub kind: Option<LineKindIn>,
    /// The Meta number of a `cloud` line.
    pub cloud: Option<CloudIn>,
}

/// How a line reaches WhatsApp.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKindIn {
    /// WhatsApp Web, linked by a QR scan.
    Web,
    /// Meta's Cloud API.
    Cloud,
}

/// A Cloud API number: checked with Meta's Graph API when the line is created.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudIn {
    /// Meta's phone number id (digits).
    pub phone_number_id: String,
    /// The WhatsApp Business Account id (digits).
    pub waba_id: String,
    /// A Graph API access token (system user) that can send from the number; stored sealed
    /// with the server key and never shown again.
    pub access_token: String,
    /// The business portfolio whose volume tiers the WABA shares (default: the WABA's own).
    pub portfolio_id: Option<String>,
    /// The WABA's time zone (IANA; default `UTC`): Meta's months and rule changes start at
    /// its midnight.
    pub time_zone: Option<String>,
    /// `USD` (the default and the only supported currency: charges come from the USD wallet).
    pub currency: Option<String>,
}

/// Change a line's label and metadata (every field optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLineIn {
    /// Up to 200 characters; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub label: Option<Option<String>>,
    /// Merged into the line's metadata key by key; a key set to `null` is removed. Keys of
    /// 1–40 characters, values up to 500 characters; a result of more than 20 keys is 409
    /// `invalid_state`.
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    pub metadata: Option<BTreeMap<String, Option<String>>>,
}

/// Reads a field that was present (`null` included) as `Some`: absent stays `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Send a text, or (Cloud API lines) a template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendIn {
    /// E.164 recipient, e.g. `+447700900123`.
    pub to: String,
    /// Up to 4096 characters. On a Cloud API line only inside the customer service window.
    pub text: Option<String>,
    /// An approved template (Cloud API lines only), instead of `text`.
    pub template: Option<TemplateIn>,
}

/// An approved WhatsApp template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateIn {
    /// The template's name.
    pub name: String,
    /// Its language code, e.g. `en_US`.
    pub language: String,
    /// Its category as Meta approved it: `marketing`, `utility` or `authentication` (it
    /// decides the price).
    pub category: String,
    /// Meta's `components` array (parameters), passed to Meta as given.
    #[schema(value_type = Option<Vec<Object>>)]
    pub components: Option<Value>,
}

/// Link a line by phone number instead of a QR.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairCodeIn {
    /// The end customer's WhatsApp number (E.164), e.g. `+447700900123`.
    pub phone_number: String,
}

/// A pairing code.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairCodeOut {
    /// Always `pair_code`.
    pub object: &'static str,
    /// The line.
    pub line_id: String,
    /// The number it links.
    pub phone_number: String,
    /// Eight characters, shown as `ABCD-EFGH`: the end customer types it in WhatsApp →
    /// Linked devices → Link a device → Link with phone number instead.
    pub code: String,
}

pub(crate) fn line_id(id: &str) -> ApiResult<LineId> {
    LineId::parse(id).map_err(|_| ApiError::not_found("line"))
}

/// The line object as the API shows it: with the connector's health when the line waits
/// on WhatsApp, and the fair-use reading of a calling line.
pub(crate) async fn line_out(st: &AppState, l: &wagate_store::LineRecord) -> ApiResult<Value> {
    Ok(lines_out(st, std::slice::from_ref(l)).await?.remove(0))
}

/// [`line_out`] for a page of lines: one fair-use query, one days-billing read per account and
/// at most one health walk.
pub(crate) async fn lines_out(
    st: &AppState,
    lines: &[wagate_store::LineRecord],
) -> ApiResult<Vec<Value>> {
    let days = st.app.lines.lines_days(lines).await?;
    lines_out_days(st, lines, days).await
}

/// [`lines_out`] with each line's days already read (`None`: billed flat).
async fn lines_out_days(
    st: &AppState,
    lines: &[wagate_store::LineRecord],
    days: Vec<Option<wagate_store::LineDaysRecord>>,
) -> ApiResult<Vec<Value>> {
    let health = std::cell::OnceCell::new();
    let refs: Vec<&wagate_store::LineRecord> = lines.iter().collect();
    let fair_use = st.app.calls.fair_use(&refs).await?;
    Ok(lines
        .iter()
        .zip(days)
        .map(|(l, days)| {
            let mut o = line_out_with(st, l, &health);
            if let Some(f) = fair_use.get(&l.id) {
                o["fair_use"] = wagate_app::calls::fair_use_json(f);
            }
            if let Some(d) = days {
                o["paid_until"] = d.paid_until.map(wagate_domain::time::rfc3339).into();
                o["days_returned"] = d.days_returned.into();
            }
            o
        })
        .collect())
}

/// [`line_out`] for many lines: the connector's health (a walk over its connections) is
/// asked once, and only if a line waits on WhatsApp.
fn line_out_with(
    st: &AppState,
    l: &wagate_store::LineRecord,
    health: &std::cell::OnceCell<wagate_app::connector::ConnectorHealth>,
) -> Value {
    let lines = &st.app.lines;
    let mut out = line_json(
        l,
        &lines.public_url(),
        &lines.config().limits,
        st.app.clock.now(),
    );
    // A line that waits on WhatsApp says when WhatsApp cannot be reached: never a silent
    // pending line (PRODUCT.md §8).
    let waiting = matches!(
        l.status,
        LineStatus::Pending | LineStatus::LoggedOut | LineStatus::Reconnecting
    );
    if !waiting {
        return out;
    }
    let health = health.get_or_init(|| st.app.connector.health()).clone();
    if health.state != ConnectorState::Ok {
        let why = match health.state {
            ConnectorState::NotConfigured => {
                "This server has no WhatsApp connector, so the line cannot connect.".to_owned()
            }
            _ => format!(
                "WhatsApp could not be reached; retrying…{}",
                health.detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        };
        out["status_detail"] = Value::String(why);
    }
    out
}

/// Provisions a line: `pending` with its `connect_url`. Needs a card on file (402
/// `card_required`); calling flags need the calling rollout (403 `calling_not_available`).
#[utoipa::path(post, path = "/api/v1/wa/lines", operation_id = "createLine", tag = "lines", security(("api_key" = [])),
    request_body = CreateLineIn,
    responses((status = 201, description = "The line, pending", body = LineOut),
        (status = 402, description = "`card_required`", body = crate::openapi::ErrorOut),
        (status = 403, description = "`calling_not_available`", body = crate::openapi::ErrorOut),
        (status = 503, description = "`connector_unavailable`: no WhatsApp connector on this server", body = crate::openapi::ErrorOut)))]
pub async fn create(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<CreateLineIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    match (input.kind, input.cloud) {
        (Some(LineKindIn::Cloud), Some(cloud)) => {
            if input.calling_enabled || input.allow_calling {
                return Err(ApiError::invalid(
                    "calling_enabled",
                    "Cloud API lines do not call through wagate",
                ));
            }
            let (line, _) = st
                .app
                .cloud
                .create_line(
                    &who,
                    wagate_app::cloud::CreateCloudLine {
                        phone_number_id: cloud.phone_number_id,
                        waba_id: cloud.waba_id,
                        access_token: cloud.access_token,
                        portfolio_id: cloud.portfolio_id,
                        time_zone: cloud.time_zone,
                        currency: cloud.currency,
                        label: input.label,
                        metadata: input.metadata,
                    },
                )
                .await?;
            return Ok((StatusCode::CREATED, ApiJson(line_out(&st, &line).await?)));
        }
        (Some(LineKindIn::Cloud), None) => {
            return Err(ApiError::invalid("cloud", "a cloud line needs `cloud`"))
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "cloud",
                "`cloud` goes with `\"kind\": \"cloud\"`",
            ))
        }
        _ => {}
    }
    let health = st.app.connector.health();
    if health.state == ConnectorState::NotConfigured {
        // A line nobody could ever connect would only cost the business a card check.
        return Err(ApiError::new(
            ErrorCode::ConnectorUnavailable,
            "this server has no WhatsApp connector configured, so no line could be connected: see docs/connector.md",
        ));
    }
    let line = st
        .app
        .lines
        .create(
            &who,
            CreateLine {
                calling_enabled: input.calling_enabled,
                allow_calling: input.allow_calling,
                label: input.label,
                metadata: input.metadata,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(line_out(&st, &line).await?)))
}

/// The account's lines, newest first.
#[utoipa::path(get, path = "/api/v1/wa/lines", operation_id = "listLines", tag = "lines", security(("api_key" = [])),
    params(ListParams), responses((status = 200, description = "A page of lines", body = LineList)))]
pub async fn list(
    State(st): State<AppState>,
    Authed(who): Authed,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<LineList>> {
    let page = query(q)?.page()?;
    let found = st.app.lines.list(&who.account.id, &page).await?;
    Ok(ApiJson(LineList {
        data: lines_out(&st, &found.data).await?,
        has_more: found.has_more,
    }))
}

/// One line.
#[utoipa::path(get, path = "/api/v1/wa/lines/{id}", operation_id = "getLine", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The line", body = LineOut)))]
pub async fn get(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let (line, days) = st
        .app
        .lines
        .get_with_days(&who.account.id, &line_id(&id)?)
        .await?;
    Ok(ApiJson(
        lines_out_days(&st, std::slice::from_ref(&line), vec![days])
            .await?
            .remove(0),
    ))
}

/// Changes a line's label and metadata. Works on released lines too.
#[utoipa::path(patch, path = "/api/v1/wa/lines/{id}", operation_id = "updateLine", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = UpdateLineIn,
    responses((status = 200, description = "The line, changed", body = LineOut),
        (status = 409, description = "`invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn update(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateLineIn>,
) -> ApiResult<ApiJson<Value>> {
    let id = line_id(&id)?;
    if let Some(Some(label)) = &input.label {
        validate_label(label).map_err(field_error)?;
    }
    if let Some(patch) = &input.metadata {
        check_metadata_patch(patch)?;
        let current = st.app.lines.get(&who.account.id, &id).await?;
        let keys = merged_keys(&current.metadata, patch);
        if keys > METADATA_MAX_KEYS {
            return Err(ApiError::new(
                ErrorCode::InvalidState,
                format!(
                    "the line's metadata would have {keys} keys; at most {METADATA_MAX_KEYS} are allowed (set keys to null to remove them)"
                ),
            )
            .with("param", "metadata"));
        }
    }
    let line = st
        .app
        .lines
        .update(&who.account.id, &id, input.label, input.metadata)
        .await?;
    Ok(ApiJson(line_out(&st, &line).await?))
}

fn field_error(e: FieldError) -> ApiError {
    ApiError::invalid(e.param, e.message)
}

/// Checks each key and value of a metadata patch on its own (422). How many keys the line
/// ends up with depends on the keys it has, so that is checked apart (409).
fn check_metadata_patch(patch: &BTreeMap<String, Option<String>>) -> ApiResult<()> {
    for (k, v) in patch {
        let one = BTreeMap::from([(k.clone(), v.clone().unwrap_or_default())]);
        validate_metadata(&one).map_err(field_error)?;
    }
    Ok(())
}

/// How many keys `current` has once `patch` is merged into it.
fn merged_keys(
    current: &BTreeMap<String, String>,
    patch: &BTreeMap<String, Option<String>>,
) -> usize {
    let added = patch
        .iter()
        .filter(|(k, v)| v.is_some() && !current.contains_key(*k))
        .count();
    let removed = patch
        .iter()
        .filter(|(k, v)| v.is_none() && current.contains_key(*k))
        .count();
    current.len() + added - removed
}

/// Releases a line (terminal). A line that never connected costs nothing; a connected one is
/// not refunded for its running period and never charged again. Releasing twice is harmless.
#[utoipa::path(delete, path = "/api/v1/wa/lines/{id}", operation_id = "releaseLine", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "The line, released", body = LineOut)))]
pub async fn release(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let line = st
        .app
        .lines
        .release(&who.account.id, &line_id(&id)?, ReleaseReason::Requested)
        .await?;
    Ok(ApiJson(line_out(&st, &line).await?))
}

/// A pairing code that links the line to `phone_number`'s WhatsApp without scanning a QR
/// (PRODUCT.md §8); the connect page offers the same. Only a line awaiting a scan (`pending`,
/// `logged_out`) can be linked: otherwise 409 `invalid_state` (`line_released` once released).
#[utoipa::path(post, path = "/api/v1/wa/lines/{id}/pair_code", operation_id = "createPairCode", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = PairCodeIn,
    responses((status = 200, description = "The code", body = PairCodeOut),
        (status = 409, description = "`invalid_state`, `line_released`", body = crate::openapi::ErrorOut),
        (status = 503, description = "`connector_unavailable`", body = crate::openapi::ErrorOut)))]
pub async fn pair_code(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PairCodeIn>,
) -> ApiResult<ApiJson<PairCodeOut>> {
    wagate_domain::line::validate_e164("phone_number", &input.phone_number)
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    let line = st.app.lines.get(&who.account.id, &line_id(&id)?).await?;
    let code = pairing_code(&st, &line, &input.phone_number).await?;
    Ok(ApiJson(PairCodeOut {
        object: "pair_code",
        line_id: line.id.to_string(),
        phone_number: input.phone_number,
        code,
    }))
}

/// 409 `line_released` for a released line, 409 `invalid_state` for one that does not await a
/// scan (only a `pending` or `logged_out` line can be `done`, e.g. "linked").
pub(crate) fn require_awaiting_scan(line: &wagate_store::LineRecord, done: &str) -> ApiResult<()> {
    if line.status == LineStatus::Released {
        return Err(ApiError::new(
            ErrorCode::LineReleased,
            "the line was released",
        ));
    }
    if !line.status.awaits_scan() {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            format!(
                "the line is {}; only a pending or logged-out line can be {done}",
                line.status.as_str()
            ),
        )
        .with("status", line.status.as_str()));
    }
    Ok(())
}

/// The connector's pairing code for `line`, with the refusals of `POST …/pair_code`.
pub(crate) async fn pairing_code(
    st: &AppState,
    line: &wagate_store::LineRecord,
    phone_number: &str,
) -> ApiResult<String> {
    use wagate_app::connector::PairCodeError;
    require_awaiting_scan(line, "linked")?;
    st.app
        .pairing
        .pair_code(line, phone_number)
        .await
        .map_err(|e| match e {
            PairCodeError::Rejected(why) => ApiError::invalid("phone_number", why),
            PairCodeError::Unsupported | PairCodeError::Unavailable(_) => {
                ApiError::new(ErrorCode::ConnectorUnavailable, e.to_string())
            }
        })
}

/// Queues a text. `ready` and `reconnecting` lines accept (a reconnecting line sends after it
/// heals); `pending`/`logged_out` → 409 `line_not_ready`; `released` → 409 `line_released`;
/// over the daily limit → 429 `rate_limited` with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/wa/lines/{id}/messages", operation_id = "sendMessage", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = SendIn,
    responses((status = 202, description = "The message, queued", body = MessageOut),
        (status = 409, description = "`line_not_ready`, `line_released`", body = crate::openapi::ErrorOut),
        (status = 429, description = "`rate_limited`", body = crate::openapi::ErrorOut)))]
pub async fn send(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SendIn>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let id = line_id(&id)?;
    if st.app.cloud.is_cloud_line(&who.account.id, &id).await? {
        let line = st.app.lines.get(&who.account.id, &id).await?;
        let cloud =
            st.app.cloud.cloud_line(&id).await?.ok_or_else(|| {
                ApiError::internal(format!("cloud line {id} has no Meta identity"))
            })?;
        let msg = st
            .app
            .cloud
            .send(
                &who,
                &line,
                &cloud,
                wagate_app::cloud::CloudSend {
                    to: input.to,
                    text: input.text,
                    template: input.template.map(|t| wagate_app::cloud::TemplateRef {
                        name: t.name,
                        language: t.language,
                        category: t.category,
                        components: t.components,
                    }),
                },
            )
            .await?;
        return Ok((StatusCode::ACCEPTED, ApiJson(message_json(&msg))));
    }
    if input.template.is_some() {
        // The request is well formed; the line's kind refuses it.
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "only Cloud API lines send templates; this line is a WhatsApp Web line",
        ));
    }
    let Some(text) = input.text else {
        return Err(ApiError::invalid("text", "is required"));
    };
    let msg = st.app.lines.send_text(&who, &id, &input.to, &text).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(message_json(&msg))))
}

/// A line's messages, both directions, newest first.
#[utoipa::path(get, path = "/api/v1/wa/lines/{id}/messages", operation_id = "listMessages", tag = "lines", security(("api_key" = [])),
    params(("id" = String, Path), ListParams), responses((status = 200, description = "A page of messages", body = MessageList)))]
pub async fn messages(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<MessageList>> {
    let page = query(q)?.page()?;
    let found = st.app.lines.messages(&who, &line_id(&id)?, &page).await?;
    Ok(ApiJson(MessageList {
        data: found.data.iter().map(message_json).collect(),
        has_more: found.has_more,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// The documented schema and the built object list the same fields.
    #[test]
    fn line_schema_matches_the_built_object() {
        let line = LineOut {
            id: String::new(),
            object: String::new(),
            kind: String::new(),
            status: String::new(),
            calling_enabled: false,
            allow_calling: false,
            plan: None,
            price: None,
            currency: String::new(),
            phone_number: None,
            connect_url: None,
            billing_status: String::new(),
            trial_ends_at: None,
            current_period_start: None,
            current_period_end: None,
            grace_ends_at: None,
            label: None,
            metadata: BTreeMap::new(),
            limits: LimitsOut {
                daily_outbound: 0,
                sent_today: 0,
                resets_at: String::new(),
            },
            created_at: String::new(),
            ready_at: None,
            released_at: None,
            release_reason: None,
            blocked_reason: None,
            fair_use: None,
            paid_until: None,
            days_returned: None,
            status_detail: None,
        };
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let record = wagate_store::LineRecord::pending(
            wagate_domain::ids::AccountId::generate(),
            false,
            false,
            "t".into(),
            now,
        );
        let built = line_json(&record, "http://x", &Default::default(), now);
        assert_eq!(keys(&serde_json::to_value(&line).unwrap()), keys(&built));
        assert_eq!(
            keys(&serde_json::to_value(&line).unwrap()["limits"]),
            keys(&built["limits"])
        );
    }
}
