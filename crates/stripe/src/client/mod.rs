//! The Stripe API client: customers, payment methods, prices and subscriptions.

mod error;

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

pub use error::{ApiError, StripeError};

use crate::types::{
    Customer, Form, NewCustomer, NewPrice, NewSubscription, PaymentMethod, Price, Subscription,
    WireList,
};

/// Stripe's API host; paths below it start with `/v1`.
pub const DEFAULT_API_URL: &str = "https://api.stripe.com";

/// The API version this crate was written against, sent as `Stripe-Version` unless the
/// configuration says otherwise. Webhook events use the version of their endpoint instead,
/// which is why the types read both the older and the newer shapes.
pub const DEFAULT_API_VERSION: &str = "2025-03-31.basil";

/// How long one Stripe call may take; past it the call is [`StripeError::Network`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a [`StripeClient`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum StripeConfigError {
    /// The API URL is not an `https` URL (or `http` on loopback, for the fake).
    #[error("invalid Stripe API URL {url:?}: {reason}")]
    ApiUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The secret key is empty or cannot be sent in a header.
    #[error("the Stripe secret key is empty or not a valid header value")]
    SecretKey,
    /// The API version cannot be sent in a header.
    #[error("the Stripe API version {0:?} is not a valid header value")]
    ApiVersion(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for Stripe: {0}")]
    Client(String),
}

/// What a [`StripeClient`] needs: wagate's `stripe_api_url` and `stripe_secret_key`.
#[derive(Clone)]
pub struct StripeConfig {
    /// The API host, e.g. [`DEFAULT_API_URL`] or a fake's `http://127.0.0.1:PORT`.
    pub api_url: String,
    /// The secret key (`sk_test_…`, `sk_live_…`, or a restricted `rk_…`).
    pub secret_key: String,
    /// The `Stripe-Version` to send; `None` uses the account's default version.
    pub api_version: Option<String>,
}

impl StripeConfig {
    /// Stripe at `api_url` with `secret_key`, pinned to [`DEFAULT_API_VERSION`].
    pub fn new(api_url: impl Into<String>, secret_key: impl Into<String>) -> Self {
        StripeConfig {
            api_url: api_url.into(),
            secret_key: secret_key.into(),
            api_version: Some(DEFAULT_API_VERSION.to_owned()),
        }
    }
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key moves money: never in logs.
        f.debug_struct("StripeConfig")
            .field("api_url", &self.api_url)
            .field("secret_key", &"<redacted>")
            .field("api_version", &self.api_version)
            .finish()
    }
}

