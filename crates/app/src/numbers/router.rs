//! The router: asks every provider for its offers at the moment of a request, takes the
//! cheapest one in stock, and fails over to the next cheapest when a provider errs or does
//! not answer within [`PROVIDER_TIMEOUT`]. Which provider sold a number is stored with it
//! and never shown.

use std::sync::Arc;
use std::time::Duration;

use wagate_domain::money::Micros;
use wagate_domain::number::{failover_order, NumberKind, Offer};

use super::provider::{NumberProvider, Ordered, ProviderError, ProviderOffer};

/// How long one provider call may take before the router counts it as failed.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The providers, in a fixed order (ties in price go to the earlier one).
pub struct NumberRouter {
    providers: Vec<Arc<dyn NumberProvider>>,
    timeout: Duration,
}

impl std::fmt::Debug for NumberRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NumberRouter")
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

/// A number bought through the router.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The provider that sold it.
    pub provider: Arc<dyn NumberProvider>,
    /// Its price (a verification, or an hour of a rental).
    pub unit_price: Micros,
    /// What the provider answered.
    pub ordered: Ordered,
}

impl std::fmt::Debug for dyn NumberProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the router bought nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No provider has stock (or every one that had sold out meanwhile).
    OutOfStock,
    /// The cheapest offer in stock costs more than the caller can pay.
    TooExpensive {
        /// Its price.
        cheapest: Micros,
    },
    /// Providers had stock, but every one failed or did not answer.
    Unavailable(String),
}

impl NumberRouter {
    /// A router over `providers`.
    pub fn new(providers: Vec<Arc<dyn NumberProvider>>) -> Self {
        NumberRouter {
            providers,
            timeout: PROVIDER_TIMEOUT,
        }
    }

