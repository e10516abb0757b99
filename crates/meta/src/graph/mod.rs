//! The Graph API client for a cloud line: look a number up, send messages.

mod error;
mod types;

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

pub use error::{GraphError, MetaError, DEFAULT_RETRY_AFTER_SECS};
pub use types::{Outbound, PhoneNumber, Sent};

/// Meta's Graph API with the version this crate was written against (v23.0, the version of
/// Meta's published OpenAPI description of the WhatsApp Business Platform).
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com/v23.0";

/// How long one Graph API call may take; past it the call is [`GraphError::Unavailable`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The fields `GET /{phone-number-id}` asks for.
const PHONE_NUMBER_FIELDS: &str = "display_phone_number,verified_name,quality_rating";

/// Why a [`GraphClient`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphConfigError {
    /// The base URL is not an `https` URL (or `http` on loopback, for the fake).
    #[error("invalid Graph API base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for Meta: {0}")]
    Client(String),
}

/// A client of Meta's Graph API for WhatsApp Cloud API lines.
///
/// One client serves every line: the access token is passed per call, as each line (WABA)
/// has its own. The token is sent as `Authorization: Bearer …` and never logged.
#[derive(Debug, Clone)]
pub struct GraphClient {
    base: Url,
    http: reqwest::Client,
}

impl GraphClient {
    /// A client for `base_url`, which includes the API version (e.g. [`DEFAULT_GRAPH_URL`],
    /// or a fake's `http://127.0.0.1:PORT/v23.0`).
    ///
    /// `http` should not use proxies (build it with [`GraphClient::http_client`], or call
    /// `.no_proxy()` on your builder): a proxy taken from the environment would see every
    /// line's access token, and would swallow calls to a local fake. Each call sets its own
    /// [`REQUEST_TIMEOUT`] whatever `http`'s timeout is.
    pub fn new(base_url: &str, http: reqwest::Client) -> Result<Self, GraphConfigError> {
        Ok(GraphClient {
            base: check_base_url(base_url)?,
            http,
        })
    }

    /// An HTTP client suited to Meta: no proxies, [`REQUEST_TIMEOUT`], no redirects (the
    /// Graph API does not redirect, and a redirect must not carry the token elsewhere).
    pub fn http_client() -> Result<reqwest::Client, GraphConfigError> {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphConfigError::Client(e.to_string()))
    }

    /// The base URL, with its version.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET /{phone-number-id}?fields=display_phone_number,verified_name,quality_rating`:
    /// checks that `token` can use the number and returns how Meta describes it.
    pub async fn phone_number(
        &self,
        phone_number_id: &str,
        token: &str,
    ) -> Result<PhoneNumber, GraphError> {
        let mut url = self.url(&[phone_number_id]);
        url.query_pairs_mut()
            .append_pair("fields", PHONE_NUMBER_FIELDS);
        self.call(Method::GET, url, token, None).await
    }

    /// `POST /{phone-number-id}/messages`: sends `message` from the number.
    ///
    /// On [`GraphError::Unavailable`] the message may or may not have been sent (a timeout
    /// after Meta accepted it looks the same as one before).
    pub async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        message: &Outbound,
    ) -> Result<Sent, GraphError> {
        self.send_tagged(phone_number_id, token, message, None)
            .await
    }

    /// [`GraphClient::send`] with `biz_opaque_callback_data`: Meta echoes it on every status
    /// webhook of the message, so the sender finds the message by its own id even if it never
    /// learnt Meta's (a crash between Meta's answer and recording it).
    pub async fn send_tagged(
        &self,
        phone_number_id: &str,
        token: &str,
        message: &Outbound,
        callback_data: Option<&str>,
    ) -> Result<Sent, GraphError> {
        let url = self.url(&[phone_number_id, "messages"]);
        let body = serde_json::to_value(message.wire(callback_data)).map_err(|e| {
            GraphError::Unavailable {
                status: None,
                code: None,
                message: format!("cannot encode the message: {e}"),
            }
        })?;
        let answer: types::WireSent = self.call(Method::POST, url, token, Some(body)).await?;
        answer.into_sent().ok_or_else(|| GraphError::Unavailable {
            status: Some(200),
            code: None,
            message: "Meta accepted the message but returned no message ID".to_owned(),
        })
    }

    /// The base URL with `segments` appended, each percent-encoded (so an ID containing `/`
    /// cannot reach another path).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, GraphError> {
        if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err()
            || token.trim().is_empty()
        {
            return Err(GraphError::InvalidCredentials(MetaError {
                http_status: 0,
                code: 190,
                subcode: None,
                kind: "OAuthException".to_owned(),
                message: "the access token is empty or cannot be sent in a header (not sent)"
                    .to_owned(),
                details: None,
                fbtrace_id: None,
            }));
        }
        let path = url.path().to_owned();
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(token)
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            tracing::warn!(%method, %path, error = %e, "Graph API call failed in transport");
            GraphError::Unavailable {
                status: None,
                code: None,
                message: transport_message(&e),
            }
        })?;
        let status = response.status();
        let retry_after = retry_after_secs(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GraphError::Unavailable {
                status: Some(status.as_u16()),
                code: None,
                message: format!("reading Meta's answer failed: {}", transport_message(&e)),
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| GraphError::Unavailable {
                status: Some(status.as_u16()),
                code: None,
                message: format!("unreadable answer from Meta: {e}"),
            });
        }
        let error = error::classify(status.as_u16(), &bytes, retry_after);
        tracing::warn!(%method, %path, error = %error, "Graph API call refused");
        Err(error)
    }
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

