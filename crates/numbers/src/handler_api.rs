//! A client of the handler_api protocol: one `GET` per action, plain-text answers.

use std::time::Duration;

use serde_json::Value;

/// How long one request may take before it counts as the provider not answering (the router
/// then fails over to the next provider).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a handler_api request did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerApiError {
    /// `NO_NUMBERS`: nothing in stock for that service and country.
    #[error("the provider has no numbers in stock")]
    NoNumbers,
    /// `NO_BALANCE`: our own balance at the provider is too low.
    #[error("our balance at the provider is too low")]
    NoBalance,
    /// `BAD_KEY`: the API key was refused.
    #[error("the provider refused the API key")]
    BadKey,
    /// `NO_ACTIVATION`: the provider does not know the activation id.
    #[error("the provider does not know this activation")]
    NoActivation,
    /// Another error word the protocol defines (`BAD_ACTION`, `BAD_SERVICE`, `BAD_STATUS`,
    /// `ERROR_SQL`, `BANNED:…`).
    #[error("the provider answered {0}")]
    Refused(String),
    /// An answer that is not the protocol's.
    #[error("unexpected answer from the provider: {0}")]
    Unexpected(String),
    /// The provider could not be reached, failed (5xx) or did not answer in time.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// One row of `getPrices`: a service in a country.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    /// The provider's country number.
    pub country: String,
    /// The provider's service code.
    pub service: String,
    /// The price of one activation, in the provider's currency.
    pub cost: f64,
    /// Numbers in stock.
    pub count: u64,
}

/// A number bought (`ACCESS_NUMBER:id:number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The provider's activation id.
    pub id: String,
    /// The number, digits only as the protocol gives it (no `+`).
    pub number: String,
}

/// Where an activation is (`getStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationStatus {
    /// `STATUS_WAIT_CODE`: no SMS yet.
    WaitCode,
    /// `STATUS_WAIT_RETRY:<code>`: a code arrived; another was asked for.
    WaitRetry(String),
    /// `STATUS_WAIT_RESEND`: waiting for the SMS to be sent again.
    WaitResend,
    /// `STATUS_CANCEL`: the activation was canceled.
    Canceled,
    /// `STATUS_OK:<code>`: the code.
    Ok(String),
}

/// What `setStatus` tells the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetStatus {
    /// `1`: the SMS was sent to the number (start waiting).
    Ready,
    /// `3`: ask for another code on the same number.
    RetryGet,
    /// `6`: the activation is done.
    Complete,
    /// `8`: cancel the activation (the provider refunds us).
    Cancel,
}

impl SetStatus {
    /// The protocol's number.
    pub fn code(self) -> u8 {
        match self {
            SetStatus::Ready => 1,
            SetStatus::RetryGet => 3,
            SetStatus::Complete => 6,
            SetStatus::Cancel => 8,
        }
    }

    /// The status with the protocol's number `n`.
    pub fn from_code(n: u8) -> Option<Self> {
        match n {
            1 => Some(SetStatus::Ready),
            3 => Some(SetStatus::RetryGet),
            6 => Some(SetStatus::Complete),
            8 => Some(SetStatus::Cancel),
            _ => None,
        }
    }

    /// The answer the protocol gives to it.
    pub fn answer(self) -> &'static str {
        match self {
            SetStatus::Ready => "ACCESS_READY",
            SetStatus::RetryGet => "ACCESS_RETRY_GET",
            SetStatus::Complete => "ACCESS_ACTIVATION",
            SetStatus::Cancel => "ACCESS_CANCEL",
        }
    }
}

