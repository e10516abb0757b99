//! Cloud API lines (PRODUCT.md §10): official numbers on Meta's Cloud API, Meta's webhooks,
//! and every message priced by the same engine as `wagate rate` and debited from the wallet.
//!
//! A cloud line is `ready` at creation (Meta already verified the number); sends go to the
//! Graph API in the request; what happens afterwards arrives as Meta's webhooks
//! ([`CloudService::receive`]): each notification is applied once, in one transaction with its
//! message change, its webhook event, the pricing engine's state and the wallet debit.

mod analytics;
mod locks;
mod pricing;
mod reconcile;
mod send;
mod state;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use wagate_domain::clock::Clock;
use wagate_domain::ids::LineId;
use wagate_domain::line::{validate_label, validate_metadata, LineKind, LineStatus};
use wagate_meta::graph::{GraphClient, GraphError};
use wagate_pricing::Engine;
use wagate_store::{Batch, CloudLineRecord, LineRecord, MetaWrite, Store};

use crate::accounts::Principal;
use crate::error::{AppError, AppResult, RuleError};
use crate::lines::LineService;

pub use analytics::{DataPoint, Dimension, Granularity, WabaAnalytics, MAX_ANALYTICS_DAYS};
pub use reconcile::{Mismatch, Reconciliation, MAX_MISMATCHES, MAX_RECONCILE_DAYS};
pub use send::{CloudSend, TemplateRef, MAX_LANGUAGE_LEN, MAX_TEMPLATE_NAME, TEMPLATE_CATEGORIES};
pub use webhooks::{Received, WebhookRefused};

/// Seals a cloud line's access token for the database and opens it again (the binary gives
/// the server key's implementation; the sandbox a fixed key, its data being test data).
pub trait TokenSealer: Send + Sync {
    /// The token, sealed to `line`.
    fn seal(&self, line: &LineId, token: &str) -> String;
    /// The token sealed by [`TokenSealer::seal`] for `line`.
    fn open(&self, line: &LineId, sealed: &str) -> anyhow::Result<String>;
}

/// How this server talks to Meta.
pub struct CloudConfig {
    /// The Graph API (`meta_graph_url`).
    pub graph: GraphClient,
    /// Meta's app secret: webhook bodies are signed with it (`meta_app_secret`).
    pub app_secret: Option<String>,
    /// The token Meta's verification request must carry (`meta_verify_token`).
    pub verify_token: Option<String>,
    /// Seals access tokens (`None`: no server key, so no cloud line can be created).
    pub sealer: Option<Arc<dyn TokenSealer>>,
    /// Rate cards and tier tables (`None`: the built-in cards, no tier table).
    pub pricing: Option<wagate_pricing::PricingData>,
}

impl CloudConfig {
    /// Meta's Graph API, no app secret, no sealer: cloud lines are refused until configured.
    pub fn unconfigured() -> anyhow::Result<Self> {
        Ok(CloudConfig {
            graph: GraphClient::new(
                wagate_meta::graph::DEFAULT_GRAPH_URL,
                GraphClient::http_client()?,
            )?,
            app_secret: None,
            verify_token: None,
            sealer: None,
            pricing: None,
        })
    }
}

/// A cloud line to create.
#[derive(Debug, Clone)]
pub struct CreateCloudLine {
    /// Meta's phone number id.
    pub phone_number_id: String,
    /// The WhatsApp Business Account.
    pub waba_id: String,
    /// A Graph API access token (a system user token) that can send from the number.
    pub access_token: String,
    /// The business portfolio its volume tiers accrue to (default: the WABA's own).
    pub portfolio_id: Option<String>,
    /// The WABA's time zone (IANA, default `UTC`).
    pub time_zone: Option<String>,
    /// The WABA's billing currency (default and only supported: `USD`, the wallet's).
    pub currency: Option<String>,
    /// The business's label.
    pub label: Option<String>,
    /// The business's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Cloud API lines and Meta billing.
pub struct CloudService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lines: Arc<LineService>,
    config: CloudConfig,
    /// A calculator only: the state it prices with is loaded from the store for every event.
    engine: Mutex<Engine>,
    /// Lines' kinds, which never change: a send asks once per line, not once per message.
    kinds: Mutex<HashMap<LineId, LineKind>>,
    /// Turns for events that share engine state (see [`locks`]).
    locks: locks::StateLocks,
    /// The line of each Meta number, for a second.
    numbers: locks::RecentNumbers,
    /// The pricing state rows as this server last wrote them.
    states: state::StateMemory,
}

