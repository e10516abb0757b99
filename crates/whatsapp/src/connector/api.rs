//! [`Connector`] for [`WhatsAppConnector`]: what wagate asks of a line.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use wagate_app::connector::{
    Connector, ConnectorHealth, ConnectorSink, ConnectorState, Pacing, PairCodeError, QrCode,
    ReconnectError, SendError, Sent,
};
use wagate_domain::ids::{LineId, MessageId};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::send::SendOptions;
use whatsapp_rust::wacore::proto_helpers::MessageBuilderExt;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{ErrorChainExt, Jid};

use super::{lock, plus, wa_message_id, WhatsAppConnector};

#[async_trait]
impl Connector for WhatsAppConnector {
    fn attach(&self, sink: Weak<dyn ConnectorSink>) {
        let _ = self.inner.sink.set(sink);
    }

    async fn qr(
        &self,
        line: &LineId,
        link: u32,
        _since: Timestamp,
        _now: Timestamp,
    ) -> anyhow::Result<QrCode> {
        let conn = self.inner.pairing(line, link).await?;
        if let Some(qr) = self.inner.fresh_qr(&conn) {
            return Ok(qr);
        }
        let inner = &self.inner;
        inner
            .wait_for(&conn, inner.options.qr_wait, |c| {
                inner.fresh_qr(c).is_some()
            })
            .await;
        inner
            .fresh_qr(&conn)
            .ok_or_else(|| anyhow::anyhow!("WhatsApp could not be reached; retrying"))
    }

    async fn send_text(
        &self,
        line: &LineId,
        message: &MessageId,
        to: &str,
        text: &str,
        now: Timestamp,
    ) -> Result<Sent, SendError> {
        let conn = match self.inner.start_linked(line).await {
            Ok(Some(conn)) => conn,
            Ok(None) => return Err(SendError::Rejected("not_linked".into())),
            Err(e) => {
                tracing::error!(line = %line, error = %e, "cannot open the line's session");
                return Err(SendError::Disconnected);
            }
        };
        if !conn.up.load(Ordering::SeqCst) {
            return Err(SendError::Disconnected);
        }
        let digits = plus(to).ok_or_else(|| SendError::Rejected("invalid_number".into()))?;
        let jid = Jid::pn(digits.as_str());
        let known = lock(&conn.on_whatsapp).get(&digits).copied();
        let on_whatsapp = match known {
            Some(known) => known,
            None => {
                let found = conn
                    .client
                    .contacts()
                    .is_on_whatsapp(std::slice::from_ref(&jid))
                    .await
                    .map_err(|e| send_error(&e))?;
                let registered = found.iter().any(|r| r.is_registered);
                lock(&conn.on_whatsapp).insert(digits.clone(), registered);
                registered
            }
        };
        if !on_whatsapp {
            return Err(SendError::Rejected("not_on_whatsapp".into()));
        }
        let wa_id = wa_message_id(message);
        conn.backend
            .remember_message(&wa_id, message, now.as_second())
            .await
            .map_err(|e| {
                tracing::error!(line = %line, error = %e, "cannot store the message id");
                SendError::Disconnected
            })?;
        conn.client
            .send_message_with_options(
                jid,
                wa::Message::text(text),
                SendOptions::default().with_message_id(wa_id.clone()),
            )
            .await
            .map_err(|e| send_error(&e))?;
        Ok(Sent {
            provider_id: wa_id,
            later: Vec::new(),
        })
    }

    async fn reconnect(&self, line: &LineId, _now: Timestamp) -> Result<(), ReconnectError> {
        if self.inner.was_replaced(line) {
            // Another process holds the session: fighting it would make both drop in turn.
            return Err(ReconnectError::StillDown);
        }
        let conn = match self.inner.start_linked(line).await {
            Ok(Some(conn)) => conn,
            Ok(None) => return Err(ReconnectError::LoggedOut),
            Err(e) => {
                tracing::error!(line = %line, error = %e, "cannot open the line's session");
                return Err(ReconnectError::StillDown);
            }
        };
        if self.inner.wait_up(&conn).await {
            Ok(())
        } else {
            Err(ReconnectError::StillDown)
        }
    }

