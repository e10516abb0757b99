//! The number provider interface: what wagate asks of any provider of virtual numbers. The
//! sandbox network ([`super::sandbox`]) and the handler_api adapter ([`super::handler_api`])
//! implement it; the [`super::router::NumberRouter`] chooses among them.

use async_trait::async_trait;
use wagate_domain::money::Micros;
use wagate_domain::number::NumberKind;

/// One offer of a provider for a service and country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOffer {
    /// Verification or rental.
    pub kind: NumberKind,
    /// What wagate charges for it, in USD: a verification, or one hour of a rental.
    pub price: Micros,
    /// Numbers in stock.
    pub stock: u64,
}

/// A number a provider sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    /// The provider's id of the order.
    pub provider_ref: String,
    /// The number, E.164.
    pub phone_number: String,
}

/// An SMS a provider holds for a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSms {
    /// The provider's name of it (its id, or the code where the protocol has no id).
    pub key: String,
    /// Its text.
    pub text: String,
}

/// How a number's order ends at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The code arrived: the activation is done (the provider keeps the money).
    Completed,
    /// Canceled or expired without a code: the provider gives the number back (and refunds
    /// us where it does).
    Canceled,
}

/// Why a provider did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Nothing in stock for that service, country and kind.
    #[error("out of stock")]
    OutOfStock,
    /// The provider failed, refused us (a key, its balance) or did not answer in time: the
    /// router tries the next one.
    #[error("{0}")]
    Failed(String),
}

/// A provider of virtual numbers.
#[async_trait]
pub trait NumberProvider: Send + Sync {
    /// Its internal name (stored with each number it sells; never shown to the business).
    fn name(&self) -> &str;

    /// Its offers for `service` in `country` (ISO alpha-2), every kind it sells.
    async fn offers(
        &self,
        service: &str,
        country: &str,
    ) -> Result<Vec<ProviderOffer>, ProviderError>;

    /// Buys a number (`hours` for a rental).
    async fn order(
        &self,
        service: &str,
        country: &str,
        kind: NumberKind,
        hours: Option<u32>,
    ) -> Result<Ordered, ProviderError>;

    /// Every SMS the provider holds for the order so far (a poll: the caller keeps what is
    /// new by [`ProviderSms::key`]).
    async fn messages(&self, provider_ref: &str) -> Result<Vec<ProviderSms>, ProviderError>;

    /// Tells the provider how the order ended.
    async fn end(&self, provider_ref: &str, ending: Ending) -> Result<(), ProviderError>;

    /// Extends a rental by `hours`.
    async fn extend(&self, provider_ref: &str, hours: u32) -> Result<(), ProviderError>;

    /// Whether SMS reach wagate only by polling [`NumberProvider::messages`] (a real
    /// provider); the sandbox delivers them itself and needs no poll job.
    fn polled(&self) -> bool {
        true
    }

    /// The simulated provider behind this one, in the sandbox.
    fn sandbox(&self) -> Option<&super::sandbox::SandboxProvider> {
        None
    }
}
