//! A local fake of a handler_api provider: the same protocol from an in-memory price list,
//! stock and balance. A test sets offers with [`FakeHandlerApi::set_offer`], delivers a code
//! with [`FakeHandlerApi::deliver_code`], and reads what was asked of it.
//!
//! What it does as the protocol does: `getPrices`, `getNumber` (takes one from stock and the
//! cost from the balance; `NO_NUMBERS`, `NO_BALANCE`), `getStatus`, `setStatus` 1/3/6/8
//! (a cancel before a code puts the number back in stock and refunds the cost), `BAD_KEY`,
//! `BAD_ACTION`, `NO_ACTIVATION`. What it does not: operators, `getFullSms`, rentals.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::handler_api::SetStatus;

/// The key the fake accepts unless told another.
pub const FAKE_API_KEY: &str = "fake-handler-api-key";

/// One activation as the fake keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeActivation {
    /// The activation id.
    pub id: String,
    /// The number, digits only.
    pub number: String,
    /// Provider service code.
    pub service: String,
    /// Provider country number.
    pub country: String,
    /// The code, once delivered.
    pub code: Option<String>,
    /// The last `setStatus` received.
    pub last_set: Option<u8>,
    /// Canceled (by `setStatus=8`).
    pub canceled: bool,
}

#[derive(Debug, Default)]
struct State0 {
    key: String,
    /// `(country, service)` → `(cost, count)`.
    offers: BTreeMap<(String, String), (f64, u64)>,
    balance: f64,
    next_id: u64,
    activations: HashMap<String, FakeActivation>,
    /// Every action asked, in order.
    actions: Vec<String>,
}

/// A running fake provider. Dropping it does not stop the server (it lives as long as the
/// test's runtime).
#[derive(Clone)]
pub struct FakeHandlerApi {
    /// Its base URL (`http://127.0.0.1:port`).
    pub url: String,
    state: Arc<Mutex<State0>>,
}

impl std::fmt::Debug for FakeHandlerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHandlerApi")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl FakeHandlerApi {
    /// Starts the fake on a free local port with [`FAKE_API_KEY`] and a balance of 100.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State0 {
            key: FAKE_API_KEY.to_owned(),
            balance: 100.0,
            next_id: 100_000,
            ..State0::default()
        }));
        let app = Router::new()
            .route("/stubs/handler_api.php", get(handle).post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeHandlerApi {
            url: format!("http://{addr}"),
            state,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State0> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the offer for a service in a country (provider codes).
    pub fn set_offer(&self, country: &str, service: &str, cost: f64, count: u64) {
        self.lock()
            .offers
            .insert((country.to_owned(), service.to_owned()), (cost, count));
    }

    /// Sets our balance at the provider.
    pub fn set_balance(&self, balance: f64) {
        self.lock().balance = balance;
    }

    /// Our balance at the provider.
    pub fn balance(&self) -> f64 {
        self.lock().balance
    }

    /// The code arrives for the activation of `number` (digits only, or with a `+`);
    /// `false` if the fake sold no such number.
    pub fn deliver_code(&self, number: &str, code: &str) -> bool {
        let digits = number.trim_start_matches('+');
        let mut s = self.lock();
        match s.activations.values_mut().find(|a| a.number == digits) {
            Some(a) => {
                a.code = Some(code.to_owned());
                true
            }
            None => false,
        }
    }

    /// The activations sold, in no particular order.
    pub fn activations(&self) -> Vec<FakeActivation> {
        self.lock().activations.values().cloned().collect()
    }

    /// The actions asked so far, in order (`getNumber`, `setStatus:8`, …).
    pub fn actions(&self) -> Vec<String> {
        self.lock().actions.clone()
    }
}

async fn handle(
    State(state): State<Arc<Mutex<State0>>>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    if q.get("api_key") != Some(&s.key) {
        return "BAD_KEY".into();
    }
    let action = q.get("action").cloned().unwrap_or_default();
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    match action.as_str() {
        "getPrices" => {
            s.actions.push("getPrices".into());
            let (service, country) = (param("service"), param("country"));
            let mut out = serde_json::Map::new();
            for ((c, sv), (cost, count)) in &s.offers {
                if (country.is_empty() || *c == country) && (service.is_empty() || *sv == service) {
                    let entry = out.entry(c.clone()).or_insert_with(|| json!({}));
                    entry[sv.as_str()] = json!({ "cost": cost, "count": count });
                }
            }
            serde_json::Value::Object(out).to_string()
        }
        "getNumber" => {
            s.actions.push("getNumber".into());
            let (service, country) = (param("service"), param("country"));
            let Some((cost, count)) = s.offers.get(&(country.clone(), service.clone())).copied()
            else {
                return "BAD_SERVICE".into();
            };
            if count == 0 {
                return "NO_NUMBERS".into();
            }
            if s.balance < cost {
                return "NO_BALANCE".into();
            }
            s.balance -= cost;
            s.offers
                .insert((country.clone(), service.clone()), (cost, count - 1));
            s.next_id += 1;
            let id = s.next_id.to_string();
            // A number of the country's range that no other activation holds.
            let number = format!("4477009{:05}", s.next_id % 100_000);
            s.activations.insert(
                id.clone(),
                FakeActivation {
                    id: id.clone(),
                    number: number.clone(),
                    service,
                    country,
                    code: None,
                    last_set: None,
                    canceled: false,
                },
            );
            format!("ACCESS_NUMBER:{id}:{number}")
        }
        "getStatus" => {
            s.actions.push("getStatus".into());
            match s.activations.get(&param("id")) {
                None => "NO_ACTIVATION".into(),
                Some(a) if a.canceled => "STATUS_CANCEL".into(),
                Some(a) => match &a.code {
                    Some(code) => format!("STATUS_OK:{code}"),
                    None => "STATUS_WAIT_CODE".into(),
                },
            }
        }
        "setStatus" => {
            let Some(status) = param("status").parse().ok().and_then(SetStatus::from_code) else {
                return "BAD_STATUS".into();
            };
            s.actions.push(format!("setStatus:{}", status.code()));
            let id = param("id");
            let Some(a) = s.activations.get(&id).cloned() else {
                return "NO_ACTIVATION".into();
            };
            if status == SetStatus::Cancel {
                if a.code.is_some() {
                    // A provider keeps the money of an activation whose code was given.
                    return "BAD_STATUS".into();
                }
                if !a.canceled {
                    if let Some((cost, count)) = s
                        .offers
                        .get(&(a.country.clone(), a.service.clone()))
                        .copied()
                    {
                        s.balance += cost;
                        s.offers
                            .insert((a.country.clone(), a.service.clone()), (cost, count + 1));
                    }
                }
            }
            if let Some(a) = s.activations.get_mut(&id) {
                a.last_set = Some(status.code());
                a.canceled |= status == SetStatus::Cancel;
            }
            status.answer().into()
        }
        _ => "BAD_ACTION".into(),
    }
}
