//! What wagate needs from a connector to place and receive calls (PRODUCT.md §9).
//!
//! A connector that can call places outbound calls, answers, rejects and hangs up on the
//! line's side, and reports what the other phone does as [`CallSignal`]s through the
//! [`CallSink`] wagate attaches at start — the same shape as messages: the connector never
//! touches storage, the sink applies each signal to the call in one transaction with its
//! webhook events. Audio flows through a [`CallMedia`] pair of bounded channels carrying
//! [`FRAME_BYTES`]-byte frames of PCM; the codec (Opus for WhatsApp) is the connector's.

use std::sync::Weak;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use wagate_domain::ids::LineId;

/// Samples per second of the call audio wagate exchanges with clients.
pub const SAMPLE_RATE: u32 = 16_000;
/// Milliseconds of audio in one frame.
pub const FRAME_MS: u32 = 20;
/// Bytes in one frame: 20 ms of 16-bit little-endian mono PCM at 16 kHz.
pub const FRAME_BYTES: usize = (SAMPLE_RATE * FRAME_MS / 1000) as usize * 2;
/// Frames a media channel holds before the sender must wait or drop (one second of audio):
/// enough to ride out scheduling jitter, small enough that a stalled client costs ~32 KiB.
pub const MEDIA_QUEUE_FRAMES: usize = 50;

/// Something the other phone (or WhatsApp) did to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCallEvent {
    /// The called phone rings.
    Ring,
    /// The called phone picked up.
    Answer,
    /// The other phone hung up (an inbound caller giving up before an answer: missed).
    Hangup,
    /// The called phone refused.
    Reject,
    /// The called phone is in another call.
    Busy,
    /// WhatsApp could not place or keep the call.
    Fail,
}

/// A call-related happening a connector reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallSignal {
    /// The other phone acted on a call the connector knows as `provider_id`.
    Remote {
        /// The line.
        line: LineId,
        /// The connector's id for the call.
        provider_id: String,
        /// What happened.
        event: RemoteCallEvent,
    },
    /// Someone calls the line; it rings now.
    Incoming {
        /// The line.
        line: LineId,
        /// The caller (E.164).
        from: String,
        /// The connector's id for the call.
        provider_id: String,
    },
}

/// Where a connector reports call signals. wagate implements it.
#[async_trait]
pub trait CallSink: Send + Sync {
    /// Applies a signal now (durably, with its webhook events) before returning.
    async fn signal(&self, signal: CallSignal) -> anyhow::Result<()>;
}

/// An outbound call the connector started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedCall {
    /// The connector's id for the call (names it in later [`CallSignal`]s).
    pub provider_id: String,
    /// The other phone already rings (the simulator); otherwise a
    /// [`RemoteCallEvent::Ring`] follows.
    pub ringing: bool,
}

/// Why a connector could not do something to a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// This connector cannot call (yet): 503 `calling_unavailable`.
    #[error("{0}")]
    Unsupported(String),
    /// The line's connection is down: the call fails.
    #[error("the connection is down")]
    Disconnected,
    /// WhatsApp refused the call (the number is not on WhatsApp, …): the call fails.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The connector has no such call (it ended, or another server holds the line).
    #[error("the call is not live on this server")]
    NotLive,
}

/// What the line's side does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineCallAction {
    /// Picks up an inbound call.
    Accept,
    /// Refuses an inbound call.
    Reject,
    /// Hangs up (or cancels a call still ringing).
    Hangup,
}

/// A live call's audio, both ways, as [`FRAME_BYTES`]-byte PCM frames. Dropping `to_phone`
/// or seeing `from_phone` close ends the exchange; the connector closes `from_phone` when the
/// call ends.
#[derive(Debug)]
pub struct CallMedia {
    /// Frames to play to the other phone.
    pub to_phone: mpsc::Sender<Bytes>,
    /// Frames the other phone sends.
    pub from_phone: mpsc::Receiver<Bytes>,
}

/// The calling half of a connector. Every method has a default that says plainly that the
/// connector cannot call, so a connector without calling support needs nothing here.
#[async_trait]
pub trait CallConnector: Send + Sync {
    /// Gives the connector the sink for its call signals (called once, at start).
    fn attach_calls(&self, _sink: Weak<dyn CallSink>) {}

    /// Places a call from `line` to `to` (E.164).
    async fn place_call(
        &self,
        _line: &LineId,
        _to: &str,
        _now: jiff::Timestamp,
    ) -> Result<PlacedCall, CallError> {
        Err(CallError::Unsupported(CALLING_UNSUPPORTED.to_owned()))
    }

    /// Does `action` on the line's side of the call the connector knows as `provider_id`.
    async fn call_action(
        &self,
        _line: &LineId,
        _provider_id: &str,
        _action: LineCallAction,
    ) -> Result<(), CallError> {
        Err(CallError::Unsupported(CALLING_UNSUPPORTED.to_owned()))
    }

    /// Whether the connector still has the call known as `provider_id` (`None`: it cannot
    /// tell, and the call is taken to go on).
    fn call_is_live(&self, _line: &LineId, _provider_id: &str) -> Option<bool> {
        None
    }

    /// Opens the audio of an answered call. A second open replaces the first.
    async fn call_media(&self, _line: &LineId, _provider_id: &str) -> Result<CallMedia, CallError> {
        Err(CallError::Unsupported(CALLING_UNSUPPORTED.to_owned()))
    }
}

/// Why a connector without calling support refuses.
pub const CALLING_UNSUPPORTED: &str =
    "this server's WhatsApp connector cannot place or receive calls yet (see docs/calling.md)";