/// A handler_api provider at `base` (its `/stubs/handler_api.php` is under it), with our key.
#[derive(Clone)]
pub struct HandlerApiClient {
    endpoint: url::Url,
    api_key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for HandlerApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never in logs.
        f.debug_struct("HandlerApiClient")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl HandlerApiClient {
    /// A client of the provider at `base` (`https://provider.example`); refuses a base that
    /// is not an http(s) URL.
    pub fn new(base: &str, api_key: &str) -> Result<Self, String> {
        let mut endpoint = url::Url::parse(base).map_err(|e| e.to_string())?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err("the base URL must be http or https".into());
        }
        let path = format!(
            "{}/stubs/handler_api.php",
            endpoint.path().trim_end_matches('/')
        );
        endpoint.set_path(&path);
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HandlerApiClient {
            endpoint,
            api_key: api_key.to_owned(),
            http,
        })
    }

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, HandlerApiError> {
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api_key", &self.api_key);
            q.append_pair("action", action);
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        let resp = self.http.get(url).send().await.map_err(|e| {
            HandlerApiError::Unavailable(if e.is_timeout() {
                "no answer in time".to_owned()
            } else {
                // Without the URL: it carries the key.
                e.without_url().to_string()
            })
        })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| HandlerApiError::Unavailable(e.without_url().to_string()))?;
        if status.is_server_error() {
            return Err(HandlerApiError::Unavailable(format!("HTTP {status}")));
        }
        let body = body.trim().to_owned();
        match error_word(&body) {
            Some(e) => Err(e),
            None => Ok(body),
        }
    }

    /// `getPrices` for one service in one country (provider codes): the rows it lists.
    pub async fn get_prices(
        &self,
        service: &str,
        country: &str,
    ) -> Result<Vec<PriceRow>, HandlerApiError> {
        let body = self
            .call("getPrices", &[("service", service), ("country", country)])
            .await?;
        parse_prices(&body)
    }

    /// `getNumber`: buys a number for `service` in `country`.
    pub async fn get_number(
        &self,
        service: &str,
        country: &str,
    ) -> Result<Activation, HandlerApiError> {
        let body = self
            .call("getNumber", &[("service", service), ("country", country)])
            .await?;
        parse_access_number(&body)
    }

    /// `getStatus` of an activation.
    pub async fn get_status(&self, id: &str) -> Result<ActivationStatus, HandlerApiError> {
        let body = self.call("getStatus", &[("id", id)]).await?;
        parse_status(&body)
    }

    /// `setStatus` of an activation.
    pub async fn set_status(&self, id: &str, status: SetStatus) -> Result<(), HandlerApiError> {
        let code = status.code().to_string();
        let body = self
            .call("setStatus", &[("id", id), ("status", &code)])
            .await?;
        if body.starts_with("ACCESS_") {
            Ok(())
        } else {
            Err(HandlerApiError::Unexpected(body))
        }
    }
}

/// The error an answer names, if it is one of the protocol's error words.
fn error_word(body: &str) -> Option<HandlerApiError> {
    let word = body.split(':').next().unwrap_or("");
    Some(match word {
        "NO_NUMBERS" => HandlerApiError::NoNumbers,
        "NO_BALANCE" => HandlerApiError::NoBalance,
        "BAD_KEY" => HandlerApiError::BadKey,
        "NO_ACTIVATION" => HandlerApiError::NoActivation,
        "BAD_ACTION" | "BAD_SERVICE" | "BAD_STATUS" | "ERROR_SQL" | "BANNED" | "WRONG_SERVICE"
        | "NO_KEY" | "NO_ACTION" => HandlerApiError::Refused(body.to_owned()),
        _ => return None,
    })
}

/// `ACCESS_NUMBER:<id>:<number>`.
pub fn parse_access_number(body: &str) -> Result<Activation, HandlerApiError> {
    let mut parts = body.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ACCESS_NUMBER"), Some(id), Some(number))
            if !id.is_empty()
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(Activation {
                id: id.to_owned(),
                number: number.to_owned(),
            })
        }
        _ => Err(HandlerApiError::Unexpected(body.to_owned())),
    }
}

/// A `getStatus` answer.
pub fn parse_status(body: &str) -> Result<ActivationStatus, HandlerApiError> {
    let (word, rest) = match body.split_once(':') {
        Some((w, r)) => (w, Some(r)),
        None => (body, None),
    };
    match (word, rest) {
        ("STATUS_WAIT_CODE", None) => Ok(ActivationStatus::WaitCode),
        ("STATUS_WAIT_RESEND", None) => Ok(ActivationStatus::WaitResend),
        ("STATUS_CANCEL", None) => Ok(ActivationStatus::Canceled),
        ("STATUS_WAIT_RETRY", Some(code)) => Ok(ActivationStatus::WaitRetry(code.to_owned())),
        ("STATUS_OK", Some(code)) if !code.is_empty() => Ok(ActivationStatus::Ok(code.to_owned())),
        _ => Err(HandlerApiError::Unexpected(body.to_owned())),
    }
}

