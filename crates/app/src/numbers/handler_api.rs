//! A real provider: any service speaking the handler_api protocol (see `wagate_numbers`),
//! configured by its base URL and our key there. It sells verifications only (the protocol's
//! rentals are a separate API that this adapter does not speak); its SMS are polled.

use async_trait::async_trait;
use wagate_domain::money::Micros;
use wagate_domain::number::NumberKind;
use wagate_numbers::codes::{country_code, service_code};
use wagate_numbers::{ActivationStatus, HandlerApiClient, HandlerApiError, SetStatus};

use super::provider::{Ending, NumberProvider, Ordered, ProviderError, ProviderOffer, ProviderSms};

/// A handler_api provider.
#[derive(Debug)]
pub struct HandlerApiProvider {
    name: String,
    client: HandlerApiClient,
    /// What one unit of the provider's currency costs in USD micro-units (1 000 000 when it
    /// prices in dollars), so its costs compare with the other providers' prices.
    usd_micros_per_unit: f64,
}

impl HandlerApiProvider {
    /// The provider at `base` with `api_key`; `usd_per_unit` converts its prices to USD.
    pub fn new(name: &str, base: &str, api_key: &str, usd_per_unit: f64) -> Result<Self, String> {
        Ok(HandlerApiProvider {
            name: name.to_owned(),
            client: HandlerApiClient::new(base, api_key)?,
            usd_micros_per_unit: usd_per_unit * 1_000_000.0,
        })
    }
}

fn failed(e: HandlerApiError) -> ProviderError {
    match e {
        HandlerApiError::NoNumbers => ProviderError::OutOfStock,
        other => ProviderError::Failed(other.to_string()),
    }
}

#[async_trait]
impl NumberProvider for HandlerApiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn offers(
        &self,
        service: &str,
        country: &str,
    ) -> Result<Vec<ProviderOffer>, ProviderError> {
        let (Some(s), Some(c)) = (service_code(service), country_code(country)) else {
            return Ok(Vec::new());
        };
        let rows = self.client.get_prices(s, c).await.map_err(failed)?;
        Ok(rows
            .into_iter()
            .filter(|r| r.service == s && r.country == c && r.cost > 0.0)
            .map(|r| ProviderOffer {
                kind: NumberKind::Verification,
                // Rounded up to a whole cent: never sold below its cost.
                price: Micros::from_cents(
                    (r.cost * self.usd_micros_per_unit / 10_000.0).ceil() as i64
                ),
                stock: r.count,
            })
            .collect())
    }

    async fn order(
        &self,
        service: &str,
        country: &str,
        kind: NumberKind,
        _hours: Option<u32>,
    ) -> Result<Ordered, ProviderError> {
        let (Some(s), Some(c)) = (service_code(service), country_code(country)) else {
            return Err(ProviderError::OutOfStock);
        };
        if kind != NumberKind::Verification {
            return Err(ProviderError::OutOfStock);
        }
        let a = self.client.get_number(s, c).await.map_err(failed)?;
        // The protocol's "SMS sent" status starts the wait for the code; a provider that does
        // not need it answers it all the same.
        if let Err(e) = self.client.set_status(&a.id, SetStatus::Ready).await {
            tracing::info!(provider = %self.name, error = %e, "setStatus 1 refused; waiting anyway");
        }
        Ok(Ordered {
            provider_ref: a.id,
            phone_number: format!("+{}", a.number),
        })
    }

    async fn messages(&self, provider_ref: &str) -> Result<Vec<ProviderSms>, ProviderError> {
        match self.client.get_status(provider_ref).await.map_err(failed)? {
            ActivationStatus::Ok(code) | ActivationStatus::WaitRetry(code) => {
                Ok(vec![ProviderSms {
                    // The protocol names an SMS by nothing but its code.
                    key: format!("code:{code}"),
                    text: code,
                }])
            }
            ActivationStatus::WaitCode
            | ActivationStatus::WaitResend
            | ActivationStatus::Canceled => Ok(Vec::new()),
        }
    }

    async fn end(&self, provider_ref: &str, ending: Ending) -> Result<(), ProviderError> {
        let status = match ending {
            Ending::Completed => SetStatus::Complete,
            Ending::Canceled => SetStatus::Cancel,
        };
        self.client
            .set_status(provider_ref, status)
            .await
            .map_err(failed)
    }

    async fn extend(&self, _provider_ref: &str, _hours: u32) -> Result<(), ProviderError> {
        Err(ProviderError::Failed(
            "this provider sells no rentals".into(),
        ))
    }
}
