//! SMS reaching numbers: the poll of a provider, the sandbox's delivery, and recording what is
//! new with its `number.code_received` or `number.sms_received` event.

use wagate_domain::ids::NumberId;
use wagate_domain::number::{self as rules, extract_code, NumberStatus};
use wagate_store::{Batch, Conflict, NumberMessageRecord, NumberRecord, NumberWrite};

use super::provider::{Ending, ProviderError, ProviderSms};
use super::{number_event, NumberService, MAX_TRIES, SMS_MAX_CHARS};
use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};

impl NumberService {
    /// Asks the number's provider for its SMS and records what is new: a verification's code
    /// (`number.code_received`), a rental's SMS (`number.sms_received`).
    pub(super) async fn poll(&self, id: &NumberId) -> AppResult<NumberRecord> {
        let n = self
            .store
            .number_by_id(id)
            .await?
            .ok_or(AppError::NotFound("number"))?;
        if n.status.is_final() {
            return Ok(n);
        }
        let Some(p) = self.router.provider(&n.provider) else {
            tracing::warn!(number = %n.id, provider = %n.provider, "the number's provider is no longer configured");
            return Ok(n);
        };
        let held = self.router.call(p.messages(&n.provider_ref)).await;
        let held = match held {
            Ok(h) => h,
            Err(ProviderError::OutOfStock) => Vec::new(),
            Err(ProviderError::Failed(e)) => {
                tracing::info!(number = %n.id, error = %e, "the provider gave no SMS this time");
                Vec::new()
            }
        };
        self.record(id, &held).await
    }

    /// Records the SMS of `held` that the number does not have yet, with their events; a
    /// verification's first code ends it (`code_received`).
    async fn record(&self, id: &NumberId, held: &[ProviderSms]) -> AppResult<NumberRecord> {
        for _ in 0..MAX_TRIES {
            let n = self
                .store
                .number_by_id(id)
                .await?
                .ok_or(AppError::NotFound("number"))?;
            let known = self.sms(&[&n]).await?;
            let now = self.clock.now();
            let fresh: Vec<NumberMessageRecord> = held
                .iter()
                .filter(|s| !known.iter().any(|k| k.provider_key == s.key))
                .map(|s| NumberMessageRecord {
                    number_id: n.id.clone(),
                    provider_key: s.key.clone(),
                    text: s.text.clone(),
                    code: extract_code(&s.text),
                    received_at: now,
                })
                .collect();
            // A final number receives nothing more (a late SMS is the provider's to keep).
            if fresh.is_empty() || n.status.is_final() || now >= n.expires_at {
                return Ok(n);
            }
            let mut next = n.clone();
            next.updated_at = now;
            let mut all = known.clone();
            all.extend(fresh.iter().cloned());
            let mut events = Vec::new();
            let mut completed = false;
            for m in &fresh {
                let code_now = m
                    .code
                    .as_ref()
                    .filter(|_| rules::code_arrives(&next.state(), now).is_some());
                if let Some(code) = code_now {
                    next.status = NumberStatus::CodeReceived;
                    next.code = Some(code.clone());
                    next.code_received_at = Some(now);
                    completed = true;
                    events.push(number_event(
                        "number.code_received",
                        &next,
                        &all,
                        Some(m),
                        now,
                    ));
                } else {
                    events.push(number_event(
                        "number.sms_received",
                        &next,
                        &all,
                        Some(m),
                        now,
                    ));
                }
            }
            let batch = Batch {
                numbers: Some(Box::new(NumberWrite {
                    update: Some(next.clone()),
                    messages: fresh,
                    ..NumberWrite::default()
                })),
                events,
                ..Batch::default()
            };
            match self.store.commit(batch, now).await? {
                Ok(()) => {
                    self.scheduler.wake();
                    next.version += 1;
                    if completed {
                        self.tell_provider(&next, Ending::Completed).await;
                    }
                    return Ok(next);
                }
                Err(Conflict::NumberChanged | Conflict::AlreadyApplied) => continue,
                Err(c) => return Err(anyhow::anyhow!("recording a number's SMS: {c}").into()),
            }
        }
        Err(anyhow::anyhow!("the number kept changing").into())
    }

    /// The sandbox delivers an SMS to the account's number: its provider holds it and the
    /// number takes it at once (no poll to wait for).
    pub async fn sandbox_sms(
        &self,
        who: &Principal,
        id: &NumberId,
        text: &str,
    ) -> AppResult<NumberRecord> {
        if text.is_empty() || text.chars().count() > SMS_MAX_CHARS {
            return Err(AppError::invalid(
                "text",
                format!("1 to {SMS_MAX_CHARS} characters"),
            ));
        }
        let n = self.get(who, id).await?;
        let sim = self
            .router
            .provider(&n.provider)
            .filter(|p| p.sandbox().is_some())
            .ok_or_else(|| {
                RuleError::NumberNotNow(
                    "this number is from a real provider: its SMS come from there".into(),
                )
            })?;
        if n.status.is_final() || self.clock.now() >= n.expires_at {
            return Err(RuleError::NumberNotNow(format!(
                "the number is {} and receives no more SMS",
                if n.status.is_final() {
                    n.status.as_str()
                } else {
                    "past its expiry"
                }
            ))
            .into());
        }
        if let Some(s) = sim.sandbox() {
            s.deliver(&n.provider_ref, text);
        }
        self.poll(id).await
    }
}
