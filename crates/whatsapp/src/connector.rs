//! [`WhatsAppConnector`]: wagate's [`Connector`] on whatsapp-rust, one client per line.
//!
//! A client runs for each line this server serves and is linked (started by
//! [`Connector::adopt`], a reconnect or a send), and for each pending line someone is
//! looking at (started by [`Connector::qr`] or [`Connector::pair_code`], stopped after
//! [`Options::pairing_idle`] without a look). Each client's events go through the line's
//! [`LineMachine`] in arrival order; inbound messages go through the crate's durability
//! hook, so WhatsApp only hears them acknowledged once wagate has stored them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use wagate_app::connector::{ConnectorEvent, ConnectorSink, ConnectorState, QrCode};
use wagate_domain::clock::Clock;
use wagate_domain::ids::{LineId, MessageId};
use wagate_domain::line::MessageStatus;
use wagate_store::Store;
use whatsapp_rust::bot::{Bot, BotHandle, EventDelivery};
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::Client;

use crate::backend::{kind, LineBackend};
use crate::events::{LineMachine, Step};
use crate::inbound::InboundHook;
use crate::seal::{KeyError, SealKey};

mod api;
mod watch;

/// How long wagate keeps the WhatsApp id → message id map for receipts.
const MESSAGE_MAP_DAYS: i64 = 30;

/// Settings of a [`WhatsAppConnector`]; [`Options::default`] is production.
#[derive(Debug, Clone)]
pub struct Options {
    /// The WebSocket URL of WhatsApp's chat server; `None` is WhatsApp's own. Tests point it
    /// at a local server.
    pub url: Option<String>,
    /// The WhatsApp Web version to announce; `None` asks WhatsApp for the current one.
    pub version: Option<(u32, u32, u32)>,
    /// How long a client may try to connect before its line counts as unreachable (and a
    /// linked line is reported dropped).
    pub connect_grace: Duration,
    /// How long `qr()` waits for the first code of a new pairing.
    pub qr_wait: Duration,
    /// How long a reconnect attempt waits for the connection.
    pub reconnect_wait: Duration,
    /// A pending line's client stops after this long without a `qr()` or `pair_code()`.
    pub pairing_idle: Duration,
    /// How often the watchdog looks at every client.
    pub watch_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: None,
            version: None,
            connect_grace: Duration::from_secs(20),
            qr_wait: Duration::from_secs(8),
            reconnect_wait: Duration::from_secs(5),
            pairing_idle: Duration::from_secs(180),
            watch_every: Duration::from_secs(5),
        }
    }
}

/// wagate's connector on WhatsApp Web multi-device.
pub struct WhatsAppConnector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WhatsAppConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppConnector").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    store: Arc<dyn Store>,
    key: Arc<SealKey>,
    wall: Arc<dyn Clock>,
    options: Options,
    sink: OnceLock<Weak<dyn ConnectorSink>>,
    lines: Mutex<HashMap<LineId, Arc<LineConn>>>,
    /// Serialises starting and stopping clients, so one line never gets two.
    starting: tokio::sync::Mutex<()>,
    /// WhatsApp refused this client version (until a restart with a newer one).
    outdated: AtomicBool,
    /// Lines whose session another process took over (`StreamReplaced`): never reconnected
    /// here until ownership gives the line to this server again (`adopt`), so two processes
    /// never take the session from each other in turn.
    replaced: Mutex<std::collections::HashSet<LineId>>,
}

/// One line's running client.
pub(crate) struct LineConn {
    client: Arc<Client>,
    handle: Mutex<Option<BotHandle>>,
    pub(crate) backend: LineBackend,
    machine: Mutex<LineMachine>,
    /// The pairing this client serves (`None`: a linked line).
    link: Option<u32>,
    started: Timestamp,
    last_look: Mutex<Timestamp>,
    qr: Mutex<Option<QrCode>>,
    up: AtomicBool,
    changed: Notify,
    /// Numbers known to be on WhatsApp (or not).
    on_whatsapp: Mutex<HashMap<String, bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// WhatsApp's id for wagate's message: derived, so a retried send reuses it.
pub fn wa_message_id(message: &MessageId) -> String {
    let digest = Sha256::digest(message.as_str().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02X}")).collect();
    format!("3EB0{hex}")
}

fn plus(to: &str) -> Option<String> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.to_owned())
}

