//! Meta's webhooks: verified over the raw body, each notification applied once, durably,
//! before Meta gets its 200 (a failure answers 500 and Meta delivers again later).

use serde_json::{json, Value};
use wagate_domain::billing::ledger::message_charge;
use wagate_domain::ids::{MessageId, TransactionId};
use wagate_domain::line::{LineStatus, MessageKind, MessageStatus};
use wagate_domain::money::Micros;
use wagate_meta::webhook::{
    self, InboundMessage, MessageStatus as MetaStatus, Notification, StatusUpdate,
};
use wagate_pricing::{EventKind, Message, Outcome, TemplateCategory};
use wagate_store::{
    Batch, CloudLineRecord, Conflict, Direction, LineRecord, MessagePricingRecord, MessageRecord,
    MetaWrite, NewWalletTxn, StatusTarget,
};

use super::pricing::Prefetched;
use super::CloudService;
use crate::error::{AppError, AppResult};
use crate::lines::view::message_json;
use crate::webhooks::new_event;

/// How often a notification is re-read and re-applied after a concurrent change (another
/// server's: this server's events on shared state take turns).
const MAX_TRIES: usize = 32;

/// Why a webhook delivery was refused before anything was read from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefused {
    /// No app secret is configured, so no signature can be checked.
    #[error("this server has no Meta app secret configured (meta_app_secret)")]
    NotConfigured,
    /// `X-Hub-Signature-256` is missing or wrong.
    #[error("X-Hub-Signature-256 does not match the body")]
    BadSignature,
    /// The body is not a Meta webhook.
    #[error("not a Meta webhook body: {0}")]
    Malformed(String),
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Notifications applied now.
    pub applied: usize,
    /// Notifications applied before (Meta's retries), or for numbers and messages wagate does
    /// not know.
    pub skipped: usize,
}

/// What applying one notification came to.
enum Applied {
    Done,
    Skipped,
}

impl CloudService {
    /// Meta's subscription check: the challenge to echo when the token matches.
    pub fn verify_subscription<'a>(
        &self,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<String> {
        let token = self.config.verify_token.as_deref()?;
        webhook::verify_challenge(params, token)
    }

    /// Checks a delivery's signature, then applies each notification it carries.
    pub async fn receive(
        &self,
        raw: &[u8],
        signature: Option<&str>,
    ) -> Result<AppResult<Received>, WebhookRefused> {
        let secret = self
            .config
            .app_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(WebhookRefused::NotConfigured)?;
        if !webhook::verify_signature(secret.as_bytes(), raw, signature) {
            return Err(WebhookRefused::BadSignature);
        }
        let notifications =
            webhook::parse(raw).map_err(|e| WebhookRefused::Malformed(e.to_string()))?;
        Ok(self.apply_all(notifications).await)
    }

    async fn apply_all(&self, notifications: Vec<Notification>) -> AppResult<Received> {
        let mut received = Received::default();
        for n in notifications {
            let applied = match &n {
                Notification::Message(m) => self.apply_inbound(m).await?,
                Notification::Status(s) => self.apply_status(s).await?,
                // Meta's own tier notices: wagate's counters decide its prices.
                Notification::TierUpdate(_) => Applied::Skipped,
            };
            match applied {
                Applied::Done => received.applied += 1,
                Applied::Skipped => received.skipped += 1,
            }
        }
        Ok(received)
    }

    /// The open line of a Meta phone number id, if wagate serves it. With `recent`, a line read
    /// less than a second ago: a burst of statuses for one number reads it once (a status for a
    /// line released within that second is still applied: Meta delivered, and charges, the
    /// message). Inbound messages always read it: one for a number just released and given
    /// to a new line belongs to the new line.
    async fn line_of(
        &self,
        phone_number_id: &str,
        recent: bool,
    ) -> AppResult<Option<(LineRecord, CloudLineRecord)>> {
        if let Some(known) = self.numbers.get(phone_number_id).filter(|_| recent) {
            return Ok(Some(known));
        }
        let Some(cloud) = self.store.cloud_line_by_number(phone_number_id).await? else {
            return Ok(None);
        };
        let Some(line) = self.store.line_by_id(&cloud.line_id).await? else {
            return Ok(None);
        };
        if line.status == LineStatus::Released {
            return Ok(None);
        }
        self.numbers
            .put(phone_number_id, (line.clone(), cloud.clone()));
        Ok(Some((line, cloud)))
    }

