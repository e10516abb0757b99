//! Sending from a Cloud API line: the window and wallet checks, then Meta's Graph API.

use serde_json::Value;
use wagate_domain::ids::MessageId;
use wagate_domain::line::{validate_e164, validate_text, LineStatus, MessageKind, MessageStatus};
use wagate_domain::money::Micros;
use wagate_meta::graph::Outbound;
use wagate_pricing::{EventKind, Message, Outcome, TemplateCategory};
use wagate_store::{
    Batch, CloudLineRecord, CloudMessageRecord, Conflict, Direction, LineRecord, MessageRecord,
    MetaWrite,
};

use super::{graph_error, CloudService};
use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};

/// The longest template name Meta accepts.
pub const MAX_TEMPLATE_NAME: usize = 512;
/// The longest template language code accepted (`en_US`, `zh_HK`; a margin over Meta's).
pub const MAX_LANGUAGE_LEN: usize = 15;
/// The template categories Meta approves (each is priced differently).
pub const TEMPLATE_CATEGORIES: [&str; 3] = ["marketing", "utility", "authentication"];

/// An approved template to send.
#[derive(Debug, Clone)]
pub struct TemplateRef {
    /// Its name.
    pub name: String,
    /// Its language code (`en_US`).
    pub language: String,
    /// Its category as approved: `marketing`, `utility` or `authentication` (it decides the
    /// price).
    pub category: String,
    /// Meta's `components` (parameters), passed through.
    pub components: Option<Value>,
}

/// A message to send from a cloud line: a text or a template.
#[derive(Debug, Clone)]
pub struct CloudSend {
    /// The recipient (E.164).
    pub to: String,
    /// A text (only inside the customer service window).
    pub text: Option<String>,
    /// A template.
    pub template: Option<TemplateRef>,
}

impl CloudService {
    /// Sends from a cloud line: refused before Meta is asked when the customer service window
    /// is closed for a text (409) or the wallet does not cover the message's price (402);
    /// otherwise recorded `queued`, handed to the Graph API, and `sent` with Meta's id.
    pub async fn send(
        &self,
        _who: &Principal,
        line: &LineRecord,
        cloud: &CloudLineRecord,
        req: CloudSend,
    ) -> AppResult<MessageRecord> {
        validate_e164("to", &req.to).map_err(|e| AppError::invalid(e.param, e.message))?;
        let (message, outbound, kind, text) = match (&req.text, &req.template) {
            (Some(text), None) => {
                validate_text(text).map_err(|e| AppError::invalid(e.param, e.message))?;
                (
                    Message::NonTemplate,
                    Outbound::text(&req.to, text),
                    MessageKind::Text,
                    text.clone(),
                )
            }
            (None, Some(t)) => {
                if t.name.is_empty()
                    || t.name.len() > MAX_TEMPLATE_NAME
                    || !t
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(AppError::invalid(
                        "template.name",
                        "must be a template name: lowercase letters, digits and underscores",
                    ));
                }
                if t.language.is_empty()
                    || t.language.len() > MAX_LANGUAGE_LEN
                    || !t
                        .language
                        .bytes()
                        .all(|b| b.is_ascii_alphabetic() || b == b'_')
                {
                    return Err(AppError::invalid(
                        "template.language",
                        "must be a language code such as en or en_US",
                    ));
                }
                let category = TemplateCategory::parse(&t.category).ok_or_else(|| {
                    AppError::invalid(
                        "template.category",
                        "must be marketing, utility or authentication",
                    )
                })?;
                let mut outbound = Outbound::template(&req.to, &t.name, &t.language);
                if let Some(c) = &t.components {
                    outbound = outbound.with_components(c.clone());
                }
                (
                    Message::Template(category),
                    outbound,
                    MessageKind::Template,
                    t.name.clone(),
                )
            }
            _ => {
                return Err(AppError::invalid(
                    "text",
                    "give either `text` or `template`, not both",
                ))
            }
        };
        if line.status == LineStatus::Released {
            return Err(RuleError::LineReleased.into());
        }
        let business = line.phone_number.clone().unwrap_or_default();
        let now = self.clock.now();
        // What Meta would charge if it were delivered now: refused outside the window as
        // Meta refuses it, and only sent when the wallet covers it.
        if let Some(priced) = self
            .price(
                cloud,
                &business,
                &req.to,
                now,
                EventKind::BusinessMessage(message),
            )
            .await?
        {
            match priced.outcome {
                Some(Outcome::OutsideCustomerServiceWindow) => {
                    return Err(RuleError::OutsideCustomerServiceWindow.into())
                }
                Some(Outcome::Priced(p)) => {
                    let required = Micros(p.charge().0);
                    if required.0 > 0 {
                        let billing = self.store.billing_account(&line.account_id).await?;
                        if billing.balance < required {
                            return Err(RuleError::InsufficientBalance { required }.into());
                        }
                    }
                }
                None => {}
            }
        }
        let token = self
            .config
            .sealer
            .as_ref()
            .ok_or(RuleError::CloudNotConfigured)?
            .open(&line.id, &cloud.access_token)
            .map_err(AppError::Internal)?;
        let mut record = MessageRecord {
            id: MessageId::generate(),
            account_id: line.account_id.clone(),
            line_id: line.id.clone(),
            direction: Direction::Outbound,
            kind,
            from: Some(business),
            to: Some(req.to.clone()),
            text,
            status: MessageStatus::Queued,
            error: None,
            provider_id: None,
            created_at: now,
            updated_at: now,
        };
        // Recorded before Meta is asked: a status webhook for it always finds the message.
        let template = req.template.as_ref();
        let batch = Batch {
            insert_messages: vec![record.clone()],
            meta: Some(Box::new(MetaWrite {
                insert_cloud_message: Some(CloudMessageRecord {
                    message_id: record.id.clone(),
                    line_id: line.id.clone(),
                    template_name: template.map(|t| t.name.clone()),
                    template_language: template.map(|t| t.language.clone()),
                    category: template.map(|t| t.category.clone()),
                }),
                ..MetaWrite::default()
            })),
            ..Batch::default()
        };
        self.store
            .commit(batch, now)
            .await?
            .map_err(|c| AppError::Internal(c.into()))?;
        // Meta echoes our id on the message's statuses: they find it even if Meta's id is never
        // recorded (a crash right after Meta's answer) or arrives after them.
        let sent = self
            .config
            .graph
            .send_tagged(
                &cloud.phone_number_id,
                &token,
                &outbound,
                Some(record.id.as_str()),
            )
            .await;
        let now = self.clock.now();
        let (status, error, provider_id) = match &sent {
            Ok(s) => (MessageStatus::Sent, None, Some(s.id.clone())),
            Err(e) => (
                MessageStatus::Failed,
                Some(format!("meta_{}", e.code().unwrap_or(0))),
                None,
            ),
        };
        let (update, event) = self
            .lines
            .move_message(&mut record, status, error, provider_id, now);
        let batch = Batch {
            update_messages: vec![update],
            // A status webhook may have moved it already (found by our id): then that is
            // its state, and no `sent` is announced after it.
            messages_must_move: true,
            events: vec![event],
            ..Batch::default()
        };
        match self.store.commit(batch, now).await? {
            Ok(()) => {}
            Err(Conflict::MessageChanged) => {
                if let Some(current) = self.store.get_message(&line.account_id, &record.id).await? {
                    record = current;
                }
            }
            Err(c) => return Err(AppError::Internal(c.into())),
        }
        sent.map_err(graph_error)?;
        Ok(record)
    }
}