/// A client of Stripe's API for wagate's per-line subscriptions.
///
/// Every method that `POST`s takes an idempotency key: Stripe stores the first answer for a
/// key and replays it to a retry with the same parameters, so a caller that derives the key
/// from its own request (e.g. wagate's `Idempotency-Key`, the line and the step) can retry
/// after any [`StripeError::is_retryable`] error without creating a second customer or
/// subscription. Keys are at most 255 characters.
#[derive(Clone)]
pub struct StripeClient {
    base: Url,
    auth: HeaderValue,
    version: Option<HeaderValue>,
    http: reqwest::Client,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base.as_str())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client for `config`.
    ///
    /// `http` should not use proxies (build it with [`StripeClient::http_client`]): a proxy
    /// taken from the environment would see the secret key, and would swallow calls to a local
    /// fake. Each call sets its own [`REQUEST_TIMEOUT`].
    pub fn new(config: StripeConfig, http: reqwest::Client) -> Result<Self, StripeConfigError> {
        let key = config.secret_key.trim();
        if key.is_empty() {
            return Err(StripeConfigError::SecretKey);
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| StripeConfigError::SecretKey)?;
        auth.set_sensitive(true);
        let version = match config.api_version.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(
                HeaderValue::from_str(v)
                    .map_err(|_| StripeConfigError::ApiVersion(v.to_owned()))?,
            ),
        };
        Ok(StripeClient {
            base: check_api_url(&config.api_url)?,
            auth,
            version,
            http,
        })
    }

    /// An HTTP client suited to Stripe: no proxies, [`REQUEST_TIMEOUT`], no redirects (Stripe
    /// does not redirect, and a redirect must not carry the key elsewhere).
    pub fn http_client() -> Result<reqwest::Client, StripeConfigError> {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StripeConfigError::Client(e.to_string()))
    }

    /// The API host this client calls.
    pub fn api_url(&self) -> &Url {
        &self.base
    }

    /// `POST /v1/customers`: a customer tagged `metadata[account_id]`.
    pub async fn create_customer(
        &self,
        customer: &NewCustomer,
        idempotency_key: &str,
    ) -> Result<Customer, StripeError> {
        self.post(&["customers"], customer.form(), idempotency_key)
            .await
    }

    /// `GET /v1/customers/{id}`.
    pub async fn retrieve_customer(&self, customer_id: &str) -> Result<Customer, StripeError> {
        self.get(&["customers", customer_id], Form::new()).await
    }

    /// `POST /v1/payment_methods/{id}/attach`: attaches a payment method to a customer.
    ///
    /// In test mode `payment_method` may be one of Stripe's test payment methods
    /// (`pm_card_visa`, `pm_card_chargeCustomerFail`, …); Stripe then creates a new payment
    /// method and answers with its `pm_…` ID, which is the one to use afterwards. A card that
    /// cannot be attached (`pm_card_visa_chargeDeclined`, …) answers
    /// [`StripeError::CardDeclined`].
    pub async fn attach_payment_method(
        &self,
        payment_method: &str,
        customer_id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentMethod, StripeError> {
        let form = vec![("customer".to_owned(), customer_id.to_owned())];
        self.post(
            &["payment_methods", payment_method, "attach"],
            form,
            idempotency_key,
        )
        .await
    }

    /// `POST /v1/customers/{id}` with `invoice_settings[default_payment_method]`: the card
    /// the customer's subscriptions are charged to.
    pub async fn set_default_payment_method(
        &self,
        customer_id: &str,
        payment_method_id: &str,
        idempotency_key: &str,
    ) -> Result<Customer, StripeError> {
        let form = vec![(
            "invoice_settings[default_payment_method]".to_owned(),
            payment_method_id.to_owned(),
        )];
        self.post(&["customers", customer_id], form, idempotency_key)
            .await
    }

    /// Attaches `payment_method` and makes it the customer's default, as Stripe documents
    /// for saving a card for subscriptions. The two calls use `{idempotency_key}:attach` and
    /// `{idempotency_key}:default`, so the pair can be retried as one.
    pub async fn attach_default_payment_method(
        &self,
        payment_method: &str,
        customer_id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentMethod, StripeError> {
        let attached = self
            .attach_payment_method(
                payment_method,
                customer_id,
                &format!("{idempotency_key}:attach"),
            )
            .await?;
        self.set_default_payment_method(
            customer_id,
            &attached.id,
            &format!("{idempotency_key}:default"),
        )
        .await?;
        Ok(attached)
    }

    /// `POST /v1/prices`: a recurring price with a new product (`product_data[name]`).
    pub async fn create_price(
        &self,
        price: &NewPrice,
        idempotency_key: &str,
    ) -> Result<Price, StripeError> {
        self.post(&["prices"], price.form(), idempotency_key).await
    }

    /// `GET /v1/prices?lookup_keys[]=…`: the active price with this lookup key, if any.
    pub async fn price_by_lookup_key(
        &self,
        lookup_key: &str,
    ) -> Result<Option<Price>, StripeError> {
        let query = vec![
            ("lookup_keys[]".to_owned(), lookup_key.to_owned()),
            ("active".to_owned(), "true".to_owned()),
            ("limit".to_owned(), "1".to_owned()),
        ];
        let list: WireList<Price> = self.get(&["prices"], query).await?;
        Ok(list.data.into_iter().next())
    }

    /// `POST /v1/subscriptions`: a one-item subscription tagged `metadata[line_id]`, with its
    /// latest invoice expanded (so its status is known).
    ///
    /// With [`PaymentBehavior::ErrorIfIncomplete`](crate::PaymentBehavior) a declined first
    /// payment is [`StripeError::CardDeclined`] and no subscription exists.
    pub async fn create_subscription(
        &self,
        subscription: &NewSubscription,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let mut form = subscription.form();
        form.push(("expand[]".to_owned(), "latest_invoice".to_owned()));
        self.post(&["subscriptions"], form, idempotency_key).await
    }

    /// `GET /v1/subscriptions/{id}`, with its latest invoice expanded.
    pub async fn retrieve_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Subscription, StripeError> {
        let query = vec![("expand[]".to_owned(), "latest_invoice".to_owned())];
        self.get(&["subscriptions", subscription_id], query).await
    }

    /// `DELETE /v1/subscriptions/{id}`: cancels at once (no proration, no final invoice).
    /// Stripe sends `customer.subscription.deleted`. Cancelling twice answers
    /// [`StripeError::InvalidRequest`].
    pub async fn cancel_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Subscription, StripeError> {
        // Stripe ignores idempotency keys on DELETE: cancelling is idempotent by nature.
        self.call(
            Method::DELETE,
            &["subscriptions", subscription_id],
            Form::new(),
            None,
        )
        .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &[&str], query: Form) -> Result<T, StripeError> {
        self.call(Method::GET, path, query, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &[&str],
        form: Form,
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        self.call(Method::POST, path, form, Some(idempotency_key))
            .await
    }

    /// `/v1/` and `segments` appended to the base, each percent-encoded (so an ID containing
    /// `/` cannot reach another path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        form: Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut url = self.url(path);
        let mut request_body = None;
        if method == Method::POST {
            request_body = Some(encode(&form));
        } else if !form.is_empty() {
            url.query_pairs_mut().extend_pairs(&form);
        }
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .timeout(REQUEST_TIMEOUT);
        if let Some(version) = &self.version {
            request = request.header("Stripe-Version", version.clone());
        }
        if let Some(key) = idempotency_key {
            let key = HeaderValue::from_str(key).map_err(|_| {
                StripeError::InvalidRequest(ApiError {
                    kind: "invalid_request_error".into(),
                    message: "the idempotency key cannot be sent in a header (not sent)".into(),
                    ..ApiError::default()
                })
            })?;
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = request_body {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body);
        }
        let shown_path = path.join("/");
        let response = request.send().await.map_err(|e| {
            tracing::warn!(%method, path = %shown_path, error = %e, "Stripe call failed in transport");
            StripeError::Network {
                message: transport_message(&e),
            }
        })?;
        let status = response.status();
        let retry_after = retry_after_secs(response.headers());
        let request_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| StripeError::Network {
            message: format!("reading Stripe's answer failed: {}", transport_message(&e)),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                StripeError::Api(ApiError {
                    http_status: status.as_u16(),
                    kind: "unreadable_response".into(),
                    message: format!(
                        "unreadable answer from Stripe ({e}): {}",
                        error::truncate(&String::from_utf8_lossy(&bytes), 200)
                    ),
                    request_id: request_id.clone(),
                    ..ApiError::default()
                })
            });
        }
        let error = error::classify(status.as_u16(), &bytes, retry_after, request_id);
        tracing::warn!(%method, path = %shown_path, error = %error, "Stripe call refused");
        Err(error)
    }
}

