//! The simulated WhatsApp connection of `--sandbox`: QR codes that rotate on the test clock,
//! a "phone" that scans when `POST /sandbox/lines/{id}/scan` says so, receipts that arrive a
//! few business seconds after a send, inbound messages, drops that last as long as the test
//! asks and logouts.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, Weak};

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use wagate_domain::ids::{random_base62, LineId, MessageId};
use wagate_domain::line::{BlockedReason, MessageKind, MessageStatus, QR_ROTATE_EVERY};

use super::calling::{
    CallConnector, CallError, CallMedia, CallSignal, CallSink, LineCallAction, PlacedCall,
    RemoteCallEvent, MEDIA_QUEUE_FRAMES,
};
use super::{Connector, ConnectorEvent, ConnectorSink, QrCode, ReconnectError, SendError, Sent};

/// When the simulated recipient's phone confirms delivery, after the send.
pub const DELIVERED_AFTER: SignedDuration = SignedDuration::from_secs(1);
/// When the simulated recipient reads it, after the send.
pub const READ_AFTER: SignedDuration = SignedDuration::from_secs(3);

/// A number the simulated WhatsApp does not know: a call to it fails (`failed`), as a
/// call to a number that is not on WhatsApp does.
pub const NOT_ON_WHATSAPP: &str = "+15005550009";

/// The simulated connector.
pub struct Simulator {
    sink: OnceLock<Weak<dyn ConnectorSink>>,
    /// Per-process secret mixed into QR payloads, so they look (and are) unguessable.
    secret: String,
    /// Lines whose network is down, until when.
    outages: Mutex<HashMap<LineId, Timestamp>>,
    /// Lines whose next send WhatsApp answers with its rate limit, and for how long.
    rate_limits: Mutex<HashMap<LineId, SignedDuration>>,
    /// Where call signals go.
    call_sink: OnceLock<Weak<dyn CallSink>>,
    /// The simulated calls that are not over, by their provider id.
    calls: Mutex<HashMap<String, SimCall>>,
}

/// A simulated call: its line, and the task echoing its audio while a socket is open.
struct SimCall {
    line: LineId,
    echo: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for SimCall {
    fn drop(&mut self) {
        // The call is over: its audio stops, which closes the socket that carried it.
        if let Some(echo) = self.echo.take() {
            echo.abort();
        }
    }
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator with no lines down.
    pub fn new() -> Self {
        Simulator {
            sink: OnceLock::new(),
            secret: random_base62(32),
            outages: Mutex::new(HashMap::new()),
            rate_limits: Mutex::new(HashMap::new()),
            call_sink: OnceLock::new(),
            calls: Mutex::new(HashMap::new()),
        }
    }

    fn calls_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, SimCall>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn signal(&self, signal: CallSignal) -> anyhow::Result<()> {
        let sink = self
            .call_sink
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| anyhow::anyhow!("the simulator has no call sink attached"))?;
        sink.signal(signal).await
    }

    /// The other phone does `event` to the call known as `provider_id` (the sandbox acting
    /// as the remote party). Anything that ends the call stops its audio.
    pub async fn remote_call(
        &self,
        line: &LineId,
        provider_id: &str,
        event: RemoteCallEvent,
    ) -> anyhow::Result<()> {
        let ends = !matches!(event, RemoteCallEvent::Ring | RemoteCallEvent::Answer);
        if ends {
            self.calls_map().remove(provider_id);
        }
        self.signal(CallSignal::Remote {
            line: line.clone(),
            provider_id: provider_id.to_owned(),
            event,
        })
        .await
    }

