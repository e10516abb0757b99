//! The sandbox's network of number providers: three simulated providers with their own
//! prices, stock, response time and failure rate, which the sandbox controls can empty or
//! make fail. SMS reach a number when the sandbox control delivers one
//! (`POST /api/v1/sandbox/numbers/{id}/sms`); everything else about time (expiry, refunds)
//! runs on the sandbox clock.
//!
//! Their state lives in this process (a restarted sandbox server starts with full stock
//! again); numbers and money live in the store like any others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use wagate_domain::ids::random_base62;
use wagate_domain::money::Micros;
use wagate_domain::number::NumberKind;

use super::provider::{Ending, NumberProvider, Ordered, ProviderError, ProviderOffer, ProviderSms};

/// How a simulated provider behaves (what `GET /api/v1/sandbox/numbers/providers` shows).
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxSettings {
    /// Multiplies the base price of every offer (different for each provider and service).
    pub price_factors: [f64; 3],
    /// Numbers in stock per service, country and kind (until sold).
    pub stock: u64,
    /// How long each call takes (wall time; over the router's timeout it counts as failed).
    pub latency: Duration,
    /// The share of orders that fail, spread evenly (0.25: every fourth order fails).
    pub failure_rate: f64,
    /// Every call fails (a sandbox control: the provider is down).
    pub down: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// `(service, country, kind)` → numbers left, once one was sold.
    stock: HashMap<(String, String, NumberKind), u64>,
    /// Orders so far (for the even spread of failures).
    orders: u64,
    /// `provider_ref` → SMS held for it.
    inbox: HashMap<String, Vec<ProviderSms>>,
}

