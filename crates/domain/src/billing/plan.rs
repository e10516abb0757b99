//! The two flat plans, their prices, and the rules that fix a line's plan.

use crate::money::Micros;
use serde::{Deserialize, Serialize};

/// A line's flat monthly plan. Fixed when the end customer scans the QR; never changed after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Messaging only ($15.00/month by default).
    Messaging,
    /// Messaging and voice calling ($20.00/month by default).
    Calling,
}

impl Plan {
    /// The name the API uses: `messaging` or `calling`.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Messaging => "messaging",
            Plan::Calling => "calling",
        }
    }

    /// This plan's monthly price under `prices`.
    pub fn price(self, prices: &PlanPrices) -> Micros {
        match self {
            Plan::Messaging => prices.messaging,
            Plan::Calling => prices.calling,
        }
    }

    /// The plan a line gets when it is scanned: `calling_enabled` → calling;
    /// `allow_calling` → what the end customer chose with the connect page's toggle
    /// (`calls_toggle`, off when not given); neither → messaging (the toggle is ignored,
    /// since it was never shown).
    pub fn at_scan(calling_enabled: bool, allow_calling: bool, calls_toggle: bool) -> Plan {
        if calling_enabled || (allow_calling && calls_toggle) {
            Plan::Calling
        } else {
            Plan::Messaging
        }
    }

    /// The most a line created with these flags can cost per month, before it is scanned:
    /// the calling price if calling is on or may be chosen, else the messaging price. This is
    /// what the forecast reserves for a pending line.
    pub fn max_price(calling_enabled: bool, allow_calling: bool, prices: &PlanPrices) -> Micros {
        if calling_enabled || allow_calling {
            prices.calling.max(prices.messaging)
        } else {
            prices.messaging
        }
    }
}

/// The monthly price of each plan (server configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPrices {
    /// Price of [`Plan::Messaging`].
    pub messaging: Micros,
    /// Price of [`Plan::Calling`].
    pub calling: Micros,
}

impl Default for PlanPrices {
    /// $15.00 for messaging, $20.00 for calling.
    fn default() -> Self {
        PlanPrices {
            messaging: Micros::from_cents(1500),
            calling: Micros::from_cents(2000),
        }
    }
}

/// Why the calling flags of a create-line request were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineFlagsError {
    /// `calling_enabled` and `allow_calling` are both true (HTTP 422).
    #[error("calling_enabled and allow_calling cannot both be true")]
    BothCallingFlags,
    /// A calling flag was set on an account without the calling rollout
    /// (HTTP 403 `calling_not_available`).
    #[error("calling is not available on this account")]
    CallingNotAvailable,
}

/// Checks the calling flags of `POST /wa/lines` against the account's calling rollout.
/// Both flags true is refused first (a malformed request is reported before a permission
/// problem).
pub fn validate_line_flags(
    calling_enabled: bool,
    allow_calling: bool,
    calling_rollout: bool,
) -> Result<(), LineFlagsError> {
    if calling_enabled && allow_calling {
        return Err(LineFlagsError::BothCallingFlags);
    }
    if (calling_enabled || allow_calling) && !calling_rollout {
        return Err(LineFlagsError::CallingNotAvailable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prices_are_fifteen_and_twenty_dollars() {
        let p = PlanPrices::default();
        assert_eq!(Plan::Messaging.price(&p).to_string(), "15.00");
        assert_eq!(Plan::Calling.price(&p).to_string(), "20.00");
    }

    #[test]
    fn plan_is_fixed_by_the_flags_and_the_toggle() {
        assert_eq!(Plan::at_scan(true, false, false), Plan::Calling);
        assert_eq!(Plan::at_scan(false, true, true), Plan::Calling);
        assert_eq!(Plan::at_scan(false, true, false), Plan::Messaging);
        assert_eq!(Plan::at_scan(false, false, true), Plan::Messaging);
        assert_eq!(Plan::at_scan(false, false, false), Plan::Messaging);
    }

    #[test]
    fn pending_line_reserves_the_most_it_can_cost() {
        let p = PlanPrices::default();
        assert_eq!(Plan::max_price(false, false, &p), p.messaging);
        assert_eq!(Plan::max_price(false, true, &p), p.calling);
        assert_eq!(Plan::max_price(true, false, &p), p.calling);
    }

    #[test]
    fn create_line_flags_are_checked_against_the_rollout() {
        use LineFlagsError::*;
        assert_eq!(validate_line_flags(false, false, false), Ok(()));
        assert_eq!(validate_line_flags(true, false, true), Ok(()));
        assert_eq!(validate_line_flags(false, true, true), Ok(()));
        assert_eq!(validate_line_flags(true, true, true), Err(BothCallingFlags));
        assert_eq!(
            validate_line_flags(true, true, false),
            Err(BothCallingFlags)
        );
        assert_eq!(
            validate_line_flags(true, false, false),
            Err(CallingNotAvailable)
        );
        assert_eq!(
            validate_line_flags(false, true, false),
            Err(CallingNotAvailable)
        );
    }

    #[test]
    fn plan_names() {
        assert_eq!(Plan::Messaging.as_str(), "messaging");
        assert_eq!(Plan::Calling.as_str(), "calling");
    }
}