/// `application/x-www-form-urlencoded`, the encoding Stripe's v1 API takes.
fn encode(form: &Form) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// The transport error with its causes (reqwest keeps the root cause in `source`).
fn transport_message(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut text = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after_secs(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn check_api_url(raw: &str) -> Result<Url, StripeConfigError> {
    let bad = |reason| StripeConfigError::ApiUrl {
        url: raw.to_owned(),
        reason,
    };
    let url = Url::parse(raw).map_err(|_| bad("not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad("plain http is only allowed on loopback")),
        _ => return Err(bad("the scheme must be https")),
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> StripeClient {
        StripeClient::new(StripeConfig::new(base, "sk_test_x"), reqwest::Client::new()).unwrap()
    }

    #[test]
    fn paths_start_with_v1_and_encode_ids() {
        assert_eq!(
            client(DEFAULT_API_URL)
                .url(&["payment_methods", "pm_card_visa", "attach"])
                .as_str(),
            "https://api.stripe.com/v1/payment_methods/pm_card_visa/attach"
        );
        assert_eq!(
            client("http://127.0.0.1:9/")
                .url(&["subscriptions", "sub_1/../x"])
                .as_str(),
            "http://127.0.0.1:9/v1/subscriptions/sub_1%2F..%2Fx"
        );
    }

    #[test]
    fn configuration_is_checked() {
        let http = reqwest::Client::new;
        assert!(
            StripeClient::new(StripeConfig::new("http://api.stripe.com", "sk"), http()).is_err()
        );
        assert!(StripeClient::new(StripeConfig::new("nonsense", "sk"), http()).is_err());
        assert!(StripeClient::new(StripeConfig::new(DEFAULT_API_URL, " "), http()).is_err());
        assert!(StripeClient::new(StripeConfig::new(DEFAULT_API_URL, "sk\nx"), http()).is_err());
        assert!(StripeClient::new(StripeConfig::new("http://[::1]:1", "sk"), http()).is_ok());
        let shown = format!("{:?}", StripeConfig::new(DEFAULT_API_URL, "sk_live_secret"));
        assert!(!shown.contains("sk_live_secret"), "{shown}");
    }

    #[test]
    fn forms_are_encoded_as_stripe_reads_them() {
        let form = vec![
            ("metadata[account_id]".to_owned(), "acct 1&2".to_owned()),
            ("expand[]".to_owned(), "latest_invoice".to_owned()),
        ];
        assert_eq!(
            encode(&form),
            "metadata%5Baccount_id%5D=acct+1%262&expand%5B%5D=latest_invoice"
        );
    }

    #[tokio::test]
    async fn a_key_that_cannot_be_a_header_is_refused_before_sending() {
        let c = client("http://127.0.0.1:9");
        let e = c
            .create_customer(&NewCustomer::for_account("a"), "bad\nkey")
            .await
            .unwrap_err();
        assert!(matches!(e, StripeError::InvalidRequest(_)), "{e:?}");
    }

    #[tokio::test]
    async fn no_answer_is_a_network_error() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let e = client("http://127.0.0.1:9")
            .retrieve_subscription("sub_1")
            .await
            .unwrap_err();
        assert!(matches!(e, StripeError::Network { .. }), "{e:?}");
        assert!(e.is_retryable());
    }
}
