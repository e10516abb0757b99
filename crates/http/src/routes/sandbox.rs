//! Sandbox controls: the test clock, the simulated phone (scan, drops, inbound messages) and
//! card declines. These routes exist only under `--sandbox`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_app::scheduler::{AdvanceError, AdvanceTarget};
use wagate_domain::line::{validate_e164, validate_text, LineStatus, MessageKind};
use wagate_domain::time::rfc3339;

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ApiJson;
use crate::AppState;

/// The sandbox clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockOut {
    /// Always `sandbox_clock`.
    pub object: &'static str,
    /// The business time now (RFC 3339).
    pub now: String,
}

/// Move the clock by `seconds` or to `to` (exactly one). A target the clock cannot reach from
/// where it stands (behind it, more than 10 years ahead, past 9000-12-31) is 409
/// `invalid_state` with the clock's `now`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceIn {
    /// Seconds to move forward (0 to 10 years).
    pub seconds: Option<i64>,
    /// The time to move to (RFC 3339, not before now).
    pub to: Option<String>,
}

/// What an advance did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvanceOut {
    /// Always `sandbox_clock`.
    pub object: &'static str,
    /// The clock before.
    pub from: String,
    /// The clock after.
    pub now: String,
    /// Jobs that fell due after `from` and ran on the way. Jobs already due at `from` run
    /// first and are not counted (the background worker may have run them already).
    pub jobs_run: u64,
    /// Whether the clock reached the target. `false` when replaying the jobs due on the way
    /// took longer than the advance's time budget: the clock stands at `now` (jobs due at
    /// that instant may be left); advance again to go on: it runs them first.
    pub complete: bool,
}

/// The longest one advance may move the clock, in seconds (10 years).
pub(crate) const MAX_ADVANCE_SECS: i64 = 10 * 366 * 86_400;

/// The most card charges `fail_next` can queue to decline.
pub(crate) const FAIL_NEXT_MAX: u32 = 100;

/// The most real time one advance spends replaying jobs before it answers `complete: false`.
const ADVANCE_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// 409 for a target the clock cannot reach from where it stands now (behind it, more than
/// 10 years ahead, past its end): the request is well formed, the clock's state refuses it.
fn clock_state(param: &str, message: &str, now: Timestamp) -> ApiError {
    ApiError::new(ErrorCode::InvalidState, message)
        .with("param", param)
        .with("now", rfc3339(now))
}

fn manual_clock(st: &AppState) -> ApiResult<&wagate_domain::clock::ManualClock> {
    st.app
        .sandbox_clock
        .as_deref()
        .ok_or_else(|| ApiError::not_found("route"))
}

/// The sandbox's business time.
#[utoipa::path(get, path = "/api/v1/sandbox/clock", operation_id = "getSandboxClock", tag = "sandbox", security(("api_key" = [])),
    responses((status = 200, description = "The clock", body = ClockOut),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorOut)))]
pub async fn clock(
    State(st): State<AppState>,
    Authed(_who): Authed,
) -> ApiResult<ApiJson<ClockOut>> {
    use wagate_domain::clock::Clock;
    Ok(ApiJson(ClockOut {
        object: "sandbox_clock",
        now: rfc3339(manual_clock(&st)?.now()),
    }))
}

