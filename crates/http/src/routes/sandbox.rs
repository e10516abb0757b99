//! Sandbox controls: the test clock. These routes exist only under `--sandbox`.

use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use wagate_domain::time::rfc3339;

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
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

/// Move the clock by `seconds` or to `to` (exactly one).
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
    /// Jobs that ran on the way.
    pub jobs_run: u64,
}

const MAX_ADVANCE_SECS: i64 = 10 * 366 * 86_400;

fn manual_clock(st: &AppState) -> ApiResult<&wagate_domain::clock::ManualClock> {
    st.app
        .sandbox_clock
        .as_deref()
        .ok_or_else(|| ApiError::not_found("route"))
}

/// The sandbox's business time.
#[utoipa::path(get, path = "/api/v1/sandbox/clock", tag = "sandbox", security(("api_key" = [])),
    responses((status = 200, description = "The clock", body = ClockOut)))]
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
#[utoipa::path(post, path = "/api/v1/sandbox/clock/advance", tag = "sandbox", security(("api_key" = [])),
    request_body = AdvanceIn,
    responses(
        (status = 200, description = "The clock moved", body = AdvanceOut),
        (status = 422, description = "Neither or both of seconds/to, or a time in the past", body = crate::openapi::ErrorOut)))]
pub async fn advance(
    State(st): State<AppState>,
    Authed(_who): Authed,
    ApiJson(input): ApiJson<AdvanceIn>,
) -> ApiResult<ApiJson<AdvanceOut>> {
    use wagate_domain::clock::Clock;
    let clock = manual_clock(&st)?;
    let now = clock.now();
    let target = match (input.seconds, input.to) {
        (Some(s), None) => {
            if !(0..=MAX_ADVANCE_SECS).contains(&s) {
                return Err(ApiError::invalid(
                    "seconds",
                    "seconds must be between 0 and 10 years",
                ));
            }
            now + SignedDuration::from_secs(s)
        }
        (None, Some(to)) => {
            let to: Timestamp = to
                .parse()
                .map_err(|_| ApiError::invalid("to", "to must be an RFC 3339 time"))?;
            if to < now {
                return Err(
                    ApiError::invalid("to", "the sandbox clock never moves backwards")
                        .with("now", rfc3339(now)),
                );
            }
            if to.duration_since(now) > SignedDuration::from_secs(MAX_ADVANCE_SECS) {
                return Err(ApiError::invalid(
                    "to",
                    "advance at most 10 years at a time",
                ));
            }
            to
        }
        _ => {
            return Err(ApiError::invalid(
                "seconds",
                "give exactly one of seconds or to",
            ))
        }
    };
    let report = st
        .app
        .scheduler
        .advance_to(clock, target)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(AdvanceOut {
        object: "sandbox_clock",
        from: rfc3339(report.from),
        now: rfc3339(report.to),
        jobs_run: report.jobs_run,
    }))
}