/// Lines whose kind is remembered; beyond it the memory starts over.
const MAX_REMEMBERED_KINDS: usize = 100_000;

/// Longest Meta id accepted (Meta's ids are ~16 digits).
pub const MAX_ID_LEN: usize = 64;
/// Longest access token accepted (Meta's are ~200–500 characters).
pub const MAX_TOKEN_LEN: usize = 2048;
/// The only currency a cloud line bills in: Meta's charges come from the USD wallet.
pub const CURRENCY: &str = "USD";

impl CloudService {
    /// The service over `store`, pricing with the built-in rate cards.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        lines: Arc<LineService>,
        mut config: CloudConfig,
    ) -> anyhow::Result<Self> {
        let data = match config.pricing.take() {
            Some(data) => data,
            None => wagate_pricing::PricingData::builtin()?,
        };
        let engine = Engine::new(data, Default::default(), Default::default());
        Ok(CloudService {
            store,
            clock,
            lines,
            config,
            engine: Mutex::new(engine),
            kinds: Mutex::default(),
            locks: locks::StateLocks::default(),
            numbers: locks::RecentNumbers::default(),
            states: state::StateMemory::default(),
        })
    }

    /// Creates a cloud line: the number is checked with the Graph API and the line is `ready`
    /// at once with Meta's display number.
    pub async fn create_line(
        &self,
        who: &Principal,
        req: CreateCloudLine,
    ) -> AppResult<(LineRecord, CloudLineRecord)> {
        let id_field = |param: &str, value: &str| -> AppResult<()> {
            if value.is_empty()
                || value.len() > MAX_ID_LEN
                || !value.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(AppError::invalid(
                    param,
                    format!("must be Meta's numeric id (1–{MAX_ID_LEN} digits)"),
                ));
            }
            Ok(())
        };
        id_field("cloud.phone_number_id", &req.phone_number_id)?;
        id_field("cloud.waba_id", &req.waba_id)?;
        if let Some(p) = &req.portfolio_id {
            id_field("cloud.portfolio_id", p)?;
        }
        if req.access_token.is_empty()
            || req.access_token.len() > MAX_TOKEN_LEN
            || !req.access_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AppError::invalid(
                "cloud.access_token",
                format!(
                    "must be a Graph API access token (1–{MAX_TOKEN_LEN} printable characters)"
                ),
            ));
        }
        let time_zone = req.time_zone.clone().unwrap_or_else(|| "UTC".into());
        if TimeZone::get(&time_zone).is_err() {
            return Err(AppError::invalid(
                "cloud.time_zone",
                "must be an IANA time zone name, e.g. America/Sao_Paulo",
            ));
        }
        let currency = req.currency.clone().unwrap_or_else(|| "USD".into());
        if currency != CURRENCY {
            return Err(AppError::invalid(
                "cloud.currency",
                "only USD is supported: Meta's charges are debited from the USD wallet",
            ));
        }
        if let Some(label) = &req.label {
            validate_label(label).map_err(|e| AppError::invalid(e.param, e.message))?;
        }
        validate_metadata(&req.metadata).map_err(|e| AppError::invalid(e.param, e.message))?;
        let sealer = self
            .config
            .sealer
            .as_ref()
            .ok_or(RuleError::CloudNotConfigured)?;
        if self
            .store
            .cloud_line_by_number(&req.phone_number_id)
            .await?
            .is_some()
        {
            return Err(RuleError::PhoneNumberInUse.into());
        }
        let number = self
            .config
            .graph
            .phone_number(&req.phone_number_id, &req.access_token)
            .await
            .map_err(graph_error)?;
        let digits: String = number
            .display_phone_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let now = self.clock.now();
        let mut line =
            LineRecord::pending(who.account.id.clone(), false, false, String::new(), now);
        line.kind = LineKind::Cloud;
        line.status = LineStatus::Ready;
        line.connect_token = None;
        line.phone_number = Some(format!("+{digits}"));
        line.label = req.label;
        line.metadata = req.metadata;
        line.ready_at = Some(now);
        line.linked_at = Some(now);
        let cloud = CloudLineRecord {
            line_id: line.id.clone(),
            account_id: who.account.id.clone(),
            phone_number_id: req.phone_number_id,
            waba_id: req.waba_id.clone(),
            portfolio_id: req.portfolio_id.unwrap_or(req.waba_id),
            time_zone,
            currency,
            access_token: sealer.seal(&line.id, &req.access_token),
            released_at: None,
        };
        let batch = Batch {
            insert_line: Some(line.clone()),
            events: vec![self
                .lines
                .line_event(&line, "line.ready", serde_json::json!({}))],
            meta: Some(Box::new(MetaWrite {
                insert_cloud_line: Some(cloud.clone()),
                ..MetaWrite::default()
            })),
            ..Batch::default()
        };
        match self.store.commit(batch, now).await {
            Ok(result) => result.map_err(|c| AppError::Internal(c.into()))?,
            // The partial unique index on open numbers: another request created it meanwhile.
            Err(_)
                if self
                    .store
                    .cloud_line_by_number(&cloud.phone_number_id)
                    .await?
                    .is_some() =>
            {
                return Err(RuleError::PhoneNumberInUse.into())
            }
            Err(e) => return Err(e.into()),
        }
        Ok((line, cloud))
    }

    /// Whether `line` of `account` is a cloud line (an unknown line is not: the caller's next
    /// step answers its 404).
    pub async fn is_cloud_line(
        &self,
        account: &wagate_domain::ids::AccountId,
        line: &LineId,
    ) -> AppResult<bool> {
        let known = self
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(line)
            .copied();
        let kind = match known {
            Some(kind) => kind,
            None => {
                let Some(l) = self.store.get_line(account, line).await? else {
                    return Ok(false);
                };
                let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
                if kinds.len() >= MAX_REMEMBERED_KINDS {
                    kinds.clear();
                }
                kinds.insert(l.id.clone(), l.kind);
                l.kind
            }
        };
        Ok(kind == LineKind::Cloud)
    }

    /// The cloud line behind `line` (for a web line: `None`).
    pub async fn cloud_line(&self, line: &LineId) -> AppResult<Option<CloudLineRecord>> {
        Ok(self.store.cloud_line(line).await?)
    }
}

/// A Graph API failure as the API user sees it.
fn graph_error(e: GraphError) -> AppError {
    let message = e.to_string();
    match e {
        GraphError::InvalidCredentials(_) | GraphError::UnknownPhoneNumber(_) => {
            RuleError::CloudCredentialsInvalid(message).into()
        }
        GraphError::OutsideCustomerServiceWindow(_) => {
            RuleError::OutsideCustomerServiceWindow.into()
        }
        GraphError::UnknownTemplate(_) | GraphError::TemplateParameters(_) => {
            RuleError::TemplateRejected(message).into()
        }
        GraphError::RateLimited {
            retry_after_secs, ..
        } => RuleError::MetaRateLimit {
            retry_after: retry_after_secs,
        }
        .into(),
        GraphError::RecipientUnavailable(_) | GraphError::Rejected(_) => {
            RuleError::MetaRejected(message).into()
        }
        GraphError::Unavailable { .. } => RuleError::MetaUnavailable(message).into(),
    }
}
