//! Pricing a Cloud API event with the engine of `wagate rate`, its state read from the store
//! and written back (version-guarded) in the transaction that applies the event.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;
use wagate_pricing::jsonl::OutputWriter;
use wagate_pricing::waba::WabaSettings;
use wagate_pricing::window::PairState;
use wagate_pricing::{
    Currency, Event, EventKind, Instant, Message, Outcome, Phone, StateKeys, StateSlice,
    TemplateCategory,
};
use wagate_store::{CloudLineRecord, PricingKey, PricingRows, PricingWrite};

use super::CloudService;
use crate::error::AppResult;

/// An event to price, with the stored state it reads (`None`: all remembered).
pub(crate) struct Prefetched {
    event: Event,
    keys: StateKeys,
    /// The state rows it reads and writes.
    pub key: PricingKey,
    read: Option<PricingRows>,
}

/// One event priced: what the engine said and the state to write with it.
pub(crate) struct Priced {
    /// `None` for a user message.
    pub outcome: Option<Outcome>,
    /// The outcome as `wagate rate` prints it (without its `id`), for a business message.
    pub json: Option<Value>,
    /// The engine's state after the event.
    pub write: PricingWrite,
}

impl CloudService {
    /// The engine's event of `kind` between the line's number and `user` at `at`, and the
    /// state it reads and writes; `None` when a number or the time is not one the engine can
    /// read.
    fn event_keys(
        &self,
        cloud: &CloudLineRecord,
        business: &str,
        user: &str,
        at: Timestamp,
        kind: EventKind,
    ) -> Option<(Event, StateKeys)> {
        let (business, user, at) = (
            Phone::parse(business)?,
            Phone::parse(user)?,
            Instant::from_timestamp(at)?,
        );
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        describe(&mut engine, cloud);
        let event = Event {
            at,
            waba: engine.waba(&cloud.waba_id),
            business,
            user,
            kind,
        };
        let keys = engine.keys(&event)?;
        Some((event, keys))
    }

