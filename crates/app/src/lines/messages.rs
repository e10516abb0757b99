//! Sending and listing messages, with the per-line daily limit.

use serde_json::json;
use wagate_domain::ids::{LineId, MessageId};
use wagate_domain::jobs::NewJob;
use wagate_domain::line::{
    next_utc_midnight, utc_day, validate_e164, validate_text, LineStatus, MessageKind,
    MessageStatus,
};
use wagate_domain::page::{Page, PageRequest};
use wagate_store::{Direction, EnqueueRefused, MessageRecord};

use super::{LineService, SEND_JOB};
use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};

impl LineService {
    /// Queues a text on a line (`ready` or `reconnecting`), within its daily limit. It is sent
    /// as soon as the line is ready, after every message queued before it.
    pub async fn send_text(
        &self,
        who: &Principal,
        line_id: &LineId,
        to: &str,
        text: &str,
    ) -> AppResult<MessageRecord> {
        validate_e164("to", to).map_err(|e| AppError::invalid(e.param, e.message))?;
        validate_text(text).map_err(|e| AppError::invalid(e.param, e.message))?;
        let (line, days) = self.get_with_days(&who.account.id, line_id).await?;
        match line.status {
            LineStatus::Released => return Err(RuleError::LineReleased.into()),
            s if !s.is_linked() => return Err(RuleError::LineNotReady(s.as_str()).into()),
            _ => {}
        }
        self.check_paid(days.as_ref())?;
        let now = self.clock.now();
        if let Some(until) = line.rate_limited_until.filter(|u| *u > now) {
            let wait = until.duration_since(now).as_secs().max(1);
            return Err(RuleError::WhatsAppRateLimit {
                retry_after: wait as u64,
            }
            .into());
        }
        let limit = self.config.limits.at(line.ready_at, now);
        let msg = MessageRecord {
            id: MessageId::generate(),
            account_id: who.account.id.clone(),
            line_id: line_id.clone(),
            direction: Direction::Outbound,
            kind: MessageKind::Text,
            from: line.phone_number.clone(),
            to: Some(to.to_owned()),
            text: text.to_owned(),
            status: MessageStatus::Queued,
            error: None,
            provider_id: None,
            created_at: now,
            updated_at: now,
        };
        let send = NewJob {
            kind: SEND_JOB.to_owned(),
            account_id: Some(who.account.id.clone()),
            payload: json!({ "line": line_id }),
            due_at: now,
            dedupe_key: Some(msg.id.to_string()),
            line_id: Some(line_id.clone()),
        };
        match self
            .store
            .enqueue_message(&msg, utc_day(now), limit, send)
            .await?
        {
            Ok(_) => {
                self.scheduler.wake();
                Ok(msg)
            }
            Err(EnqueueRefused::NotFound) => Err(AppError::NotFound("line")),
            Err(EnqueueRefused::WrongState(LineStatus::Released)) => {
                Err(RuleError::LineReleased.into())
            }
            Err(EnqueueRefused::WrongState(s)) => Err(RuleError::LineNotReady(s.as_str()).into()),
            Err(EnqueueRefused::LimitReached) => {
                let wait = next_utc_midnight(now).duration_since(now).as_secs().max(1);
                Err(RuleError::DailyLimit {
                    limit,
                    retry_after: wait as u64,
                }
                .into())
            }
        }
    }

    /// A line's messages, both directions, newest first.
    pub async fn messages(
        &self,
        who: &Principal,
        line_id: &LineId,
        page: &PageRequest,
    ) -> AppResult<Page<MessageRecord>> {
        self.get(&who.account.id, line_id).await?;
        Ok(self
            .store
            .list_messages(&who.account.id, line_id, page)
            .await?)
    }

    /// One message.
    pub async fn message(&self, who: &Principal, id: &MessageId) -> AppResult<MessageRecord> {
        self.store
            .get_message(&who.account.id, id)
            .await?
            .ok_or(AppError::NotFound("message"))
    }
}
