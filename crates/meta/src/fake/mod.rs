//! A local fake of Meta for tests and offline use: [`FakeGraph`] answers the Graph API calls
//! wagate makes, and its [`Driver`] posts Meta-shaped, signed webhooks to wagate.
//!
//! The fake checks requests the way Meta does and answers in Meta's shapes: a missing or
//! wrong bearer token, an unknown phone number ID, a malformed message, a text outside the
//! customer service window, an unknown template, a rate limit. It learns each user's window
//! from the inbound messages its driver delivers, so a test reads like a conversation.

mod driver;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use rand::Rng;

pub use driver::{Driver, DriverError, Posted, StatusEvent};

/// The Graph API version the fake serves (its base URL ends in `/v23.0`).
pub const FAKE_VERSION: &str = "v23.0";

/// A message the fake accepted, in the order accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The business number it was sent from.
    pub phone_number_id: String,
    /// The recipient as given in `to`.
    pub to: String,
    /// `text` or `template`.
    pub kind: String,
    /// The text's body.
    pub body: Option<String>,
    /// The template's name.
    pub template: Option<String>,
    /// The template's language code.
    pub language: Option<String>,
    /// The template's category, as given to [`FakeGraph::add_template`].
    pub category: Option<String>,
    /// The message ID the fake answered with.
    pub wamid: String,
    /// The `biz_opaque_callback_data` it was sent with (echoed on its status webhooks).
    pub callback_data: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) display_phone_number: String,
    pub(crate) verified_name: String,
    pub(crate) waba_id: String,
    pub(crate) token: String,
}

/// An injected failure: the next requests answer this error.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) code: i64,
    pub(crate) message: String,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) numbers: HashMap<String, Number>,
    /// (name, language) → category.
    pub(crate) templates: HashMap<(String, String), String>,
    /// (phone number ID, user's digits) → when the user last wrote.
    pub(crate) last_inbound: HashMap<(String, String), Timestamp>,
    pub(crate) now: Option<Timestamp>,
    pub(crate) rate_limited: Option<(usize, u64)>,
    pub(crate) failures: Option<(usize, Failure)>,
    pub(crate) sent: Vec<SentMessage>,
}

impl State {
    /// Meta's clock: the one set with [`FakeGraph::set_now`], else the real time.
    // The fake stands for Meta, whose clock is the real one unless a test pins it.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panic in one handler must not wedge the fake for the rest of a test.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Meta's Graph API, faked on a local port. Stops when dropped.
pub struct FakeGraph {
    addr: SocketAddr,
    state: Shared,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl FakeGraph {
    /// Starts the fake on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<FakeGraph> {
        FakeGraph::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the fake on `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeGraph> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(crate::REQUEST_TIMEOUT)
            .build()
            .map_err(std::io::Error::other)?;
        let state = Shared::default();
        let app = routes::router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the fake Graph API stopped");
            }
        });
        Ok(FakeGraph {
            addr,
            state,
            http,
            server,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give [`GraphClient::new`](crate::GraphClient::new), with the version:
    /// `http://127.0.0.1:PORT/v23.0`.
    pub fn base_url(&self) -> String {
        format!("http://{}/{FAKE_VERSION}", self.addr)
    }

    /// Registers a business number, reachable with `token`, in WhatsApp Business Account
    /// `waba_id`. Its quality rating is `GREEN`.
    pub fn add_number(
        &self,
        phone_number_id: &str,
        display_phone_number: &str,
        verified_name: &str,
        waba_id: &str,
        token: &str,
    ) {
        lock(&self.state).numbers.insert(
            phone_number_id.to_owned(),
            Number {
                display_phone_number: display_phone_number.to_owned(),
                verified_name: verified_name.to_owned(),
                waba_id: waba_id.to_owned(),
                token: token.to_owned(),
            },
        );
    }

    /// Registers an approved template. Sending any other (name, language) answers 132001.
    pub fn add_template(&self, name: &str, language: &str, category: &str) {
        lock(&self.state)
            .templates
            .insert((name.to_owned(), language.to_owned()), category.to_owned());
    }

    /// Sets Meta's clock, used for the customer service window (default: the real time).
    pub fn set_now(&self, now: Timestamp) {
        lock(&self.state).now = Some(now);
    }

    /// Makes the next `n` sends fail with 130429 ("Rate limit hit"), HTTP 429 and
    /// `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: usize, retry_after_secs: u64) {
        lock(&self.state).rate_limited = (n > 0).then_some((n, retry_after_secs));
    }

    /// Makes the next `n` requests of any kind answer HTTP `status` with Meta's error `code`
    /// and `message` (e.g. 500 / 131000 / "Something went wrong"), as during an outage.
    pub fn fail_next(&self, n: usize, status: u16, code: i64, message: &str) {
        let failure = Failure {
            status,
            code,
            message: message.to_owned(),
        };
        lock(&self.state).failures = (n > 0).then_some((n, failure));
    }

    /// Every message accepted so far, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        lock(&self.state).sent.clone()
    }

    /// A driver that posts webhooks to `target_url`, signed with `app_secret` like Meta.
    pub fn webhooks(&self, target_url: &str, app_secret: &str) -> Driver {
        Driver::new(
            self.state.clone(),
            self.http.clone(),
            target_url,
            app_secret,
        )
    }
}

impl std::fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraph")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A Meta-looking ID of `len` random characters from `alphabet`.
pub(crate) fn random_id(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// The digits of a phone number, the way Meta normalises `to` into `wa_id`.
pub(crate) fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}