    /// Waits for this server's turn on the engine state an event between the line's number and
    /// `user` at `at` can move; the turn lasts as long as the guards. Every event waits for its
    /// pair; a utility or authentication template also for its tier counters (the hot row of a
    /// busy market); a free-form message also for the WABA's free tier (conversation-based
    /// pricing). Marketing and user messages never wait for a market's counter.
    pub(crate) async fn state_turn(
        &self,
        cloud: &CloudLineRecord,
        business: &str,
        user: &str,
        at: Timestamp,
        kind: EventKind,
    ) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let Some((_, k)) = self.event_keys(cloud, business, user, at, kind) else {
            return Vec::new();
        };
        let mut names = vec![format!("pair {} {}", k.business, k.user)];
        match kind {
            EventKind::BusinessMessage(Message::Template(
                TemplateCategory::Utility | TemplateCategory::Authentication,
            )) => names.push(format!("tiers {} {} {}", k.portfolio, k.market, k.month)),
            EventKind::BusinessMessage(Message::NonTemplate) => {
                names.push(format!("free {}", k.waba))
            }
            _ => {}
        }
        self.locks.lock(&names).await
    }

    /// Prices `kind` between the line's number and `user` at `at` (a read: nothing is
    /// remembered). `None` when a number is not one the engine can read.
    pub(crate) async fn price(
        &self,
        cloud: &CloudLineRecord,
        business: &str,
        user: &str,
        at: Timestamp,
        kind: EventKind,
    ) -> AppResult<Option<Priced>> {
        let Some(prefetched) = self.prefetch(cloud, business, user, at, kind).await? else {
            return Ok(None);
        };
        self.price_prefetched(cloud, prefetched).await.map(Some)
    }

    /// The event and the state it reads, read from the database unless this server
    /// remembers all of it — before the event's turn, so the turn waits on no read. `None`
    /// when a number is not one the engine can read (nothing to price or to remember).
    pub(crate) async fn prefetch(
        &self,
        cloud: &CloudLineRecord,
        business: &str,
        user: &str,
        at: Timestamp,
        kind: EventKind,
    ) -> AppResult<Option<Prefetched>> {
        let Some((event, keys)) = self.event_keys(cloud, business, user, at, kind) else {
            tracing::warn!(line = %cloud.line_id, "a number of a Cloud API event cannot be priced");
            return Ok(None);
        };
        let key = PricingKey {
            business: keys.business.clone(),
            user: keys.user.clone(),
            waba: keys.waba.clone(),
            portfolio: keys.portfolio.clone(),
            market: keys.market.clone(),
            month: keys.month,
        };
        let read = if self.states.get(&key).complete() {
            None
        } else {
            Some(self.store.pricing_rows(&key).await?)
        };
        Ok(Some(Prefetched {
            event,
            keys,
            key,
            read,
        }))
    }

    /// Prices a prefetched event on the state this server remembers over what was read (in
    /// the event's turn: see [`CloudService::state_turn`]). The write carries a fresh version.
    pub(crate) async fn price_prefetched(
        &self,
        cloud: &CloudLineRecord,
        prefetched: Prefetched,
    ) -> AppResult<Priced> {
        let Prefetched {
            event,
            keys,
            key,
            read,
        } = prefetched;
        let remembered = self.states.get(&key);
        let read = match read {
            Some(read) => remembered.over(read),
            None if remembered.complete() => remembered.over(PricingRows::default()),
            // Forgotten since the prefetch (a write on it was refused): read it now.
            None => remembered.over(self.store.pricing_rows(&key).await?),
        };
        let stored = slice_of(&read, keys.month)?;
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        // Another event may have described the WABA differently meanwhile.
        describe(&mut engine, cloud);
        let event = Event {
            waba: engine.waba(&cloud.waba_id),
            ..event
        };
        engine.load(&event, &keys, &stored);
        let outcome = engine.rate(&event);
        let after = engine.slice(&event, &keys);
        let json = outcome.as_ref().map(|o| {
            let mut line = Vec::new();
            OutputWriter::new(&engine.data().markets).write(&mut line, "", o);
            let mut value: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
            if let Some(map) = value.as_object_mut() {
                map.remove("id");
                // The recipient's country (ISO 3166), for analytics by country like Meta's;
                // null for shared codes (+1 outside listed area codes, +7).
                let date = event.at.to_timestamp().to_zoned(TimeZone::UTC).date();
                let country = engine
                    .data()
                    .countries
                    .destination(event.user, date)
                    .country
                    .map(|c| String::from_utf8_lossy(&c).into_owned());
                map.insert("country".into(), serde_json::json!(country));
            }
            value
        });
        drop(engine);
        Ok(Priced {
            outcome,
            json,
            write: PricingWrite {
                key,
                read,
                pair: after
                    .pair
                    .map(|p| (p.encode(), p.expires_at().to_timestamp())),
                utility: after.utility_count,
                authentication: after.authentication_count,
                free_used: after.free_service_used,
                version: rand::random(),
            },
        })
    }
}

/// Describes the line's WABA to the engine (every call: the settings are the line's, and two
/// lines of one WABA carry the same ones).
fn describe(engine: &mut wagate_pricing::Engine, cloud: &CloudLineRecord) {
    let settings = WabaSettings {
        time_zone: TimeZone::get(&cloud.time_zone).unwrap_or(TimeZone::UTC),
        currency: Currency::parse(&cloud.currency).unwrap_or(Currency::USD),
        portfolio: Some(cloud.portfolio_id.clone()),
    };
    engine.describe_waba(&cloud.waba_id, settings);
}

/// The engine's view of stored rows.
fn slice_of(read: &PricingRows, month: i32) -> AppResult<StateSlice> {
    let pair = match &read.pair {
        Some((text, _)) => Some(PairState::decode(text).ok_or_else(|| {
            crate::error::AppError::Internal(anyhow::anyhow!(
                "stored pricing state `{text}` does not decode"
            ))
        })?),
        None => None,
    };
    let (utility_count, authentication_count) = read.tiers.map_or((0, 0), |(u, a, _)| (u, a));
    let free_service_used = match read.free {
        Some((m, used, _)) if m == month => used,
        _ => 0,
    };
    Ok(StateSlice {
        pair,
        utility_count,
        authentication_count,
        free_service_used,
    })
}