    /// A user's message: stored and announced (`message.received`), and the customer service
    /// window (and a free entry point, for an ad's referral) opened in the pricing state.
    async fn apply_inbound(&self, m: &InboundMessage) -> AppResult<Applied> {
        let Some((line, cloud)) = self.line_of(&m.phone_number_id, false).await? else {
            tracing::info!(number = %m.phone_number_id, "Meta message for a number wagate does not serve");
            return Ok(Applied::Skipped);
        };
        let user = format!("+{}", m.from.trim_start_matches('+'));
        let business = line.phone_number.clone().unwrap_or_default();
        let entry = EventKind::UserMessage {
            entry_point: m.referral.is_some(),
        };
        for attempt in 0..MAX_TRIES {
            back_off(attempt).await;
            if self.store.inbound_message(&line.id, &m.id).await?.is_some() {
                return Ok(Applied::Skipped);
            }
            let prefetched = self
                .prefetch(&cloud, &business, &user, m.timestamp, entry)
                .await?;
            let turn = self
                .state_turn(&cloud, &business, &user, m.timestamp, entry)
                .await;
            let priced = match prefetched {
                Some(p) => Some(self.price_prefetched(&cloud, p).await?),
                None => None,
            };
            let now = self.clock.now();
            let kind = MessageKind::from_db(&m.kind)
                .filter(|k| MessageKind::INBOUND.contains(k))
                .unwrap_or(MessageKind::Text);
            let record = MessageRecord {
                id: MessageId::generate(),
                account_id: line.account_id.clone(),
                line_id: line.id.clone(),
                direction: Direction::Inbound,
                kind,
                from: Some(user.clone()),
                to: line.phone_number.clone(),
                text: m.text.clone().unwrap_or_default(),
                status: MessageStatus::Received,
                error: None,
                provider_id: Some(m.id.clone()),
                created_at: now,
                updated_at: now,
            };
            let mut data = json!({ "message": message_json(&record) });
            if let (Some(referral), Some(map)) = (&m.referral, data.as_object_mut()) {
                map.insert(
                    "referral".into(),
                    serde_json::to_value(referral).unwrap_or(Value::Null),
                );
            }
            let batch = Batch {
                events: vec![new_event(
                    &line.account_id,
                    "message.received",
                    Some(line.id.as_str()),
                    data,
                    now,
                )],
                insert_messages: vec![record],
                meta: Some(Box::new(MetaWrite {
                    delivery_key: Some(format!("message:{}", m.id)),
                    pricing: priced.map(|p| p.write),
                    ..MetaWrite::default()
                })),
                ..Batch::default()
            };
            match self.commit_priced(batch, now, turn).await? {
                Ok(()) => return Ok(Applied::Done),
                Err(Conflict::AlreadyApplied) => return Ok(Applied::Skipped),
                Err(conflict) => tracing::debug!(%conflict, "re-applying a Meta message"),
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "Meta message {} kept conflicting",
            m.id
        )))
    }

    /// A status of a message a cloud line sent: the message moves (never backwards: Meta sends
    /// statuses out of order), and the first of `delivered` / `read` prices it and debits the
    /// wallet, once.
    async fn apply_status(&self, s: &StatusUpdate) -> AppResult<Applied> {
        let Some((line, cloud)) = self.line_of(&s.phone_number_id, true).await? else {
            return Ok(Applied::Skipped);
        };
        let target = match s.status {
            MetaStatus::Sent => MessageStatus::Sent,
            MetaStatus::Delivered => MessageStatus::Delivered,
            MetaStatus::Read => MessageStatus::Read,
            MetaStatus::Failed => MessageStatus::Failed,
        };
        let mut unpaid = false;
        let Some(mut found) = self.sent_message(&line, s).await? else {
            tracing::info!(wamid = %s.id, "Meta status for a message wagate did not send");
            return Ok(Applied::Skipped);
        };
        let business = line.phone_number.clone().unwrap_or_default();
        let user = found.message.to.clone().unwrap_or_default();
        let kind = EventKind::BusinessMessage(sent_as(found.category.as_deref()));
        let reached = matches!(s.status, MetaStatus::Delivered | MetaStatus::Read);
        for attempt in 0..MAX_TRIES {
            back_off(attempt).await;
            if attempt > 0 {
                let Some(again) = self.sent_message(&line, s).await? else {
                    tracing::info!(wamid = %s.id, "Meta status for a message wagate did not send");
                    return Ok(Applied::Skipped);
                };
                found = again;
            }
            let mut m = found.message.clone();
            // Everything read before the turn, so the turn waits on no database read.
            let to_price = if reached && !found.priced {
                match self
                    .prefetch(&cloud, &business, &user, s.timestamp, kind)
                    .await?
                {
                    Some(p) => Some((p, self.store.billing_account(&line.account_id).await?)),
                    None => None,
                }
            } else {
                None
            };
            // Only an event that moves pricing state waits for its turn on it.
            let turn = match to_price {
                Some(_) => {
                    self.state_turn(&cloud, &business, &user, s.timestamp, kind)
                        .await
                }
                None => Vec::new(),
            };
            // Found by our id: Meta's id was not recorded yet (or lost); this status records it.
            let provider_id = (m.provider_id.is_none()).then(|| s.id.clone());
            let now = self.clock.now();
            let mut batch = Batch::default();
            let mut meta = MetaWrite {
                delivery_key: Some(format!("status:{}:{}", s.id, s.status.as_str())),
                ..MetaWrite::default()
            };
            let mut pricing_json = None;
            if let Some((prefetched, billing)) = to_price {
                let (record, write, txn, json) = self
                    .charge(&line, &cloud, &m, prefetched, s, unpaid)
                    .await?;
                if let Some(txn) = txn {
                    batch.start_auto_topup = auto_topup_after(&line, &billing, &txn, now);
                    batch.billing_account = Some(line.account_id.clone());
                    batch.wallet_txns.push(txn);
                }
                if let Some(data) = tier_crossed(&write, &json) {
                    batch.events.push(new_event(
                        &line.account_id,
                        "account_update",
                        Some(line.id.as_str()),
                        data,
                        now,
                    ));
                }
                meta.pricing = Some(write);
                meta.message_pricing = Some(record);
                pricing_json = Some(json);
            }
            if m.status.advances_to(target) {
                let error = s
                    .errors
                    .first()
                    .map(|e| format!("meta_{}: {}", e.code, e.title));
                let (update, _) = self
                    .lines
                    .move_message(&mut m, target, error, provider_id, now);
                batch.update_messages.push(update);
                batch.messages_must_move = true;
                let mut data = json!({ "message": message_json(&m) });
                if let (Some(p), Some(map)) = (&pricing_json, data.as_object_mut()) {
                    map.insert("pricing".into(), p.clone());
                }
                batch.events.push(new_event(
                    &line.account_id,
                    "message.status",
                    Some(line.id.as_str()),
                    data,
                    now,
                ));
            }
            batch.meta = Some(Box::new(meta));
            match self.commit_priced(batch, now, turn).await? {
                Ok(()) => return Ok(Applied::Done),
                Err(Conflict::AlreadyApplied) => return Ok(Applied::Skipped),
                Err(Conflict::InsufficientBalance) => {
                    // Meta charges for a delivered message whatever the wallet holds: the
                    // charge is recorded unpaid rather than lost (the send-time check makes
                    // this rare: concurrent sends, or a price that changed before delivery).
                    tracing::warn!(message = %m.id, "the wallet cannot cover a delivered message's Meta charge; recorded unpaid");
                    unpaid = true;
                }
                Err(conflict) => tracing::debug!(%conflict, "re-applying a Meta status"),
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "Meta status {} {} kept conflicting",
            s.id,
            s.status.as_str()
        )))
    }

    /// Hands a notification's batch over to be committed in order, remembering the pricing
    /// state it writes, then gives up the turn it was priced in and waits for the commit. A
    /// write that did not commit is forgotten: the next event on that state reads it again.
    async fn commit_priced(
        &self,
        batch: Batch,
        now: jiff::Timestamp,
        turn: Vec<tokio::sync::MutexGuard<'_, ()>>,
    ) -> AppResult<Result<(), Conflict>> {
        let written = batch
            .meta
            .as_ref()
            .and_then(|m| m.pricing.as_ref())
            .map(|w| {
                self.states.remember(w);
                w.key.clone()
            });
        let commit = self.store.commit_in_order(batch, now);
        drop(turn);
        let outcome = commit.await;
        if let (Some(key), false) = (&written, matches!(outcome, Ok(Ok(())))) {
            self.states.forget(key);
        }
        Ok(outcome?)
    }

    /// The outbound message of `line` a status is about: by Meta's id, or by the id wagate
    /// sent as `biz_opaque_callback_data`; with its declared category and whether it was
    /// priced, in one read.
    async fn sent_message(
        &self,
        line: &LineRecord,
        s: &StatusUpdate,
    ) -> AppResult<Option<StatusTarget>> {
        let own = s
            .callback_data
            .as_deref()
            .and_then(|c| MessageId::try_from(c.to_owned()).ok());
        Ok(self
            .store
            .status_target(&line.id, &s.id, own.as_ref())
            .await?)
    }

    /// Prices a delivered message: its record, the state write, the wallet debit (unless
    /// `unpaid`) and our pricing object.
    async fn charge(
        &self,
        line: &LineRecord,
        cloud: &CloudLineRecord,
        m: &MessageRecord,
        prefetched: Prefetched,
        s: &StatusUpdate,
        unpaid: bool,
    ) -> AppResult<(
        MessagePricingRecord,
        wagate_store::PricingWrite,
        Option<NewWalletTxn>,
        Value,
    )> {
        let priced = self.price_prefetched(cloud, prefetched).await?;
        let (amount, currency) = match priced.outcome {
            Some(Outcome::Priced(p)) => (Micros(p.charge().0), p.currency.as_str().to_string()),
            _ => {
                // Meta delivered what our window state says it would refuse: nothing to
                // charge by our rules; reconciliation shows Meta's view beside ours.
                tracing::warn!(message = %m.id, "Meta delivered a message priced outside the window");
                (Micros(0), cloud.currency.clone())
            }
        };
        let mut ours = priced.json.unwrap_or(Value::Null);
        if let Some(map) = ours.as_object_mut() {
            map.insert("amount".into(), json!(decimal(amount)));
        }
        let txn = if amount.0 > 0 && !unpaid {
            Some(NewWalletTxn {
                id: TransactionId::generate(),
                posting: message_charge(&line.account_id, amount)
                    .map_err(|e| AppError::Internal(e.into()))?,
                line_id: Some(line.id.clone()),
                payment_id: None,
                reverses: None,
                description: format!(
                    "Meta {} charge for message {} ({})",
                    ours["category"].as_str().unwrap_or("message"),
                    m.id,
                    ours["market"].as_str().unwrap_or("unknown market"),
                ),
            })
        } else {
            None
        };
        let record = MessagePricingRecord {
            message_id: m.id.clone(),
            account_id: line.account_id.clone(),
            line_id: line.id.clone(),
            waba_id: cloud.waba_id.clone(),
            delivered_at: s.timestamp,
            ours: ours.to_string(),
            amount,
            currency,
            transaction_id: txn.as_ref().map(|t| t.id.clone()),
            meta: s
                .pricing
                .as_ref()
                .and_then(|p| serde_json::to_string(p).ok()),
        };
        Ok((record, priced.write, txn, ours))
    }
}