impl WhatsAppConnector {
    /// The connector over `store`, sealing sessions with `secret_key` (the base64 value of
    /// `WAGATE_SECRET_KEY`); `wall` is the wall clock (QR expiry, stamps, the watchdog).
    /// Refuses a malformed key, and a key other than the one this database's sessions were
    /// sealed with (see [`KeyError`]). Starts the watchdog task: call it inside the runtime.
    pub async fn open(
        store: Arc<dyn Store>,
        secret_key: &str,
        wall: Arc<dyn Clock>,
        options: Options,
    ) -> anyhow::Result<Self> {
        let key = SealKey::from_base64(secret_key)?;
        check_key(store.as_ref(), &key, wall.now()).await?;
        let inner = Arc::new(Inner {
            store,
            key: Arc::new(key),
            wall,
            options,
            sink: OnceLock::new(),
            lines: Mutex::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            outdated: AtomicBool::new(false),
            replaced: Mutex::new(std::collections::HashSet::new()),
        });
        tokio::spawn(watch::watch(Arc::downgrade(&inner)));
        Ok(WhatsAppConnector { inner })
    }

    /// Whether WhatsApp can be reached, and why not (as [`Connector::health`]).
    pub fn reachable(&self) -> (bool, Option<String>) {
        let h = wagate_app::connector::Connector::health(self);
        (h.state == ConnectorState::Ok, h.detail)
    }

    /// The lines with a running client here.
    pub fn running_lines(&self) -> Vec<LineId> {
        lock(&self.inner.lines).keys().cloned().collect()
    }

    /// Applies one event of `line`'s client as if the client had emitted it: what the
    /// client's event handler does (public so tests and tools can drive the mapping with the
    /// crate's own event values). Ignored when the line has no running client.
    pub async fn handle_event(&self, line: &LineId, event: &Event) {
        self.inner.on_event(line, event).await;
    }

    /// Stores a batch of decrypted inbound messages of `line` as the client's durability hook
    /// does before it acks them (public so tests can drive it with the crate's own values).
    pub async fn handle_inbound(
        &self,
        line: &LineId,
        batch: &[whatsapp_rust::types::durability_hook::InboundMessage],
    ) -> anyhow::Result<()> {
        crate::inbound::receive(&self.inner, line, batch).await
    }

    /// Stops every client without logging out (a server shutting down).
    pub async fn shutdown(&self) {
        let lines = self.running_lines();
        for line in lines {
            self.inner.stop(&line).await;
        }
    }
}

/// Checks `key` against the check value stored with the sessions (recording it on first use).
pub async fn check_key(store: &dyn Store, key: &SealKey, now: Timestamp) -> Result<(), KeyError> {
    let stored = store
        .wa_key_check(&key.check_value(), now)
        .await
        .map_err(|e| KeyError::Malformed(format!("cannot read the key check value: {e}")))?;
    key.verify_check(&stored)
}

impl Inner {
    fn conn(&self, line: &LineId) -> Option<Arc<LineConn>> {
        lock(&self.lines).get(line).cloned()
    }

    fn backend(&self, line: &LineId) -> LineBackend {
        LineBackend::new(
            self.store.clone(),
            self.key.clone(),
            self.wall.clone(),
            line.clone(),
        )
    }

    /// Whether another process took `line`'s session over (see `replaced`).
    pub(crate) fn was_replaced(&self, line: &LineId) -> bool {
        lock(&self.replaced).contains(line)
    }

    /// This server was given `line` (again): a replacement seen before no longer holds.
    pub(crate) fn given(&self, line: &LineId) {
        lock(&self.replaced).remove(line);
    }

    pub(crate) fn backend_of(&self, line: &LineId) -> LineBackend {
        self.backend(line)
    }