    /// The line's connection is gone (dropped, logged out, blocked, unlinked): its calls
    /// cannot go on, and fail — as a real phone's call drops with its connection.
    async fn fail_line_calls(&self, line: &LineId) -> anyhow::Result<()> {
        let ids: Vec<String> = {
            let mut calls = self.calls_map();
            let ids: Vec<String> = calls
                .iter()
                .filter(|(_, c)| c.line == *line)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                calls.remove(id);
            }
            ids
        };
        for provider_id in ids {
            self.signal(CallSignal::Remote {
                line: line.clone(),
                provider_id,
                event: RemoteCallEvent::Fail,
            })
            .await?;
        }
        Ok(())
    }

    /// A new simulated call on `line`, by its provider id.
    fn new_call(&self, line: &LineId) -> String {
        let provider_id = format!("sim-call-{}", random_base62(16));
        let call = SimCall {
            line: line.clone(),
            echo: None,
        };
        self.calls_map().insert(provider_id.clone(), call);
        provider_id
    }

    /// Someone calls `line` from `from`: it rings. Returns the call's provider id.
    pub async fn incoming_call(&self, line: &LineId, from: String) -> anyhow::Result<String> {
        let provider_id = self.new_call(line);
        let signal = CallSignal::Incoming {
            line: line.clone(),
            from,
            provider_id: provider_id.clone(),
        };
        if let Err(e) = self.signal(signal).await {
            self.calls_map().remove(&provider_id);
            return Err(e);
        }
        Ok(provider_id)
    }

    async fn emit(&self, event: ConnectorEvent) -> anyhow::Result<()> {
        self.sink()?.deliver(event).await
    }

    fn sink(&self) -> anyhow::Result<std::sync::Arc<dyn ConnectorSink>> {
        self.sink
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| anyhow::anyhow!("the simulator has no sink attached"))
    }

    /// The end customer scans the QR with `phone_number`, with the calling toggle at `calling`.
    pub async fn scan(
        &self,
        line: &LineId,
        phone_number: String,
        calling: Option<bool>,
    ) -> anyhow::Result<()> {
        self.emit(ConnectorEvent::Scanned {
            line: line.clone(),
            phone_number,
            calling,
        })
        .await
    }

    /// The line's network drops. A transient drop lasts `outage` (reconnect attempts fail
    /// until then; zero heals at the first attempt); otherwise the phone unlinks the device.
    pub async fn disconnect(
        &self,
        line: &LineId,
        transient: bool,
        outage: SignedDuration,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        self.fail_line_calls(line).await?;
        if transient {
            self.outages
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(line.clone(), now.saturating_add(outage).unwrap_or(now));
            self.emit(ConnectorEvent::Dropped { line: line.clone() })
                .await
        } else {
            self.outages
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(line);
            self.emit(ConnectorEvent::LoggedOut { line: line.clone() })
                .await
        }
    }

    /// WhatsApp blocks the line for `reason`; with `lifted_after`, the block ends after that
    /// long on the clock (a temporary ban running out, the client upgraded) and the line
    /// reconnects.
    pub async fn block(
        &self,
        line: &LineId,
        reason: BlockedReason,
        lifted_after: Option<SignedDuration>,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        self.fail_line_calls(line).await?;
        self.emit(ConnectorEvent::Blocked {
            line: line.clone(),
            reason,
        })
        .await?;
        if let Some(after) = lifted_after {
            let at = now.saturating_add(after).unwrap_or(now);
            self.sink()?
                .deliver_at(at, ConnectorEvent::Unblocked { line: line.clone() })
                .await?;
        }
        Ok(())
    }

    /// WhatsApp answers the line's next send with its rate limit, asking to wait
    /// `retry_after`.
    pub fn rate_limit_next_send(&self, line: &LineId, retry_after: SignedDuration) {
        self.rate_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(line.clone(), retry_after);
    }

    /// A message of `kind` arrives on the line (`text` is a media message's caption).
    pub async fn inbound(
        &self,
        line: &LineId,
        from: String,
        kind: MessageKind,
        text: String,
    ) -> anyhow::Result<()> {
        self.emit(ConnectorEvent::Inbound {
            line: line.clone(),
            from,
            kind,
            text,
            provider_id: format!("sim-in-{}", random_base62(16)),
        })
        .await
    }

    fn is_down(&self, line: &LineId, now: Timestamp) -> bool {
        self.outages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(line)
            .is_some_and(|until| *until > now)
    }
}

#[async_trait]
impl Connector for Simulator {
    fn attach(&self, sink: Weak<dyn ConnectorSink>) {
        let _ = self.sink.set(sink);
    }