/// `Retry-After` in seconds (the HTTP-date form is not used by Meta and is ignored).
fn retry_after_secs(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn check_base_url(raw: &str) -> Result<Url, GraphConfigError> {
    let bad = |reason| GraphConfigError::BaseUrl {
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

    fn client(base: &str) -> GraphClient {
        GraphClient::new(base, reqwest::Client::new()).unwrap()
    }

    #[test]
    fn paths_keep_the_version_and_encode_ids() {
        let c = client(DEFAULT_GRAPH_URL);
        assert_eq!(
            c.url(&["106540352242922", "messages"]).as_str(),
            "https://graph.facebook.com/v23.0/106540352242922/messages"
        );
        let c = client("http://127.0.0.1:9090/v23.0/");
        assert_eq!(
            c.url(&["1/../2"]).as_str(),
            "http://127.0.0.1:9090/v23.0/1%2F..%2F2"
        );
    }

    #[test]
    fn base_urls_must_be_https_except_on_loopback() {
        assert!(
            GraphClient::new("http://graph.facebook.com/v23.0", reqwest::Client::new()).is_err()
        );
        assert!(GraphClient::new("ftp://x/v1", reqwest::Client::new()).is_err());
        assert!(GraphClient::new("nonsense", reqwest::Client::new()).is_err());
        assert!(GraphClient::new("http://localhost:1/v23.0", reqwest::Client::new()).is_ok());
        assert!(GraphClient::new("http://[::1]:1/v23.0", reqwest::Client::new()).is_ok());
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_secs(&h), None);
        h.insert(RETRY_AFTER, "17".parse().unwrap());
        assert_eq!(retry_after_secs(&h), Some(17));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after_secs(&h), None);
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_a_header_is_refused_before_sending() {
        // Port 9 (discard) on loopback: the call must fail before any connection.
        let c = client("http://127.0.0.1:9/v23.0");
        let e = c.phone_number("1", "bad\ntoken").await.unwrap_err();
        assert!(matches!(e, GraphError::InvalidCredentials(_)), "{e:?}");
        let e = c.phone_number("1", "").await.unwrap_err();
        assert!(matches!(e, GraphError::InvalidCredentials(_)), "{e:?}");
    }
}
