//! The delivery worker: one signed HTTP attempt per job, then the follow-up (done, retry on
//! the schedule, give up, or disable the endpoint), recorded atomically with the attempt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;
use wagate_domain::clock::Clock;
use wagate_domain::ids::{AccountId, DeliveryId};
use wagate_domain::jobs::Job;
use wagate_domain::webhook::address::{check_literal_host, is_forbidden_ip};
use wagate_domain::webhook::retry::{
    next_retry_delay, verdict, AttemptVerdict, ATTEMPT_TIMEOUT, DISABLE_AFTER_FAILING_FOR,
};
use wagate_domain::webhook::signing::{signature_header, SigningSecret};
use wagate_store::{AttemptFollowUp, AttemptRecord, DeliveryTask, EndpointRecord, Store};

use super::new_event;
use crate::scheduler::JobHandler;

/// Attempts in flight to one host at most, so one slow receiver cannot take every worker.
pub const PER_HOST_CONCURRENCY: usize = 16;
/// Hosts whose limiter is kept before idle ones are forgotten.
const MAX_TRACKED_HOSTS: usize = 1024;

/// A DNS resolver that drops private, loopback and other internal addresses, so a name
/// that resolves (or later re-resolves) inside the network can never be reached.
#[derive(Debug, Clone, Copy)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| !is_forbidden_ip(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{} resolves only to internal addresses", name.as_str()).into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// How long a delivery worker signs with the secrets it read before reading them again. A
/// rotation on this server is seen at once (it empties the account's entry); on other
/// servers within this long, well inside the 24-hour overlap during which the old secret
/// still signs beside the new one.
pub const SECRETS_TTL: Duration = Duration::from_secs(5);
/// Accounts whose secrets are kept before the cache starts over.
const MAX_CACHED_ACCOUNTS: usize = 100_000;

/// The signing secrets of recently delivering accounts: one read per account every
/// [`SECRETS_TTL`] instead of one per attempt.
#[derive(Default)]
pub struct SecretCache(Mutex<HashMap<AccountId, CachedSecrets>>);

struct CachedSecrets {
    read_at: Instant,
    /// When the first of the secrets stops signing (business time): the entry ends then.
    until: Option<jiff::Timestamp>,
    secrets: Arc<Vec<SigningSecret>>,
}

impl SecretCache {
    /// Forgets `account`'s secrets (they were rotated).
    pub fn forget(&self, account: &AccountId) {
        self.lock().remove(account);
    }

    fn get(&self, account: &AccountId, now: jiff::Timestamp) -> Option<Arc<Vec<SigningSecret>>> {
        let cache = self.lock();
        let entry = cache.get(account)?;
        let fresh =
            entry.read_at.elapsed() < SECRETS_TTL && entry.until.is_none_or(|until| until > now);
        fresh.then(|| entry.secrets.clone())
    }