    /// The same router with another per-call timeout (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether any provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn NumberProvider>> {
        self.providers.iter().find(|p| p.name() == name).cloned()
    }

    /// Every provider, in order.
    pub fn providers(&self) -> &[Arc<dyn NumberProvider>] {
        &self.providers
    }

    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Failed("no answer in time".into())),
        }
    }

    /// Every provider's offers for `service` in `country`, asked at once; a provider that
    /// fails or is slow is left out (it cannot sell now either).
    pub async fn offers(&self, service: &str, country: &str) -> Vec<(usize, ProviderOffer)> {
        let asks = self
            .providers
            .iter()
            .map(|p| self.timed(p.offers(service, country)));
        let answers = futures_util::future::join_all(asks).await;
        let mut out = Vec::new();
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                Ok(offers) => out.extend(offers.into_iter().map(|o| (i, o))),
                Err(e) => {
                    tracing::info!(provider = self.providers[i].name(), error = %e, "a number provider gave no prices")
                }
            }
        }
        out
    }

    /// The offers of one kind, as the domain's router rules see them.
    pub fn of_kind(offers: &[(usize, ProviderOffer)], kind: NumberKind) -> Vec<Offer> {
        offers
            .iter()
            .filter(|(_, o)| o.kind == kind)
            .map(|(i, o)| Offer {
                provider: *i,
                price: o.price,
                stock: o.stock,
            })
            .collect()
    }

    /// Buys a number from the cheapest provider with stock, failing over in price order.
    /// `affordable` says whether the caller can pay a unit price: an offer it cannot pay is
    /// never ordered.
    pub async fn order(
        &self,
        service: &str,
        country: &str,
        kind: NumberKind,
        hours: Option<u32>,
        affordable: impl Fn(Micros) -> bool,
    ) -> Result<Placed, RouteError> {
        let offers = self.offers(service, country).await;
        let order = failover_order(&Self::of_kind(&offers, kind));
        let Some(cheapest) = order.first() else {
            return Err(RouteError::OutOfStock);
        };
        if !affordable(cheapest.price) {
            return Err(RouteError::TooExpensive {
                cheapest: cheapest.price,
            });
        }
        let mut failures = Vec::new();
        for offer in order.iter().filter(|o| affordable(o.price)) {
            let provider = &self.providers[offer.provider];
            match self
                .timed(provider.order(service, country, kind, hours))
                .await
            {
                Ok(ordered) => {
                    return Ok(Placed {
                        provider: provider.clone(),
                        unit_price: offer.price,
                        ordered,
                    })
                }
                Err(ProviderError::OutOfStock) => {
                    tracing::info!(
                        provider = provider.name(),
                        "sold out meanwhile; trying the next"
                    )
                }
                Err(ProviderError::Failed(e)) => {
                    tracing::warn!(provider = provider.name(), error = %e, "a number provider failed; trying the next");
                    failures.push(e);
                }
            }
        }
        if failures.is_empty() {
            Err(RouteError::OutOfStock)
        } else {
            Err(RouteError::Unavailable(format!(
                "{} provider(s) with stock failed",
                failures.len()
            )))
        }
    }

    /// A provider call about an existing order, bounded like the others.
    pub async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        self.timed(call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numbers::sandbox::network;

    fn names(r: &NumberRouter) -> Vec<String> {
        r.providers().iter().map(|p| p.name().to_owned()).collect()
    }

    /// The sandbox's providers by their WhatsApp GB verification price, cheapest first.
    fn by_price(r: &NumberRouter) -> Vec<(usize, Micros)> {
        let mut v: Vec<(usize, Micros)> = r
            .providers()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let s = p.sandbox().expect("simulated");
                s.configure(None, None, Some(0.0), None);
                (i, s.price("whatsapp", "GB", NumberKind::Verification))
            })
            .collect();
        v.sort_by_key(|(i, p)| (*p, *i));
        v
    }

    #[tokio::test]
    async fn a_provider_that_does_not_answer_in_time_is_passed_over() {
        let r = NumberRouter::new(network()).with_timeout(Duration::from_millis(200));
        let order = by_price(&r);
        let (cheapest, next) = (order[0].0, order[1].0);
        r.providers()[cheapest]
            .sandbox()
            .expect("simulated")
            .configure(None, None, None, Some(Duration::from_secs(5)));
        let started = std::time::Instant::now();
        let placed = r
            .order("whatsapp", "GB", NumberKind::Verification, None, |_| true)
            .await
            .expect("the next provider sells it");
        assert_eq!(placed.provider.name(), names(&r)[next]);
        assert_eq!(placed.unit_price, order[1].1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bounded by the timeout"
        );
    }

    #[tokio::test]
    async fn errors_fail_over_in_price_order_and_stock_decides_the_answer() {
        let r = NumberRouter::new(network());
        let order = by_price(&r);
        let sim = |i: usize| r.providers()[i].sandbox().expect("simulated");
        sim(order[0].0).configure(None, None, Some(1.0), None);
        sim(order[1].0).configure(Some(0), None, None, None);
        let placed = r
            .order("whatsapp", "GB", NumberKind::Verification, None, |_| true)
            .await
            .expect("the dearest sells it");
        assert_eq!(placed.unit_price, order[2].1);
        // The dearest is too dear for the caller: the cheaper ones failed or sold out.
        let refused = r
            .order("whatsapp", "GB", NumberKind::Verification, None, |p| {
                p < order[2].1
            })
            .await;
        assert_eq!(
            refused.map(|p| p.unit_price),
            Err(RouteError::Unavailable(
                "1 provider(s) with stock failed".into()
            ))
        );
        for i in 0..3 {
            sim(i).configure(Some(0), Some(false), None, None);
        }
        assert_eq!(
            r.order("whatsapp", "GB", NumberKind::Verification, None, |_| true)
                .await
                .map(|p| p.unit_price),
            Err(RouteError::OutOfStock)
        );
        assert_eq!(
            r.order("whatsapp", "GB", NumberKind::Verification, None, |_| false)
                .await
                .map(|p| p.unit_price),
            Err(RouteError::OutOfStock),
            "nothing in stock: out of stock before too expensive"
        );
    }
}