/// Moves the sandbox clock forward and returns once every job that fell due on the way
/// (trial ends, renewals, retries, webhook retries…) has run, in due-time order.
///
/// The sandbox clock is one for the whole server: every account on a sandbox server sees it
/// move. Advances sent together run one after the other, each from where the one before
/// ended (`seconds` counts from the clock when this advance starts). The clock stays before
/// 9000-12-31. An advance that must replay a long backlog answers after about 20 s with
/// `complete: false` and the clock where it stopped; advance again to go on.
#[utoipa::path(post, path = "/api/v1/sandbox/clock/advance", operation_id = "advanceSandboxClock", tag = "sandbox", security(("api_key" = [])),
    request_body = AdvanceIn,
    responses(
        (status = 200, description = "The clock moved", body = AdvanceOut),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorOut),
        (status = 409, description = "`invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn advance(
    State(st): State<AppState>,
    Authed(_who): Authed,
    ApiJson(input): ApiJson<AdvanceIn>,
) -> ApiResult<ApiJson<AdvanceOut>> {
    use wagate_domain::clock::Clock;
    let clock = manual_clock(&st)?;
    let (param, target) = match (input.seconds, input.to) {
        (Some(s), None) => {
            if !(0..=MAX_ADVANCE_SECS).contains(&s) {
                return Err(ApiError::invalid(
                    "seconds",
                    "seconds must be between 0 and 10 years",
                ));
            }
            ("seconds", AdvanceTarget::By(SignedDuration::from_secs(s)))
        }
        (None, Some(to)) => {
            let to: Timestamp = to
                .parse()
                .map_err(|_| ApiError::invalid("to", "to must be an RFC 3339 time"))?;
            let now = clock.now();
            if to.duration_since(now) > SignedDuration::from_secs(MAX_ADVANCE_SECS) {
                return Err(clock_state("to", "advance at most 10 years at a time", now));
            }
            ("to", AdvanceTarget::To(to))
        }
        _ => {
            return Err(ApiError::invalid(
                "seconds",
                "give exactly one of seconds or to",
            ))
        }
    };
    let budget = advance_budget(&st);
    let report = st
        .app
        .scheduler
        .advance(clock, target, Some(budget))
        .await
        .map_err(|e| match e {
            AdvanceError::Backwards { now } | AdvanceError::PastTheEnd { now } => {
                clock_state(param, &e.to_string(), now)
            }
            AdvanceError::Store(e) => ApiError::internal(e),
        })?;
    Ok(ApiJson(AdvanceOut {
        object: "sandbox_clock",
        from: rfc3339(report.from),
        now: rfc3339(report.to),
        jobs_run: report.jobs_run,
        complete: report.complete,
    }))
}

/// The end customer scans the line's QR.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanIn {
    /// The phone's number (E.164); a made-up test number when absent.
    pub phone_number: Option<String>,
    /// The end customer's calling toggle (counts only with `allow_calling`).
    pub calling: Option<bool>,
}

/// Drop a line's connection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectIn {
    /// `true`: a network drop that heals by itself with backoff; `false`: the phone unlinks
    /// the device (`logged_out`).
    pub transient: bool,
    /// For a transient drop: how long the network stays down (default 0: the first
    /// reconnect attempt, after 1 s, succeeds). Over 60 s, `line.disconnected` is sent.
    pub duration_seconds: Option<u32>,
}

/// WhatsApp blocks a line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockIn {
    /// `temporarily_banned`, `banned` or `client_outdated`.
    pub reason: BlockedReasonIn,
    /// When given, the block ends after this many seconds on the sandbox clock (a temporary
    /// ban running out, the server upgraded) and the line reconnects.
    pub duration_seconds: Option<u32>,
}

/// Why WhatsApp blocks a line.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockedReasonIn {
    /// A temporary ban.
    TemporarilyBanned,
    /// A ban.
    Banned,
    /// WhatsApp refuses this client version.
    ClientOutdated,
}

impl From<BlockedReasonIn> for wagate_domain::line::BlockedReason {
    fn from(r: BlockedReasonIn) -> Self {
        match r {
            BlockedReasonIn::TemporarilyBanned => Self::TemporarilyBanned,
            BlockedReasonIn::Banned => Self::Banned,
            BlockedReasonIn::ClientOutdated => Self::ClientOutdated,
        }
    }
}

/// WhatsApp answers the line's next send with its rate limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    /// How long WhatsApp asks the line to wait, in seconds (1–86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub retry_after_seconds: u32,
}

/// A message arrives on a line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundIn {
    /// Sender (E.164).
    pub from: String,
    /// What the sender sent: `text` (the default), `image`, `video`, `audio`, `voice`,
    /// `document`, `sticker`, `location` or `contacts`.
    #[serde(rename = "type")]
    #[schema(example = "text")]
    pub kind: Option<String>,
    /// The text; for the other types an optional caption.
    pub text: Option<String>,
}

/// Decline the account's next card charges.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailNextIn {
    /// How many (0–100); 0 clears it.
    pub count: u32,
}

/// What `fail_next` set.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailNextOut {
    /// Always `sandbox_payments`.
    pub object: &'static str,
    /// Card charges that will decline.
    pub fail_next: u32,
}

fn simulator(st: &AppState) -> ApiResult<&wagate_app::connector::simulator::Simulator> {
    st.app
        .connector
        .simulator()
        .ok_or_else(|| ApiError::not_found("route"))
}

/// How long a sandbox request may run jobs: two thirds of the request timeout, at most
/// 20 s, so the answer always beats the timeout.
fn advance_budget(st: &AppState) -> std::time::Duration {
    (st.limits.timeout() * 2 / 3).min(ADVANCE_BUDGET)
}

