//! What wagate needs from a WhatsApp connection, whatever provides it.
//!
//! wagate talks to WhatsApp through a [`Connector`]: it asks for pairing QR codes, sends
//! messages and re-establishes dropped connections. Everything that *happens* on the
//! WhatsApp side — a scan, a delivery receipt, an inbound message, a drop, a logout — comes
//! back as a [`ConnectorEvent`] through the [`ConnectorSink`] wagate attaches at start. The
//! sink applies each event to the line in one database transaction with its webhook events,
//! so a connector never touches storage or billing.
//!
//! Two implementations are planned: the [`simulator::Simulator`] (`--sandbox`, driven by the
//! sandbox endpoints and the test clock) and a WhatsApp Web multi-device connector on the
//! `whatsapp-rust` crate (see `docs/connector.md` for how it maps onto this trait).

pub mod calling;
pub mod simulator;

use std::sync::Weak;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use wagate_domain::ids::{LineId, MessageId};
use wagate_domain::line::{BlockedReason, MessageKind, MessageStatus};

/// A pairing QR code and when the connector replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    /// The text the QR encodes (WhatsApp's `ref,publicKey,identityKey,advSecret` string for a
    /// real connection).
    pub payload: String,
    /// When this code stops being valid.
    pub expires_at: Timestamp,
}

/// Something that happened on the WhatsApp side of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectorEvent {
    /// The end customer scanned the QR: the line is linked to `phone_number`.
    Scanned {
        /// The line.
        line: LineId,
        /// The linked phone's number (E.164).
        phone_number: String,
        /// The calling toggle as the end customer left it at scan time, if the connector
        /// knows it (the sandbox scan passes it); otherwise the stored choice counts.
        calling: Option<bool>,
    },
    /// WhatsApp reported a new status for an outbound message.
    MessageStatus {
        /// The line.
        line: LineId,
        /// The message.
        message: MessageId,
        /// `delivered`, `read` or `failed`.
        status: MessageStatus,
        /// Why it failed.
        error: Option<String>,
    },
    /// A message arrived.
    Inbound {
        /// The line.
        line: LineId,
        /// The sender (E.164).
        from: String,
        /// What it carries (events stored before types existed were text). Stored as
        /// `message_type`: `kind` is the event's own tag.
        #[serde(default, rename = "message_type")]
        kind: MessageKind,
        /// The text, or a media message's caption (empty when it has none).
        text: String,
        /// The connector's id for it (deduplicates redelivered messages).
        provider_id: String,
    },
    /// The connection dropped; the link is intact and wagate reconnects with backoff.
    Dropped {
        /// The line.
        line: LineId,
    },
    /// The phone unlinked the device: only a new scan brings the line back.
    LoggedOut {
        /// The line.
        line: LineId,
    },
    /// WhatsApp refuses the account (banned, temporarily banned) or this client (outdated).
    Blocked {
        /// The line.
        line: LineId,
        /// Why.
        reason: BlockedReason,
    },
    /// A block ended (a temporary ban ran out, the client was upgraded): the line reconnects.
    Unblocked {
        /// The line.
        line: LineId,
    },
    /// WhatsApp refused a message already handed over because the line sends too fast (its
    /// nack came after the send): no send on the line before `retry_after_seconds`.
    RateLimited {
        /// The line.
        line: LineId,
        /// How long to wait.
        retry_after_seconds: u64,
    },
}

impl ConnectorEvent {
    /// The line the event is about.
    pub fn line(&self) -> &LineId {
        match self {
            ConnectorEvent::Scanned { line, .. }
            | ConnectorEvent::MessageStatus { line, .. }
            | ConnectorEvent::Inbound { line, .. }
            | ConnectorEvent::Dropped { line }
            | ConnectorEvent::LoggedOut { line }
            | ConnectorEvent::Blocked { line, .. }
            | ConnectorEvent::Unblocked { line }
            | ConnectorEvent::RateLimited { line, .. } => line,
        }
    }
}

/// Where a connector reports events. wagate implements it; a connector only calls it.
#[async_trait]
pub trait ConnectorSink: Send + Sync {
    /// Applies an event now (durably, with its webhook events) before returning.
    async fn deliver(&self, event: ConnectorEvent) -> anyhow::Result<()>;
    /// Applies an event at business time `at` (a durable job): for receipts a simulated
    /// phone produces later, on the test clock.
    async fn deliver_at(&self, at: Timestamp, event: ConnectorEvent) -> anyhow::Result<()>;
}

/// A text the connector accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The connector's id for the message (stored on it).
    pub provider_id: String,
    /// Events the connector already knows will follow, at their business times: the
    /// simulator's receipts. They are scheduled in the transaction that records the send. A
    /// real connection leaves this empty and reports receipts through the sink as they come.
    pub later: Vec<(Timestamp, ConnectorEvent)>,
}

/// Why a send did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is down: keep the message queued, it goes out after the line heals.
    #[error("the connection is down")]
    Disconnected,
    /// WhatsApp refused this message (e.g. the number is not on WhatsApp): it fails.
    #[error("rejected: {0}")]
    Rejected(String),
    /// WhatsApp's rate limit: keep the message queued and send nothing on the line for
    /// `retry_after`; meanwhile new messages are refused with 429 and `Retry-After`.
    #[error("rate limited by WhatsApp for {retry_after}")]
    RateLimited {
        /// How long WhatsApp asked to wait.
        retry_after: jiff::SignedDuration,
    },
}

/// How a connector wants a line's messages spaced: a random gap between `min` and `max`
/// (wall time) between two sends, with the typing indicator shown first (PRODUCT.md §8: a
/// linked WhatsApp account that sends like a machine gets banned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The shortest gap.
    pub min: std::time::Duration,
    /// The longest gap.
    pub max: std::time::Duration,
}