/// The auto top-up job a message charge calls for; `billing` as read before the charge.
fn auto_topup_after(
    line: &LineRecord,
    billing: &wagate_store::BillingAccountRecord,
    debit: &NewWalletTxn,
    now: jiff::Timestamp,
) -> Option<wagate_domain::jobs::NewJob> {
    let after = Micros(
        billing
            .balance
            .0
            .saturating_add(debit.posting.wallet_delta(&line.account_id) as i64),
    );
    crate::billing::BillingService::auto_topup_job(billing, &line.account_id, after, &debit.id, now)
}

/// The `account_update` data when this message is the first of a new volume tier band of its
/// portfolio, market, category and month (Meta's `VOLUME_BASED_PRICING_TIER_UPDATE`): the
/// counter moves once per message under its version, so the band is entered exactly once.
fn tier_crossed(write: &wagate_store::PricingWrite, ours: &Value) -> Option<Value> {
    let (from, _) = ours["tier"].as_str()?.split_once(':')?;
    let from: u64 = from.parse().ok()?;
    let category = ours["category"].as_str()?;
    let count = match category {
        "utility" => write.utility,
        "authentication" | "authentication-international" => write.authentication,
        _ => return None,
    };
    // The first band starts at 0 or 1 (Meta writes both): entering it is no update.
    if from <= 1 || count != from {
        return None;
    }
    let month = write.key.month;
    Some(json!({
        "event": "VOLUME_BASED_PRICING_TIER_UPDATE",
        "volume_tier_info": {
            "portfolio_id": write.key.portfolio,
            "waba_id": write.key.waba,
            "market": write.key.market,
            "pricing_category": category.replace('-', "_").to_ascii_uppercase(),
            "tier": ours["tier"],
            "effective_month": format!("{:04}-{:02}", month.div_euclid(12), month.rem_euclid(12) + 1),
        },
    }))
}

/// Before a retry: a short random pause, longer each time, so servers racing on one row
/// spread out (wall time: this is about contention, not business time).
async fn back_off(attempt: usize) {
    if attempt > 0 {
        let ms = rand::random::<u64>() % (1 + 2 * attempt.min(20) as u64);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// An exact decimal of micro-units, as `wagate rate` prints amounts (at least two places).
fn decimal(amount: Micros) -> String {
    let mut out = Vec::new();
    wagate_pricing::Micros(amount.0).write_to(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// What a sent message was for pricing: a template of its declared category, or not.
fn sent_as(category: Option<&str>) -> Message {
    match category {
        Some(category) => {
            TemplateCategory::parse(category).map_or(Message::NonTemplate, Message::Template)
        }
        None => Message::NonTemplate,
    }
}