/// Runs whatever became due now (the charge at ready, receipts), so the response shows it —
/// within the advance budget: jobs of a line whose server just died wait for its takeover,
/// and are then run by the server that adopts the line.
async fn settle(st: &AppState) -> ApiResult<()> {
    use wagate_domain::clock::Clock;
    let clock = manual_clock(st)?;
    st.app
        .scheduler
        .advance(
            clock,
            AdvanceTarget::AtLeast(clock.now()),
            Some(advance_budget(st)),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

async fn owned_line(
    st: &AppState,
    who: &wagate_app::accounts::Principal,
    id: &str,
) -> ApiResult<wagate_store::LineRecord> {
    let id = super::lines::line_id(id)?;
    Ok(st.app.lines.get(&who.account.id, &id).await?)
}

/// The end customer scans the QR (`pending` or `logged_out` → `ready`). The charge due at
/// ready has run when this returns.
#[utoipa::path(post, path = "/api/v1/sandbox/lines/{id}/scan", operation_id = "scanSandboxLine", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = ScanIn,
    responses((status = 200, description = "The line, scanned", body = crate::routes::lines::LineOut),
        (status = 409, description = "`line_released`, `invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn scan(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ScanIn>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let line = owned_line(&st, &who, &id).await?;
    super::lines::require_awaiting_scan(&line, "scanned")?;
    let phone = match input.phone_number {
        Some(p) => {
            validate_e164("phone_number", &p).map_err(|e| ApiError::invalid(e.param, e.message))?;
            p
        }
        None => format!("+1555{}", &random_digits(7)),
    };
    simulator(&st)?
        .scan(&line.id, phone, input.calling)
        .await
        .map_err(ApiError::internal)?;
    settle(&st).await?;
    let line = st.app.lines.get(&who.account.id, &line.id).await?;
    Ok(ApiJson(super::lines::line_out(&st, &line).await?))
}

fn random_digits(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// 409 `invalid_state` unless `line` is connected (ready or reconnecting): only then can the
/// simulated WhatsApp do this to it (be `done`, e.g. "disconnected").
fn require_linked(line: &wagate_store::LineRecord, done: &str) -> ApiResult<()> {
    if line.status.is_linked() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::InvalidState,
        format!(
            "the line is {}; only a connected line can be {done}",
            line.status.as_str()
        ),
    )
    .with("status", line.status.as_str()))
}

/// Drops the line's connection: transient (heals with backoff) or a logout.
#[utoipa::path(post, path = "/api/v1/sandbox/lines/{id}/disconnect", operation_id = "disconnectSandboxLine", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = DisconnectIn,
    responses((status = 200, description = "The line, disconnected", body = crate::routes::lines::LineOut),
        (status = 409, description = "`invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn disconnect(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DisconnectIn>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let line = owned_line(&st, &who, &id).await?;
    require_linked(&line, "disconnected")?;
    let outage = SignedDuration::from_secs(i64::from(input.duration_seconds.unwrap_or(0)));
    simulator(&st)?
        .disconnect(&line.id, input.transient, outage, st.app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    let line = st.app.lines.get(&who.account.id, &line.id).await?;
    Ok(ApiJson(super::lines::line_out(&st, &line).await?))
}

/// WhatsApp blocks the line (`blocked`, `line.blocked`; queued messages fail with
/// `line_blocked`); with `duration_seconds`, the block ends after that long on the sandbox
/// clock and the line reconnects (`line.reconnected`).
#[utoipa::path(post, path = "/api/v1/sandbox/lines/{id}/block", operation_id = "blockSandboxLine", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = BlockIn,
    responses((status = 200, description = "The line, blocked", body = crate::routes::lines::LineOut),
        (status = 409, description = "`invalid_state`", body = crate::openapi::ErrorOut)))]
pub async fn block(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<BlockIn>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    let line = owned_line(&st, &who, &id).await?;
    require_linked(&line, "blocked")?;
    let lifted_after = input
        .duration_seconds
        .map(|s| SignedDuration::from_secs(i64::from(s)));
    simulator(&st)?
        .block(
            &line.id,
            input.reason.into(),
            lifted_after,
            st.app.clock.now(),
        )
        .await
        .map_err(ApiError::internal)?;
    let line = st.app.lines.get(&who.account.id, &line.id).await?;
    Ok(ApiJson(super::lines::line_out(&st, &line).await?))
}

/// WhatsApp answers the line's next send with its rate limit: that message stays queued,
/// the line sends nothing for `retry_after_seconds` (new messages get 429 `rate_limited`,
/// `reason: whatsapp_rate_limit`, with `Retry-After`), then the queue resumes in order.
#[utoipa::path(post, path = "/api/v1/sandbox/lines/{id}/rate_limit", operation_id = "rateLimitSandboxLine", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = RateLimitIn,
    responses((status = 200, description = "The line", body = crate::routes::lines::LineOut)))]
