//! How whatsapp-rust's events become wagate's [`ConnectorEvent`]s: one small state machine
//! per line ([`LineMachine`]), pure, so every mapping is tested with the crate's own values.

use std::time::Duration;

use wagate_app::connector::ConnectorEvent;
use wagate_domain::ids::LineId;
use wagate_domain::line::{BlockedReason, MessageStatus};
use whatsapp_rust::types::events::{ConnectFailureReason, Event};
use whatsapp_rust::types::presence::ReceiptType;

/// How long a line pauses after WhatsApp nacked one of its messages with its rate limit
/// (the nack names no wait; a send answered 429 directly carries its own).
pub const NACK_RATE_LIMIT_WAIT_SECS: u64 = 60;

/// What the connector does with one event of a line's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Apply this event to the line (through the sink).
    Emit(ConnectorEvent),
    /// A new pairing QR code, valid for `timeout`.
    Qr {
        /// The payload to encode.
        code: String,
        /// How long it is shown.
        timeout: Duration,
    },
    /// Receipts for these WhatsApp message ids: report `status` for the ones wagate sent.
    Receipts {
        /// WhatsApp's ids.
        ids: Vec<String>,
        /// `delivered` or `read`.
        status: MessageStatus,
    },
    /// The server refused an outbound message (a nack): it failed with `error`.
    Refused {
        /// WhatsApp's id.
        id: String,
        /// Why, as stored on the message.
        error: String,
    },
    /// The connection is up.
    Up,
    /// The connection is down (for any reason).
    Down,
    /// Stop this client. `forget`: delete the session too (the device was unlinked).
    Stop {
        /// Whether the session is dead.
        forget: bool,
    },
    /// WhatsApp cannot be used by this client version: the operator must act.
    Outdated,
    /// Another process opened this line's session: no reconnect here until line ownership
    /// gives the line to this server again (`Connector::adopt`).
    Replaced,
}

/// What the connector remembers about one line's connection between events.
#[derive(Debug, Clone, Default)]
pub struct LineMachine {
    /// The line is linked (it was linked before this client started, or paired now).
    pub linked: bool,
    /// The number that just paired, reported as `Scanned` once the connection is up.
    pub paired: Option<String>,
    /// A drop was reported and the connection has not come back since.
    pub down_reported: bool,
    /// WhatsApp blocked the line, and the block was reported.
    pub blocked: Option<BlockedReason>,
}

impl LineMachine {
    /// The machine of a line that is linked already (`true`) or pending.
    pub fn new(linked: bool) -> Self {
        LineMachine {
            linked,
            ..Default::default()
        }
    }

    /// The steps one event of `line`'s client causes.
    pub fn step(&mut self, line: &LineId, event: &Event) -> Vec<Step> {
        let line = line.clone();
        match event {
            Event::PairingQrCode(qr) => vec![Step::Qr {
                code: qr.code.clone(),
                timeout: qr.timeout,
            }],
            Event::PairingQrCodesExhausted(_) => vec![Step::Stop { forget: false }],
            Event::PairSuccess(p) => {
                self.paired = Some(format!("+{}", p.id.user));
                self.linked = true;
                Vec::new()
            }
            Event::Connected(_) => {
                let mut steps = vec![Step::Up];
                self.down_reported = false;
                if let Some(phone_number) = self.paired.take() {
                    steps.push(Step::Emit(ConnectorEvent::Scanned {
                        line: line.clone(),
                        phone_number,
                        calling: None,
                    }));
                }
                if matches!(self.blocked.take(), Some(BlockedReason::TemporarilyBanned)) {
                    steps.push(Step::Emit(ConnectorEvent::Unblocked { line }));
                }
                steps
            }
            Event::Disconnected(_) => self.down(line),
            Event::ConnectFailure(f) if transient_failure(&f.reason) => self.down(line),
            Event::StreamReplaced(_) => {
                // Another process opened this device: line ownership was broken. Never fight
                // it (two clients would replace each other forever): stop, report the drop.
                tracing::error!(line = %line, "another connection replaced this line's session");
                let mut steps = self.down(line);
                steps.push(Step::Replaced);
                steps.push(Step::Stop { forget: false });
                steps
            }
            Event::LoggedOut(out) => {
                self.linked = false;
                self.paired = None;
                let event = if matches!(out.reason, ConnectFailureReason::AccountLocked) {
                    ConnectorEvent::Blocked {
                        line,
                        reason: BlockedReason::Banned,
                    }
                } else {
                    ConnectorEvent::LoggedOut { line }
                };
                vec![Step::Down, Step::Emit(event), Step::Stop { forget: true }]
            }
            Event::TemporaryBan(ban) => {
                tracing::warn!(line = %line, code = %ban.code, expire = ?ban.expire, "temporary ban");
                self.block(line, BlockedReason::TemporarilyBanned)
            }
            Event::ClientOutdated(_) => {
                let mut steps = self.block(line, BlockedReason::ClientOutdated);
                steps.push(Step::Outdated);
                steps.push(Step::Stop { forget: false });
                steps
            }
            Event::Receipt(r) if !r.source.is_group => {
                let status = match r.r#type {
                    ReceiptType::Delivered => MessageStatus::Delivered,
                    ReceiptType::Read | ReceiptType::Played => MessageStatus::Read,
                    _ => return Vec::new(),
                };
                vec![Step::Receipts {
                    ids: r.message_ids.iter().map(|id| id.to_string()).collect(),
                    status,
                }]
            }
            Event::ServerAck(ack) if ack.class.as_deref() == Some("message") => match &ack.error {
                // WhatsApp's "rate-overlimit": this message is refused, and the line must
                // slow down before the next.
                Some(code) if code == "429" => vec![
                    Step::Refused {
                        id: ack.id.clone(),
                        error: "whatsapp_rate_limited".into(),
                    },
                    Step::Emit(ConnectorEvent::RateLimited {
                        line,
                        retry_after_seconds: NACK_RATE_LIMIT_WAIT_SECS,
                    }),
                ],
                Some(code) => vec![Step::Refused {
                    id: ack.id.clone(),
                    error: format!("whatsapp_refused_{code}"),
                }],
                None => Vec::new(),
            },
            Event::PairError(e) => {
                tracing::warn!(line = %line, error = %e.error, "pairing failed; the line stays pending");
                Vec::new()
            }
            Event::QrScannedWithoutMultidevice(_) => {
                tracing::warn!(line = %line, "QR scanned by a phone without multi-device");
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn down(&mut self, line: LineId) -> Vec<Step> {
        let mut steps = vec![Step::Down];
        // Only a linked line has a link to lose; one report per outage.
        if self.linked && !self.down_reported && self.blocked.is_none() {
            self.down_reported = true;
            steps.push(Step::Emit(ConnectorEvent::Dropped { line }));
        }
        steps
    }

    fn block(&mut self, line: LineId, reason: BlockedReason) -> Vec<Step> {
        let mut steps = vec![Step::Down];
        if self.blocked != Some(reason) {
            self.blocked = Some(reason);
            steps.push(Step::Emit(ConnectorEvent::Blocked { line, reason }));
        }
        steps
    }
}

/// Whether a `<failure>` at connect is one that heals by itself (the dedicated events cover
/// logouts, bans and outdated clients).
fn transient_failure(reason: &ConnectFailureReason) -> bool {
    !(reason.is_logged_out()
        || matches!(
            reason,
            ConnectFailureReason::TempBanned | ConnectFailureReason::ClientOutdated
        ))
}

#[cfg(test)]
mod tests;