    /// Applies an event and says whether it is stored (the inbound hook acks on `Ok` only).
    pub(crate) async fn deliver_durably(&self, event: ConnectorEvent) -> anyhow::Result<()> {
        let sink = self
            .sink
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| anyhow::anyhow!("no sink attached"))?;
        sink.deliver(event).await
    }

    async fn deliver(&self, event: ConnectorEvent) {
        let Some(sink) = self.sink.get().and_then(Weak::upgrade) else {
            tracing::error!(?event, "WhatsApp event with no sink attached");
            return;
        };
        if let Err(e) = sink.deliver(event.clone()).await {
            tracing::error!(?event, error = %e, "could not apply a WhatsApp event");
        }
    }

    /// Starts `line`'s client (for pairing number `link`, or linked with `None`) unless one
    /// runs; returns the running one.
    async fn start(
        self: &Arc<Self>,
        line: &LineId,
        link: Option<u32>,
    ) -> anyhow::Result<Arc<LineConn>> {
        let _guard = self.starting.lock().await;
        if let Some(conn) = self.conn(line) {
            if conn.link == link {
                return Ok(conn);
            }
            // Another pairing (or a pairing of a line that was linked): start afresh.
            self.stop_locked(line).await;
            self.backend(line).forget().await?;
        }
        let backend = self.backend(line);
        if link.is_some() && backend.linked_phone().await?.is_some() {
            // wagate asks for a new pairing: whatever session was left is dead.
            backend.forget().await?;
        }
        let mut transport = TokioWebSocketTransportFactory::new();
        if let Some(url) = &self.options.url {
            transport = transport.with_url(url.clone()).without_origin();
        }
        let weak = Arc::downgrade(self);
        let handler_line = line.clone();
        let mut builder = Bot::builder()
            .with_backend(backend.clone())
            .with_transport_factory(transport)
            .with_event_delivery(EventDelivery::Ordered { capacity: 4096 })
            .with_inbound_durability_hook(InboundHook::new(weak.clone(), line.clone()))
            .skip_history_sync()
            .on_event(move |event: Arc<Event>, _client| {
                let weak = weak.clone();
                let line = handler_line.clone();
                async move {
                    if let Some(inner) = weak.upgrade() {
                        inner.on_event(&line, &event).await;
                    }
                }
            });
        if let Some(version) = self.options.version {
            builder = builder.with_version(version);
        }
        let bot = builder.build().await?;
        let client = bot.client();
        let now = self.wall.now();
        let conn = Arc::new(LineConn {
            client,
            handle: Mutex::new(None),
            backend,
            machine: Mutex::new(LineMachine::new(link.is_none())),
            link,
            started: now,
            last_look: Mutex::new(now),
            qr: Mutex::new(None),
            up: AtomicBool::new(false),
            changed: Notify::new(),
            on_whatsapp: Mutex::new(HashMap::new()),
        });
        lock(&self.lines).insert(line.clone(), conn.clone());
        *lock(&conn.handle) = Some(bot.spawn());
        tracing::info!(line = %line, pairing = link.is_some(), "WhatsApp client started");
        Ok(conn)
    }

    /// Starts a linked line's client if its session is linked; `None` when it is not.
    async fn start_linked(
        self: &Arc<Self>,
        line: &LineId,
    ) -> anyhow::Result<Option<Arc<LineConn>>> {
        if let Some(conn) = self.conn(line) {
            if conn.link.is_none() || lock(&conn.machine).linked {
                return Ok(Some(conn));
            }
        }
        if self.backend(line).linked_phone().await?.is_none() {
            return Ok(None);
        }
        self.start(line, None).await.map(Some)
    }

    async fn stop(&self, line: &LineId) {
        let _guard = self.starting.lock().await;
        self.stop_locked(line).await;
    }

    async fn stop_locked(&self, line: &LineId) {
        let Some(conn) = lock(&self.lines).remove(line) else {
            return;
        };
        let handle = lock(&conn.handle).take();
        if let Some(handle) = handle {
            let abort = tokio::time::timeout(Duration::from_secs(10), async {
                conn.client.disconnect().await;
            })
            .await
            .is_err();
            if abort {
                handle.abort();
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
            }
        }
        conn.changed.notify_waiters();
        tracing::info!(line = %line, "WhatsApp client stopped");
    }

    async fn on_event(self: &Arc<Self>, line: &LineId, event: &Event) {
        let Some(conn) = self.conn(line) else {
            return;
        };
        let steps = lock(&conn.machine).step(line, event);
        for step in steps {
            self.apply(line, &conn, step).await;
        }
    }

    async fn apply(self: &Arc<Self>, line: &LineId, conn: &Arc<LineConn>, step: Step) {
        match step {
            Step::Emit(event) => self.deliver(event).await,
            Step::Qr { code, timeout } => {
                let ttl =
                    SignedDuration::try_from(timeout).unwrap_or(SignedDuration::from_secs(20));
                let expires_at = self
                    .wall
                    .now()
                    .saturating_add(ttl)
                    .unwrap_or(self.wall.now());
                *lock(&conn.qr) = Some(QrCode {
                    payload: code,
                    expires_at,
                });
                conn.changed.notify_waiters();
            }
            Step::Receipts { ids, status } => {
                for id in ids {
                    self.report_status(line, conn, &id, status, None).await;
                }
            }
            Step::Refused { id, error } => {
                self.report_status(line, conn, &id, MessageStatus::Failed, Some(error))
                    .await;
            }
            Step::Up => {
                conn.up.store(true, Ordering::SeqCst);
                *lock(&conn.qr) = None;
                conn.changed.notify_waiters();
                let cutoff = self.wall.now().as_second() - MESSAGE_MAP_DAYS * 86_400;
                if let Err(e) = self
                    .store
                    .wa_delete_before(line, kind::MESSAGE_MAP, cutoff)
                    .await
                {
                    tracing::warn!(line = %line, error = %e, "could not sweep old message ids");
                }
            }
            Step::Down => conn.up.store(false, Ordering::SeqCst),
            Step::Outdated => {
                tracing::error!("WhatsApp refuses this client version: upgrade wagate");
                self.outdated.store(true, Ordering::SeqCst);
            }
            Step::Replaced => {
                lock(&self.replaced).insert(line.clone());
            }
            Step::Stop { forget } => {
                // Not from inside the client's own event task: stopping waits for it.
                let inner = self.clone();
                let line = line.clone();
                tokio::spawn(async move {
                    inner.stop(&line).await;
                    if forget {
                        if let Err(e) = inner.backend(&line).forget().await {
                            tracing::error!(line = %line, error = %e, "could not forget the session");
                        }
                    }
                });
            }
        }
    }

    async fn report_status(
        &self,
        line: &LineId,
        conn: &LineConn,
        wa_id: &str,
        status: MessageStatus,
        error: Option<String>,
    ) {
        let message = match conn.backend.message_for(wa_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(line = %line, error = %e, "cannot read the message id map");
                None
            }
        };
        if let Some(message) = message {
            self.deliver(ConnectorEvent::MessageStatus {
                line: line.clone(),
                message,
                status,
                error,
            })
            .await;
        }
    }

    /// A pending line's client for pairing `link`, started if needed, with its look recorded.
    async fn pairing(self: &Arc<Self>, line: &LineId, link: u32) -> anyhow::Result<Arc<LineConn>> {
        let conn = match self.conn(line) {
            Some(conn) if conn.link == Some(link) => conn,
            _ => self.start(line, Some(link)).await?,
        };
        *lock(&conn.last_look) = self.wall.now();
        Ok(conn)
    }

    /// Waits until `ready` holds for `conn`, or `wait` ran out.
    async fn wait_for(
        &self,
        conn: &LineConn,
        wait: Duration,
        ready: impl Fn(&LineConn) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = conn.changed.notified();
            if ready(conn) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return ready(conn);
            }
        }
    }

    /// Waits (at most `reconnect_wait`) for `conn` to be connected; whether it is.
    pub(crate) async fn wait_up(&self, conn: &LineConn) -> bool {
        self.wait_for(conn, self.options.reconnect_wait, |c| {
            c.up.load(Ordering::SeqCst)
        })
        .await
    }

    fn fresh_qr(&self, conn: &LineConn) -> Option<QrCode> {
        let now = self.wall.now();
        lock(&conn.qr).clone().filter(|qr| qr.expires_at > now)
    }

    fn unreachable(&self) -> Option<String> {
        if self.outdated.load(Ordering::SeqCst) {
            return Some(
                "WhatsApp refuses this client version: upgrade wagate (whatsapp-rust 0.7)".into(),
            );
        }
        let now = self.wall.now();
        let grace = SignedDuration::try_from(self.options.connect_grace).unwrap_or_default();
        let lines = lock(&self.lines);
        let stuck = lines
            .values()
            .filter(|c| {
                !c.up.load(Ordering::SeqCst)
                    && lock(&c.qr).is_none()
                    && lock(&c.machine).blocked.is_none()
                    && now.duration_since(c.started) > grace
            })
            .count();
        (stuck > 0 && stuck * 2 >= lines.len()).then(|| {
            format!(
                "WhatsApp could not be reached: {stuck} of {} connections are retrying",
                lines.len()
            )
        })
    }
}
