//! How to reach Square, checked once at startup.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Url;

/// Square's production API.
pub const SQUARE_PRODUCTION_URL: &str = "https://connect.squareup.com";
/// Square's sandbox API (use sandbox credentials and test nonces).
pub const SQUARE_SANDBOX_URL: &str = "https://connect.squareupsandbox.com";
/// The `Square-Version` this client was written against (a released version date).
pub const DEFAULT_SQUARE_VERSION: &str = "2026-01-22";
/// How long one request to Square may take before its outcome counts as unknown.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach Square. `Debug` never shows the access token.
#[derive(Clone)]
pub struct SquareConfig {
    /// [`SQUARE_PRODUCTION_URL`] or [`SQUARE_SANDBOX_URL`] (plain `http` only for loopback).
    pub base_url: String,
    /// The seller's access token (sent as `Authorization: Bearer …`, never logged).
    pub access_token: String,
    /// The Square location that receives the payments.
    pub location_id: String,
    /// The `Square-Version` header, a release date such as [`DEFAULT_SQUARE_VERSION`].
    pub square_version: String,
    /// The timeout of each request; past it the outcome is [`PaymentError::Unknown`].
    pub timeout: Duration,
}

impl SquareConfig {
    /// A configuration with the default version and timeout.
    pub fn new(
        base_url: impl Into<String>,
        access_token: impl Into<String>,
        location_id: impl Into<String>,
    ) -> Self {
        SquareConfig {
            base_url: base_url.into(),
            access_token: access_token.into(),
            location_id: location_id.into(),
            square_version: DEFAULT_SQUARE_VERSION.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for SquareConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SquareConfig")
            .field("base_url", &self.base_url)
            .field("access_token", &"<redacted>")
            .field("location_id", &self.location_id)
            .field("square_version", &self.square_version)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a [`SquareConfig`] cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SquareConfigError {
    /// The base URL is not an `https` URL (or `http` on loopback).
    #[error("invalid Square base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A required setting is empty or cannot be sent as an HTTP header.
    #[error("invalid Square setting {0}: empty or not a valid header value")]
    Setting(&'static str),
    /// The timeout is zero.
    #[error("the Square timeout must be greater than zero")]
    Timeout,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client for Square: {0}")]
    Client(String),
}

impl SquareConfig {
    /// Checks every setting; returns the parsed base URL.
    pub(super) fn validate(&self) -> Result<Url, SquareConfigError> {
        let base_url = check_base_url(&self.base_url)?;
        if !header_ok(&self.access_token) {
            return Err(SquareConfigError::Setting("access_token"));
        }
        if !header_ok(&self.square_version) {
            return Err(SquareConfigError::Setting("square_version"));
        }
        if self.location_id.trim().is_empty() {
            return Err(SquareConfigError::Setting("location_id"));
        }
        if self.timeout.is_zero() {
            return Err(SquareConfigError::Timeout);
        }
        Ok(base_url)
    }
}

fn header_ok(value: &str) -> bool {
    !value.trim().is_empty() && HeaderValue::from_str(value).is_ok()
}

fn check_base_url(raw: &str) -> Result<Url, SquareConfigError> {
    let bad = |reason| SquareConfigError::BaseUrl {
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
    Ok(url)
}