/// A `getPrices` answer: `{"<country>": {"<service>": {"cost": …, "count": …}}}`. Costs and
/// counts come as numbers or as numeric strings, depending on the provider.
pub fn parse_prices(body: &str) -> Result<Vec<PriceRow>, HandlerApiError> {
    let v: Value =
        serde_json::from_str(body).map_err(|_| HandlerApiError::Unexpected(body.to_owned()))?;
    let bad = || HandlerApiError::Unexpected(body.to_owned());
    let mut rows = Vec::new();
    for (country, services) in v.as_object().ok_or_else(bad)? {
        for (service, offer) in services.as_object().ok_or_else(bad)? {
            let num = |k: &str| -> Option<f64> {
                match &offer[k] {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
            };
            let (Some(cost), Some(count)) = (num("cost"), num("count")) else {
                return Err(bad());
            };
            if !cost.is_finite() || cost < 0.0 || !count.is_finite() || count < 0.0 {
                return Err(bad());
            }
            rows.push(PriceRow {
                country: country.clone(),
                service: service.clone(),
                cost,
                count: count as u64,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_their_meaning() {
        assert_eq!(
            parse_access_number("ACCESS_NUMBER:123456:447700900123"),
            Ok(Activation {
                id: "123456".into(),
                number: "447700900123".into()
            })
        );
        assert!(parse_access_number("ACCESS_NUMBER:1").is_err());
        assert_eq!(
            parse_status("STATUS_WAIT_CODE"),
            Ok(ActivationStatus::WaitCode)
        );
        assert_eq!(
            parse_status("STATUS_OK:482913"),
            Ok(ActivationStatus::Ok("482913".into()))
        );
        assert_eq!(
            parse_status("STATUS_WAIT_RETRY:11"),
            Ok(ActivationStatus::WaitRetry("11".into()))
        );
        assert_eq!(
            parse_status("STATUS_CANCEL"),
            Ok(ActivationStatus::Canceled)
        );
        assert!(parse_status("STATUS_OK:").is_err());
        assert_eq!(error_word("NO_NUMBERS"), Some(HandlerApiError::NoNumbers));
        assert_eq!(error_word("NO_BALANCE"), Some(HandlerApiError::NoBalance));
        assert_eq!(error_word("BAD_KEY"), Some(HandlerApiError::BadKey));
        assert!(matches!(
            error_word("BANNED:2026-01-01"),
            Some(HandlerApiError::Refused(_))
        ));
        assert_eq!(error_word("STATUS_OK:1"), None);
    }

    #[test]
    fn prices_take_numbers_or_numeric_strings() {
        let rows = parse_prices(
            r#"{"16": {"wa": {"cost": 0.5, "count": 12}, "tg": {"cost": "1.25", "count": "0"}}}"#,
        )
        .expect("valid");
        assert_eq!(rows.len(), 2);
        let wa = rows.iter().find(|r| r.service == "wa").expect("wa");
        assert_eq!((wa.country.as_str(), wa.cost, wa.count), ("16", 0.5, 12));
        let tg = rows.iter().find(|r| r.service == "tg").expect("tg");
        assert_eq!((tg.cost, tg.count), (1.25, 0));
        assert!(parse_prices("[]").is_err());
        assert!(parse_prices(r#"{"16": {"wa": {"cost": -1, "count": 1}}}"#).is_err());
    }

    #[test]
    fn set_status_codes_round_trip() {
        for s in [
            SetStatus::Ready,
            SetStatus::RetryGet,
            SetStatus::Complete,
            SetStatus::Cancel,
        ] {
            assert_eq!(SetStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(SetStatus::from_code(2), None);
    }
}