    fn put(
        &self,
        account: &AccountId,
        until: Option<jiff::Timestamp>,
        secrets: Arc<Vec<SigningSecret>>,
    ) {
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED_ACCOUNTS {
            cache.clear();
        }
        cache.insert(
            account.clone(),
            CachedSecrets {
                read_at: Instant::now(),
                until,
                secrets,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, CachedSecrets>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The per-host limiters of attempts in flight ([`PER_HOST_CONCURRENCY`] each).
#[derive(Default)]
struct HostLimits(Mutex<HashMap<String, Arc<Semaphore>>>);

impl HostLimits {
    /// The limiter of `host` (hold a clone while attempting).
    fn permits(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.len() >= MAX_TRACKED_HOSTS && !hosts.contains_key(host) {
            // Forget hosts no attempt is using now (only the map holds their limiter), so
            // endpoints on ever new hosts cannot grow the map without bound.
            hosts.retain(|_, permits| Arc::strong_count(permits) > 1);
        }
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_HOST_CONCURRENCY)))
            .clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The `webhook.deliver` job handler.
pub struct Deliverer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wall: Arc<dyn Clock>,
    client: reqwest::Client,
    allow_internal: bool,
    hosts: HostLimits,
    secrets: Arc<SecretCache>,
    /// Tasks read for a claim's jobs before they run (see [`JobHandler::prepare`]), with
    /// when they were read.
    prepared: Mutex<HashMap<DeliveryId, (Instant, DeliveryTask)>>,
}

/// Prepared tasks kept at most (a job that never ran leaves its task behind).
const MAX_PREPARED: usize = 4096;
/// A prepared task older than this is read again: its job was claimed then, runs at once,
/// and only a job that failed to run and was claimed again much later could find an old one.
const PREPARED_FOR: Duration = Duration::from_secs(1);

impl Deliverer {
    /// A deliverer. `allow_internal` (the sandbox) permits loopback and private targets.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        wall: Arc<dyn Clock>,
        allow_internal: bool,
    ) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wagate-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(PER_HOST_CONCURRENCY)
            // Never through a proxy from HTTP(S)_PROXY: the proxy would resolve the endpoint's
            // host itself, past the resolver that refuses internal addresses.
            .no_proxy();
        if !allow_internal {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self {
            store,
            clock,
            wall,
            client: builder.build()?,
            allow_internal,
            hosts: HostLimits::default(),
            secrets: Arc::default(),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    fn prepared(&self) -> std::sync::MutexGuard<'_, HashMap<DeliveryId, (Instant, DeliveryTask)>> {
        self.prepared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delivery_of(job: &Job) -> anyhow::Result<DeliveryId> {
        Ok(serde_json::from_value(job.payload["delivery"].clone())?)
    }

    /// Shares `cache` with the use cases that rotate secrets (see [`SecretCache::forget`]).
    pub fn with_secret_cache(mut self, cache: Arc<SecretCache>) -> Self {
        self.secrets = cache;
        self
    }

    async fn signing_secrets(
        &self,
        account: &AccountId,
    ) -> anyhow::Result<Arc<Vec<SigningSecret>>> {
        let now = self.clock.now();
        if let Some(cached) = self.secrets.get(account, now) {
            return Ok(cached);
        }
        let records = self
            .store
            .webhook_secrets(account, &SigningSecret::generate().to_text(), now)
            .await?;
        let secrets = records
            .iter()
            .map(|r| {
                SigningSecret::parse(&r.secret).map_err(|e| anyhow::anyhow!("stored secret: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let until = records.iter().filter_map(|r| r.expires_at).min();
        let secrets = Arc::new(secrets);
        self.secrets.put(account, until, secrets.clone());
        Ok(secrets)
    }

    /// Makes one attempt: `(status code, error)`.
    async fn attempt(
        &self,
        ep: &EndpointRecord,
        event_id: &str,
        body: &str,
        secrets: &[SigningSecret],
    ) -> (Option<u16>, Option<String>) {
        let url = match url::Url::parse(&ep.url) {
            Ok(u) => u,
            Err(e) => return (None, Some(format!("invalid url: {e}"))),
        };
        if !self.allow_internal {
            if let Err(e) = check_literal_host(&url) {
                return (None, Some(e.to_string()));
            }
        }
        let permits = self.hosts.permits(url.host_str().unwrap_or_default());
        let _permit = permits.acquire_owned().await;
        // Signed afresh for each attempt: the timestamp is the wall-clock time of this attempt.
        let timestamp = self.wall.now().as_second();
        let refs: Vec<&SigningSecret> = secrets.iter().collect();
        let signature = signature_header(&refs, event_id, timestamp, body.as_bytes());
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let err = (!resp.status().is_success()).then(|| format!("HTTP {code}"));
                (Some(code), err)
            }
            Err(e) if e.is_timeout() => {
                (None, Some(format!("timed out after {ATTEMPT_TIMEOUT:?}")))
            }
            Err(e) => (None, Some(format!("{e:#}"))),
        }
    }

    fn disable(
        ep: &EndpointRecord,
        account: &AccountId,
        reason: &str,
        now: jiff::Timestamp,
    ) -> AttemptFollowUp {
        let event = new_event(
            account,
            "endpoint.disabled",
            None,
            serde_json::json!({
                "endpoint_id": ep.id,
                "url": ep.url,
                "reason": reason,
                "disabled_at": wagate_domain::time::rfc3339(now),
            }),
            now,
        );
        AttemptFollowUp::DisableEndpoint {
            reason: reason.to_owned(),
            event,
        }
    }
}

#[async_trait]
impl JobHandler for Deliverer {
    async fn prepare(&self, jobs: &[&Job]) {
        let ids: Vec<DeliveryId> = jobs
            .iter()
            .filter_map(|j| Self::delivery_of(j).ok())
            .collect();
        if ids.len() < 2 {
            return;
        }
        match self.store.delivery_tasks(&ids).await {
            Ok(tasks) => {
                let mut prepared = self.prepared();
                if prepared.len() + tasks.len() > MAX_PREPARED {
                    prepared.clear();
                }
                let now = Instant::now();
                for t in tasks {
                    prepared.insert(t.delivery.id.clone(), (now, t));
                }
            }
            // Each job reads its own task then.
            Err(e) => tracing::debug!(error = %e, "could not read a claim's delivery tasks"),
        }
    }

    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let id = Self::delivery_of(job)?;
        let prepared = self
            .prepared()
            .remove(&id)
            .filter(|(read_at, _)| read_at.elapsed() < PREPARED_FOR);
        let task = match prepared {
            Some((_, t)) => Some(t),
            None => self.store.delivery_task(&id).await?,
        };
        let Some(task) = task else {
            self.store.finish_job(&job.id).await?;
            return Ok(());
        };
        if task.delivery.status != "pending" {
            // A stale job for a delivery already settled.
            self.store.finish_job(&job.id).await?;
            return Ok(());
        }
        let Some(ep) = task.endpoint.filter(|e| e.enabled) else {
            self.store.abandon_delivery(&id, self.clock.now()).await?;
            self.store.finish_job(&job.id).await?;
            return Ok(());
        };
        let secrets = self.signing_secrets(&task.account_id).await?;
        let attempted_at = self.wall.now();
        let started = Instant::now();
        let event_id = task.delivery.event_id.to_string();
        let (status_code, error) = self.attempt(&ep, &event_id, &task.body, &secrets).await;
        let latency_ms = started.elapsed().as_millis().min(i64::MAX as u128) as i64;
        let attempt_no = task.delivery.attempts + 1;
        let now = self.clock.now();
        let follow_up = match verdict(status_code) {
            AttemptVerdict::Delivered => AttemptFollowUp::Delivered,
            AttemptVerdict::Gone => Self::disable(&ep, &task.account_id, "gone", now),
            AttemptVerdict::Failed => {
                let failing_since = ep.failing_since.unwrap_or(now);
                if now.duration_since(failing_since) >= DISABLE_AFTER_FAILING_FOR {
                    Self::disable(&ep, &task.account_id, "failing", now)
                } else {
                    let jitter: f64 = rand::thread_rng().gen_range(0.0..1.0);
                    match next_retry_delay(attempt_no, jitter) {
                        Some(delay) => AttemptFollowUp::RetryAt(now + delay),
                        None => AttemptFollowUp::GiveUp,
                    }
                }
            }
        };
        let attempt = AttemptRecord {
            delivery_id: id,
            endpoint_id: ep.id.clone(),
            attempt: attempt_no,
            attempted_at,
            status_code,
            latency_ms,
            error,
        };
        self.store
            .record_attempt(
                &job.id,
                &task.delivery.event_id,
                &task.account_id,
                &attempt,
                follow_up,
                now,
            )
            .await?;
        Ok(())
    }

    fn removes_own_job(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_map_forgets_idle_hosts_and_keeps_busy_ones() {
        let limits = HostLimits::default();
        let busy = limits.permits("busy.example");
        for i in 0..MAX_TRACKED_HOSTS * 3 {
            drop(limits.permits(&format!("h{i}.example")));
        }
        assert!(
            limits.len() <= MAX_TRACKED_HOSTS,
            "bounded: {}",
            limits.len()
        );
        assert!(
            Arc::ptr_eq(&busy, &limits.permits("busy.example")),
            "a host with an attempt in flight keeps its limiter"
        );
    }
}