/// Why a reconnect attempt did not heal the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconnectError {
    /// Still down: try again after the next backoff.
    #[error("still disconnected")]
    StillDown,
    /// The session is gone: the line is logged out.
    #[error("logged out")]
    LoggedOut,
}

/// Whether a connector can reach WhatsApp, for `/healthz`, the metrics and the lines'
/// `status_detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorHealth {
    /// Which connector: `simulator`, `whatsapp_web`, or `none` on a server without one.
    pub kind: &'static str,
    /// How it is doing.
    pub state: ConnectorState,
    /// Why, when it is not `ok` (e.g. "WhatsApp could not be reached: connection refused").
    pub detail: Option<String>,
}

/// How a connector is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorState {
    /// Working.
    Ok,
    /// Configured, but WhatsApp cannot be reached now; it keeps retrying.
    Unreachable,
    /// No connector on this server: lines cannot be connected at all.
    NotConfigured,
}

impl ConnectorState {
    /// The API text.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorState::Ok => "ok",
            ConnectorState::Unreachable => "unreachable",
            ConnectorState::NotConfigured => "not_configured",
        }
    }
}

/// Why a pairing code could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PairCodeError {
    /// This connector cannot link by phone number (or none is configured).
    #[error("this server cannot link lines by phone number")]
    Unsupported,
    /// WhatsApp refused or could not be reached; try again later.
    #[error("WhatsApp did not give a pairing code: {0}")]
    Unavailable(String),
    /// WhatsApp refused the number (not on WhatsApp, malformed).
    #[error("{0}")]
    Rejected(String),
}

/// A WhatsApp connection provider.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Gives the connector the sink for its events (called once, at start).
    fn attach(&self, sink: Weak<dyn ConnectorSink>);
    /// The QR code to show for `line` at `now`, for link number `link` whose pairing began at
    /// `since`. Codes rotate; the connect page asks again as they expire.
    async fn qr(
        &self,
        line: &LineId,
        link: u32,
        since: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<QrCode>;
    /// Sends a text; on success returns the connector's message id. Receipts (`delivered`,
    /// `read`) arrive later as [`ConnectorEvent::MessageStatus`].
    async fn send_text(
        &self,
        line: &LineId,
        message: &MessageId,
        to: &str,
        text: &str,
        now: Timestamp,
    ) -> Result<Sent, SendError>;
    /// Tries once to re-establish a dropped connection.
    async fn reconnect(&self, line: &LineId, now: Timestamp) -> Result<(), ReconnectError>;
    /// Unlinks and forgets the line's session (the line was released).
    async fn unlink(&self, line: &LineId) -> anyhow::Result<()>;
    /// This server now serves `line` (it took the line, or adopted it from a server that
    /// died): a connection-holding connector opens the line's session here. Failures are the
    /// connector's to report, as [`ConnectorEvent::Dropped`] and friends.
    async fn adopt(&self, _line: &LineId) {}
    /// Another server serves `line` now: close the local connection without logging out.
    async fn relinquish(&self, _line: &LineId) {}
    /// The simulator's sandbox controls, when this is the simulator.
    fn simulator(&self) -> Option<&simulator::Simulator> {
        None
    }
    /// The connector's calling half, when it can call (PRODUCT.md §9).
    fn calls(&self) -> Option<&dyn calling::CallConnector> {
        None
    }
    /// Whether WhatsApp can be reached.
    fn health(&self) -> ConnectorHealth;
    /// How to space a line's messages; `None` (the simulator) sends back to back.
    fn pacing(&self) -> Option<Pacing> {
        None
    }
    /// Shows "typing…" to `to` on `line` (before a paced send).
    async fn typing(&self, _line: &LineId, _to: &str) {}
    /// A pairing code that links `line` to the WhatsApp account of `phone_number` (E.164)
    /// without scanning: the end customer types it in WhatsApp → Linked devices → Link with
    /// phone number. `link` and `since` are as for [`Connector::qr`].
    async fn pair_code(
        &self,
        _line: &LineId,
        _link: u32,
        _since: Timestamp,
        _phone_number: &str,
        _now: Timestamp,
    ) -> Result<String, PairCodeError> {
        Err(PairCodeError::Unsupported)
    }
}

/// The connector of a production server built without a WhatsApp connection provider: lines
/// can be provisioned and billed, but no QR can be produced and nothing is sent, and every
/// call says so plainly instead of pretending.
#[derive(Debug, Default)]
pub struct Unavailable;

/// Why [`Unavailable`] refuses.
pub const UNAVAILABLE: &str =
    "no WhatsApp connector is configured on this server (see docs/connector.md)";

#[async_trait]
impl Connector for Unavailable {
    fn attach(&self, _sink: Weak<dyn ConnectorSink>) {}

    async fn qr(
        &self,
        _line: &LineId,
        _link: u32,
        _since: Timestamp,
        _now: Timestamp,
    ) -> anyhow::Result<QrCode> {
        anyhow::bail!(UNAVAILABLE)
    }

    async fn send_text(
        &self,
        _line: &LineId,
        _message: &MessageId,
        _to: &str,
        _text: &str,
        _now: Timestamp,
    ) -> Result<Sent, SendError> {
        Err(SendError::Rejected(UNAVAILABLE.into()))
    }

    async fn reconnect(&self, _line: &LineId, _now: Timestamp) -> Result<(), ReconnectError> {
        Err(ReconnectError::StillDown)
    }

    async fn unlink(&self, _line: &LineId) -> anyhow::Result<()> {
        Ok(())
    }

    fn health(&self) -> ConnectorHealth {
        ConnectorHealth {
            kind: "none",
            state: ConnectorState::NotConfigured,
            detail: Some(UNAVAILABLE.to_owned()),
        }
    }
}