/// One simulated provider.
pub struct SandboxProvider {
    name: String,
    settings: Mutex<SandboxSettings>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SandboxProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxProvider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The base price of a verification, in USD micro-units, by service (a rental's hour costs
/// a fifth of it).
fn base_price(service: &str) -> i64 {
    match service {
        "whatsapp" => 500_000,
        "telegram" => 400_000,
        "google" => 300_000,
        _ => 250_000,
    }
}

/// Countries cost more or less than the base.
fn country_factor(country: &str) -> f64 {
    match country {
        "US" | "CA" => 1.2,
        "GB" | "DE" | "FR" | "NL" => 1.0,
        _ => 0.8,
    }
}

/// The country calling code of sandbox numbers (fiction ranges where there are some).
fn dial_prefix(country: &str) -> &'static str {
    match country {
        "GB" => "+447700900",
        "US" | "CA" => "+1555010",
        "DE" => "+4915550",
        "FR" => "+3361100",
        _ => "+99955500",
    }
}

/// The countries and services the sandbox sells: those the real adapter knows.
fn sells(service: &str, country: &str) -> bool {
    wagate_numbers::codes::service_code(service).is_some()
        && wagate_numbers::codes::country_code(country).is_some()
}

impl SandboxProvider {
    fn new(name: &str, settings: SandboxSettings) -> Self {
        SandboxProvider {
            name: name.to_owned(),
            settings: Mutex::new(settings),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its current settings.
    pub fn settings(&self) -> SandboxSettings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes its settings: `stock` empties or refills every offer at once.
    pub fn configure(
        &self,
        stock: Option<u64>,
        down: Option<bool>,
        failure_rate: Option<f64>,
        latency: Option<Duration>,
    ) {
        let mut s = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = stock {
            s.stock = n;
            self.lock().stock.clear();
        }
        if let Some(d) = down {
            s.down = d;
        }
        if let Some(r) = failure_rate {
            s.failure_rate = r.clamp(0.0, 1.0);
        }
        if let Some(l) = latency {
            s.latency = l;
        }
    }

    /// Holds an SMS for the order (the sandbox control's delivery).
    pub fn deliver(&self, provider_ref: &str, text: &str) {
        let mut inner = self.lock();
        let held = inner.inbox.entry(provider_ref.to_owned()).or_default();
        let key = format!("sms{}", held.len() + 1);
        held.push(ProviderSms {
            key,
            text: text.to_owned(),
        });
    }

    /// Its price for a service, country and kind.
    pub fn price(&self, service: &str, country: &str, kind: NumberKind) -> Micros {
        let s = self.settings();
        // Which factor applies depends on the service, so no provider is cheapest for all.
        let pick = service.bytes().map(usize::from).sum::<usize>() % 3;
        let mut price =
            base_price(service) as f64 * country_factor(country) * s.price_factors[pick];
        if kind == NumberKind::Rental {
            price /= 5.0;
        }
        // Whole cents: prices are shown and compared as the business would read them.
        Micros::from_cents((price / 10_000.0).round() as i64)
    }

    /// Its offers right now, without its response time or failures (what the sandbox
    /// controls show).
    pub fn offers_now(&self, service: &str, country: &str) -> Vec<ProviderOffer> {
        if !sells(service, country) {
            return Vec::new();
        }
        let inner = self.lock();
        [NumberKind::Verification, NumberKind::Rental]
            .into_iter()
            .map(|kind| ProviderOffer {
                kind,
                price: self.price(service, country, kind),
                stock: self.stock_of(&inner, &(service.to_owned(), country.to_owned(), kind)),
            })
            .collect()
    }

    async fn respond(&self) -> Result<(), ProviderError> {
        let s = self.settings();
        if !s.latency.is_zero() {
            tokio::time::sleep(s.latency).await;
        }
        if s.down {
            return Err(ProviderError::Failed(format!("{} is down", self.name)));
        }
        Ok(())
    }

    fn stock_of(&self, inner: &Inner, key: &(String, String, NumberKind)) -> u64 {
        inner
            .stock
            .get(key)
            .copied()
            .unwrap_or(self.settings().stock)
    }
}

#[async_trait]
impl NumberProvider for SandboxProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn offers(
        &self,
        service: &str,
        country: &str,
    ) -> Result<Vec<ProviderOffer>, ProviderError> {
        self.respond().await?;
        Ok(self.offers_now(service, country))
    }

    async fn order(
        &self,
        service: &str,
        country: &str,
        kind: NumberKind,
        _hours: Option<u32>,
    ) -> Result<Ordered, ProviderError> {
        self.respond().await?;
        if !sells(service, country) {
            return Err(ProviderError::OutOfStock);
        }
        let rate = self.settings().failure_rate;
        let mut inner = self.lock();
        inner.orders += 1;
        // Failures spread evenly, not at random: the sandbox behaves the same on every run.
        let n = inner.orders as f64;
        if (n * rate).floor() > ((n - 1.0) * rate).floor() {
            return Err(ProviderError::Failed(format!(
                "{} failed the order",
                self.name
            )));
        }
        let key = (service.to_owned(), country.to_owned(), kind);
        let left = self.stock_of(&inner, &key);
        if left == 0 {
            return Err(ProviderError::OutOfStock);
        }
        inner.stock.insert(key, left - 1);
        let digits: String = random_base62(24)
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(char::from)
            .chain(std::iter::repeat('0'))
            .take(3)
            .collect();
        Ok(Ordered {
            provider_ref: format!("{}-{}", self.name, random_base62(12)),
            phone_number: format!("{}{digits}", dial_prefix(country)),
        })
    }

    async fn messages(&self, provider_ref: &str) -> Result<Vec<ProviderSms>, ProviderError> {
        Ok(self
            .lock()
            .inbox
            .get(provider_ref)
            .cloned()
            .unwrap_or_default())
    }

    async fn end(&self, provider_ref: &str, _ending: Ending) -> Result<(), ProviderError> {
        self.lock().inbox.remove(provider_ref);
        Ok(())
    }

    async fn extend(&self, _provider_ref: &str, _hours: u32) -> Result<(), ProviderError> {
        self.respond().await
    }

    fn polled(&self) -> bool {
        false
    }

    fn sandbox(&self) -> Option<&SandboxProvider> {
        Some(self)
    }
}

/// The three simulated providers, in the router's order: one cheap with little stock and
/// quick answers, one in the middle that fails one order in ten, one dear with deep stock and
/// slow answers that never fails unless told to: the network's last resort, so the default
/// sandbox never answers 503 `numbers_unavailable` (the fuzzer found one when the other two
/// failed or sold out together). Which is cheapest depends on the service.
pub fn network() -> Vec<Arc<dyn NumberProvider>> {
    let p = |name: &str, factors: [f64; 3], stock: u64, ms: u64, rate: f64| {
        Arc::new(SandboxProvider::new(
            name,
            SandboxSettings {
                price_factors: factors,
                stock,
                latency: Duration::from_millis(ms),
                failure_rate: rate,
                down: false,
            },
        )) as Arc<dyn NumberProvider>
    };
    vec![
        p("sandbox-a", [1.0, 1.3, 1.1], 5, 5, 0.0),
        p("sandbox-b", [1.2, 1.0, 1.3], 50, 15, 0.1),
        p("sandbox-c", [1.4, 1.5, 1.0], 500, 30, 0.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_provider_sells_its_stock_and_fails_evenly() {
        let p = SandboxProvider::new(
            "t",
            SandboxSettings {
                price_factors: [1.0, 1.0, 1.0],
                stock: 2,
                latency: Duration::ZERO,
                failure_rate: 0.5,
                down: false,
            },
        );
        let kind = NumberKind::Verification;
        assert!(p.order("whatsapp", "GB", kind, None).await.is_ok());
        assert!(matches!(
            p.order("whatsapp", "GB", kind, None).await,
            Err(ProviderError::Failed(_))
        ));
        assert!(p.order("whatsapp", "GB", kind, None).await.is_ok());
        p.configure(None, None, Some(0.0), None);
        assert_eq!(
            p.order("whatsapp", "GB", kind, None).await,
            Err(ProviderError::OutOfStock)
        );
        assert_eq!(p.price("whatsapp", "GB", kind), Micros(500_000));
        p.configure(None, Some(true), None, None);
        assert!(p.offers("whatsapp", "GB").await.is_err());
    }
}