    async fn unlink(&self, line: &LineId) -> anyhow::Result<()> {
        if let Ok(Some(conn)) = self.inner.start_linked(line).await {
            if self.inner.wait_up(&conn).await {
                // Removes the device from the phone's linked devices.
                let _ = tokio::time::timeout(Duration::from_secs(15), conn.client.logout()).await;
            }
        }
        self.inner.stop(line).await;
        self.inner.backend(line).forget().await?;
        Ok(())
    }

    async fn adopt(&self, line: &LineId) {
        self.inner.given(line);
        if let Err(e) = self.inner.start_linked(line).await {
            tracing::error!(line = %line, error = %e, "cannot open the line's session");
        }
    }

    async fn relinquish(&self, line: &LineId) {
        self.inner.stop(line).await;
    }

    fn health(&self) -> ConnectorHealth {
        let detail = self.inner.unreachable();
        ConnectorHealth {
            kind: "whatsapp_web",
            state: if detail.is_some() {
                ConnectorState::Unreachable
            } else {
                ConnectorState::Ok
            },
            detail,
        }
    }

    fn pacing(&self) -> Option<Pacing> {
        Some(Pacing {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3),
        })
    }

    async fn typing(&self, line: &LineId, to: &str) {
        let (Some(conn), Some(digits)) = (self.inner.conn(line), plus(to)) else {
            return;
        };
        if let Err(e) = conn
            .client
            .chatstate()
            .send_composing(&Jid::pn(digits.as_str()))
            .await
        {
            tracing::debug!(line = %line, error = %e, "typing indicator not sent");
        }
    }

    async fn pair_code(
        &self,
        line: &LineId,
        link: u32,
        _since: Timestamp,
        phone_number: &str,
        _now: Timestamp,
    ) -> Result<String, PairCodeError> {
        let digits = plus(phone_number)
            .ok_or_else(|| PairCodeError::Rejected("invalid phone number".into()))?;
        let conn = self
            .inner
            .pairing(line, link)
            .await
            .map_err(|e| PairCodeError::Unavailable(e.to_string()))?;
        // The pairing flow is ready once the first QR arrived.
        let inner = &self.inner;
        if !inner
            .wait_for(&conn, inner.options.qr_wait, |c| lock(&c.qr).is_some())
            .await
        {
            return Err(PairCodeError::Unavailable(
                "WhatsApp could not be reached; retrying".into(),
            ));
        }
        conn.client
            .pair_with_code(PairCodeOptions {
                phone_number: digits,
                show_push_notification: true,
                ..Default::default()
            })
            .await
            .map_err(|e| match e.server_rejection() {
                Some(r) => {
                    PairCodeError::Rejected(format!("WhatsApp refused ({}): {}", r.code, r.text))
                }
                None => PairCodeError::Unavailable(e.to_string()),
            })
    }
}

/// How a failed send (or contact lookup) reads for wagate.
fn send_error(e: &(dyn std::error::Error + 'static)) -> SendError {
    if let Some(r) = e.server_rejection() {
        if r.code == 429 {
            let wait = i64::from(r.backoff.unwrap_or(60));
            return SendError::RateLimited {
                retry_after: SignedDuration::from_secs(wait),
            };
        }
        return SendError::Rejected(format!("whatsapp_{}", r.code));
    }
    if e.is_transport_unavailable() || e.is_timeout() {
        return SendError::Disconnected;
    }
    match e.downcast_ref::<whatsapp_rust::send::SendError>() {
        Some(whatsapp_rust::send::SendError::InvalidRequest(why)) => {
            SendError::Rejected(why.clone())
        }
        Some(whatsapp_rust::send::SendError::Internal(why)) => SendError::Rejected(why.to_string()),
        // Not logged in, client errors: the connection is not usable now.
        _ => SendError::Disconnected,
    }
}
