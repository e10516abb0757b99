//! The event log: list, detail with attempts, redelivery.

use wagate_domain::ids::EventId;
use wagate_domain::page::{Page, PageRequest};
use wagate_store::{AttemptRecord, DeliveryRecord, EventFilter, EventRecord};

use crate::accounts::Principal;
use crate::{App, AppError, AppResult};

fn parse_id(id: &str) -> AppResult<EventId> {
    EventId::parse(id).map_err(|_| AppError::NotFound("event"))
}

/// A page of the account's events.
pub async fn list(
    app: &App,
    who: &Principal,
    filter: &EventFilter,
    page: &PageRequest,
) -> AppResult<Page<EventRecord>> {
    Ok(app.store.list_events(&who.account.id, filter, page).await?)
}

/// One event with its deliveries and attempts.
pub async fn get(
    app: &App,
    who: &Principal,
    id: &str,
) -> AppResult<(EventRecord, Vec<DeliveryRecord>, Vec<AttemptRecord>)> {
    app.store
        .get_event(&who.account.id, &parse_id(id)?)
        .await?
        .ok_or(AppError::NotFound("event"))
}

/// Queues a fresh attempt of the event to each of its (still enabled) endpoints, now.
pub async fn redeliver(app: &App, who: &Principal, id: &str) -> AppResult<EventRecord> {
    let ev = app
        .store
        .redeliver_event(&who.account.id, &parse_id(id)?, app.clock.now())
        .await?
        .ok_or(AppError::NotFound("event"))?;
    app.scheduler.wake();
    Ok(ev)
}