    async fn qr(
        &self,
        line: &LineId,
        link: u32,
        since: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<QrCode> {
        let elapsed = now.duration_since(since).max(SignedDuration::ZERO);
        let index = elapsed.as_secs() / QR_ROTATE_EVERY.as_secs();
        let digest = Sha256::digest(format!("{}:{line}:{link}:{index}", self.secret));
        let expires_at = since
            .saturating_add(QR_ROTATE_EVERY * ((index + 1) as i32))
            .unwrap_or(now);
        Ok(QrCode {
            payload: format!("2@{},wagate-sandbox,{line}", hex::encode(&digest[..16])),
            expires_at,
        })
    }

    async fn send_text(
        &self,
        line: &LineId,
        message: &MessageId,
        _to: &str,
        _text: &str,
        now: Timestamp,
    ) -> Result<Sent, SendError> {
        if self.is_down(line, now) {
            return Err(SendError::Disconnected);
        }
        let limited = self
            .rate_limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(line);
        if let Some(retry_after) = limited {
            return Err(SendError::RateLimited { retry_after });
        }
        let receipt = |after: SignedDuration, status| {
            let at = now.saturating_add(after).unwrap_or(now);
            let event = ConnectorEvent::MessageStatus {
                line: line.clone(),
                message: message.clone(),
                status,
                error: None,
            };
            (at, event)
        };
        Ok(Sent {
            provider_id: format!("sim-{}", random_base62(16)),
            later: vec![
                receipt(DELIVERED_AFTER, MessageStatus::Delivered),
                receipt(READ_AFTER, MessageStatus::Read),
            ],
        })
    }

    async fn reconnect(&self, line: &LineId, now: Timestamp) -> Result<(), ReconnectError> {
        let mut outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        match outages.get(line) {
            Some(until) if *until > now => Err(ReconnectError::StillDown),
            _ => {
                outages.remove(line);
                Ok(())
            }
        }
    }

    async fn unlink(&self, line: &LineId) -> anyhow::Result<()> {
        self.fail_line_calls(line).await?;
        self.outages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(line);
        Ok(())
    }

    fn health(&self) -> super::ConnectorHealth {
        super::ConnectorHealth {
            kind: "simulator",
            state: super::ConnectorState::Ok,
            detail: None,
        }
    }

    /// The simulated phone's code for this link: eight characters from WhatsApp's alphabet
    /// (no 0/O, 1/I), stable for the link and number, shown as `ABCD-EFGH`.
    async fn pair_code(
        &self,
        line: &LineId,
        link: u32,
        since: Timestamp,
        phone_number: &str,
        _now: Timestamp,
    ) -> Result<String, super::PairCodeError> {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ23456789";
        let digest = Sha256::digest(format!("{line}:{link}:{since}:{phone_number}").as_bytes());
        let chars: String = digest
            .iter()
            .take(8)
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        Ok(format!("{}-{}", &chars[..4], &chars[4..]))
    }

    fn simulator(&self) -> Option<&Simulator> {
        Some(self)
    }

    fn calls(&self) -> Option<&dyn CallConnector> {
        Some(self)
    }
}

#[async_trait]
impl CallConnector for Simulator {
    fn attach_calls(&self, sink: Weak<dyn CallSink>) {
        let _ = self.call_sink.set(sink);
    }

    /// The simulated phone rings at once; the sandbox answers, rejects or hangs up for it.
    async fn place_call(
        &self,
        line: &LineId,
        to: &str,
        now: Timestamp,
    ) -> Result<PlacedCall, CallError> {
        if self.is_down(line, now) {
            return Err(CallError::Disconnected);
        }
        if to == NOT_ON_WHATSAPP {
            return Err(CallError::Rejected(format!("{to} is not on WhatsApp")));
        }
        let provider_id = self.new_call(line);
        Ok(PlacedCall {
            provider_id,
            ringing: true,
        })
    }

    async fn call_action(
        &self,
        line: &LineId,
        provider_id: &str,
        action: LineCallAction,
    ) -> Result<(), CallError> {
        let mut calls = self.calls_map();
        match calls.get(provider_id) {
            Some(c) if c.line == *line => {}
            _ => return Err(CallError::NotLive),
        }
        if action != LineCallAction::Accept {
            calls.remove(provider_id);
        }
        Ok(())
    }

    fn call_is_live(&self, line: &LineId, provider_id: &str) -> Option<bool> {
        Some(
            self.calls_map()
                .get(provider_id)
                .is_some_and(|c| c.line == *line),
        )
    }

    /// The simulated party echoes every frame it hears. Its side of the exchange waits for
    /// room (a simulated phone has no reason to drop); wagate's side is what bounds memory.
    async fn call_media(&self, line: &LineId, provider_id: &str) -> Result<CallMedia, CallError> {
        let mut calls = self.calls_map();
        let call = match calls.get_mut(provider_id) {
            Some(c) if c.line == *line => c,
            _ => return Err(CallError::NotLive),
        };
        let (to_phone, mut heard) = tokio::sync::mpsc::channel::<bytes::Bytes>(MEDIA_QUEUE_FRAMES);
        let (echoed, from_phone) = tokio::sync::mpsc::channel(MEDIA_QUEUE_FRAMES);
        let echo = tokio::spawn(async move {
            while let Some(frame) = heard.recv().await {
                if echoed.send(frame).await.is_err() {
                    break;
                }
            }
        });
        if let Some(old) = call.echo.replace(echo) {
            old.abort();
        }
        Ok(CallMedia {
            to_phone,
            from_phone,
        })
    }
}