pub async fn rate_limit(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RateLimitIn>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    if !(1..=86_400).contains(&input.retry_after_seconds) {
        return Err(ApiError::invalid(
            "retry_after_seconds",
            "retry_after_seconds must be between 1 and 86400",
        ));
    }
    let line = owned_line(&st, &who, &id).await?;
    simulator(&st)?.rate_limit_next_send(
        &line.id,
        SignedDuration::from_secs(i64::from(input.retry_after_seconds)),
    );
    Ok(ApiJson(super::lines::line_out(&st, &line).await?))
}

/// A message arrives on the line (`message.received`).
#[utoipa::path(post, path = "/api/v1/sandbox/lines/{id}/inbound", operation_id = "receiveSandboxMessage", tag = "sandbox", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = InboundIn,
    responses((status = 202, description = "The message, received", body = crate::routes::lines::MessageOut),
        (status = 409, description = "`line_released`, `line_not_ready`", body = crate::openapi::ErrorOut)))]
pub async fn inbound(
    State(st): State<AppState>,
    Authed(who): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<InboundIn>,
) -> ApiResult<(StatusCode, ApiJson<serde_json::Value>)> {
    validate_e164("from", &input.from).map_err(|e| ApiError::invalid(e.param, e.message))?;
    let kind = match input.kind.as_deref() {
        None => MessageKind::Text,
        Some(k) => MessageKind::from_db(k)
            .filter(|k| MessageKind::INBOUND.contains(k))
            .ok_or_else(|| {
                let kinds: Vec<&str> = MessageKind::INBOUND.iter().map(|k| k.as_str()).collect();
                ApiError::invalid("type", format!("must be one of {}", kinds.join(", ")))
            })?,
    };
    // A text message needs its text; a caption is optional, but not blank or oversized.
    let text = match input.text {
        Some(t) => {
            validate_text(&t).map_err(|e| ApiError::invalid(e.param, e.message))?;
            t
        }
        None if kind == MessageKind::Text => {
            return Err(ApiError::invalid("text", "is required for a text message"))
        }
        None => String::new(),
    };
    let line = owned_line(&st, &who, &id).await?;
    match line.status {
        LineStatus::Released => {
            return Err(ApiError::new(
                ErrorCode::LineReleased,
                "the line was released",
            ))
        }
        s if !s.is_linked() => {
            return Err(ApiError::new(
                ErrorCode::LineNotReady,
                format!(
                    "the line is {}; only a linked line receives messages",
                    s.as_str()
                ),
            )
            .with("status", s.as_str()))
        }
        _ => {}
    }
    simulator(&st)?
        .inbound(&line.id, input.from, kind, text)
        .await
        .map_err(ApiError::internal)?;
    let page = wagate_domain::page::PageRequest::new(Some(1), None)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let latest = st.app.lines.messages(&who, &line.id, &page).await?;
    let msg = latest
        .data
        .first()
        .map(wagate_app::lines::view::message_json)
        .unwrap_or_default();
    Ok((StatusCode::ACCEPTED, ApiJson(msg)))
}

/// Makes the account's next `count` card charges decline (top-ups, line charges, auto
/// top-ups).
#[utoipa::path(post, path = "/api/v1/sandbox/payments/fail_next", operation_id = "failNextSandboxPayments", tag = "sandbox", security(("api_key" = [])),
    request_body = FailNextIn, responses((status = 200, description = "Set", body = FailNextOut),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorOut)))]
pub async fn fail_next(
    State(st): State<AppState>,
    Authed(who): Authed,
    ApiJson(input): ApiJson<FailNextIn>,
) -> ApiResult<ApiJson<FailNextOut>> {
    if input.count > FAIL_NEXT_MAX {
        return Err(ApiError::invalid(
            "count",
            format!("count must be 0 to {FAIL_NEXT_MAX}"),
        ));
    }
    let sandbox = st
        .app
        .billing
        .processor()
        .sandbox()
        .ok_or_else(|| ApiError::not_found("route"))?;
    sandbox.fail_next(&who.account.id, input.count);
    Ok(ApiJson(FailNextOut {
        object: "sandbox_payments",
        fail_next: input.count,
    }))
}
