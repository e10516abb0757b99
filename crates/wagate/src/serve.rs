//! `wagate serve`: open the store, assemble the app, start the worker and the HTTP server,
//! and drain both on SIGTERM or Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use jiff::Timestamp;
use wagate_app::scheduler::WorkerOptions;
use wagate_app::App;
use wagate_domain::account::KeyMode;
use wagate_domain::clock::{Clock, ManualClock, SystemClock};
use wagate_store::{AccountStore, Backend, JobStore, Store};

use crate::config::Config;

/// Wall-clock now, whole seconds: where a fresh sandbox clock starts without `--clock-start`.
pub fn wall_now() -> Timestamp {
    let now = SystemClock.now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WAGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    // Colour codes only for a terminal: a log file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the server until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config.log_format);
    let sql = crate::cli::open_store(&config).await?;
    let mode = if config.sandbox {
        KeyMode::Test
    } else {
        KeyMode::Live
    };
    sql.claim_store_mode(mode).await?;
    if sql.backend() == Backend::Sqlite {
        // One process owns an SQLite store: leases left by a crashed run are void.
        sql.release_all_leases().await?;
    }
    tracing::info!(store = %sql.redacted_url(), sandbox = config.sandbox, "store open");
    let store: Arc<dyn Store> = Arc::new(sql.clone());

    let mut whatsapp: Option<Arc<wagate_whatsapp::WhatsAppConnector>> = None;
    let app = if config.sandbox {
        let start = match store.load_sandbox_clock().await? {
            Some(saved) => {
                if let Some(asked) = config.clock_start.filter(|asked| *asked != saved) {
                    // The clock of an existing sandbox only moves forward, by advances.
                    tracing::warn!(%asked, clock = %saved, "--clock-start ignored: this sandbox store already has a clock");
                    eprintln!("note: --clock-start {asked} ignored: this sandbox store's clock is at {saved} (use a fresh --data-dir to start over)");
                }
                saved
            }
            None => config.clock_start.unwrap_or_else(wall_now),
        };
        store.save_sandbox_clock(start).await?;
        let mut outside = wagate_app::Outside {
            cloud: Some(cloud_config(&config)?),
            stripe: stripe_setup(&config)?,
            ..wagate_app::Outside::sandbox()
        };
        // A configured real provider replaces the simulated ones (how its adapter is tried
        // against a local fake on the sandbox clock).
        if config.numbers_handler_api.is_some() {
            outside.numbers = number_providers(&config)?;
        }
        App::sandbox_with(store.clone(), Arc::new(ManualClock::new(start)), outside)?
    } else {
        let connector = open_connector(&config, store.clone()).await?;
        if let Some(wa) = &connector.1 {
            whatsapp = Some(wa.clone());
        }
        App::production(store.clone(), production_outside(&config, connector.0)?)?
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    *app.lines
        .config()
        .public_url
        .write()
        .unwrap_or_else(|p| p.into_inner()) = public;

    let mut out = std::io::stdout().lock();
    if config.sandbox {
        let demo = wagate_app::accounts::sandbox_demo_account(&app)
            .await
            .map_err(|e| anyhow::anyhow!("cannot prepare the demo account: {e}"))?;
        writeln!(out, "sandbox clock: {}", app.clock.now())?;
        writeln!(out, "sandbox demo account: {}", demo.account.id)?;
        writeln!(out, "sandbox demo api key: {}", demo.api_key)?;
    }
    writeln!(out, "wagate listening on http://{addr}")?;
    out.flush()?;
    drop(out);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = config.worker.then(|| {
        let scheduler = app.scheduler.clone();
        let rx = stop_rx.clone();
        on_jobs_runtime(async move { scheduler.run_forever(WorkerOptions::default(), rx).await })
    });
    // A server without a worker runs no line jobs, so it serves no lines (and pairs none).
    app.pairing.set_serves_lines(config.worker);
    let pairing = config.worker.then(|| {
        let rx = stop_rx.clone();
        tokio::spawn(app.pairing.clone().run_forever(rx))
    });
    let ownership = config.worker.then(|| {
        let rx = stop_rx.clone();
        let ownership = app.ownership.clone();
        (ownership.clone(), tokio::spawn(ownership.run_forever(rx)))
    });

    let limits = wagate_http::guard::RequestLimits::new(
        config.max_concurrent_requests,
        config.request_timeout,
    );
    let wall = app.wall.clone();
    let state = wagate_http::AppState::new(app)
        .with_limits(limits)
        .with_stopping(stop_rx.clone());
    let in_flight = state.limits.clone();
    let router = wagate_http::router(state);
    let sweeper = config.worker.then(|| {
        tokio::spawn(sweep_idempotency_keys(
            store.clone(),
            wall.clone(),
            stop_rx.clone(),
        ))
    });
    let mut http_stop = stop_rx.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = http_stop.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining requests and jobs");
        let _ = stop_tx.send(true);
    });
    server.await.context("server error")?;
    // Requests whose clients left run on in their own tasks: let them finish their writes.
    if !in_flight.drain(std::time::Duration::from_secs(30)).await {
        tracing::warn!(
            running = in_flight.in_flight(),
            "requests still running 30 s after the listener closed; stopping anyway"
        );
    }
    if let Some(w) = worker {
        let _ = w.await;
    }
    if let Some(p) = pairing {
        let _ = p.await;
    }
    if let Some((ownership, beat)) = ownership {
        let _ = beat.await;
        ownership.shutdown().await;
    }
    if let Some(wa) = whatsapp {
        // Pairing clients of lines nobody owns yet, too: closed without logging out.
        wa.shutdown().await;
    }
    if let Some(s) = sweeper {
        let _ = s.await;
    }
    sql.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Threads of the job worker's runtime.
const JOB_THREADS: usize = 2;

/// Runs the job worker on a runtime of its own, whose threads the API's do not share; the
/// receiver hears when it has stopped.
///
/// On one runtime a request waited behind whatever jobs its worker thread had queued: the
/// sandbox sends each message and applies its two receipts as jobs, 9,000 a second at 3,000
/// messages a second, and the requests' latency rose from 2 to 15 ms (bench_lines) with CPU
/// to spare. On threads of their own the API's tasks are scheduled by the kernel beside the
/// jobs', not queued behind them. If the runtime cannot be made, the worker runs on the
/// API's, as before.
fn on_jobs_runtime(
    worker: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, stopped) = tokio::sync::oneshot::channel();
    // The worker says it has stopped itself, wherever it runs; if it is dropped unrun (no
    // runtime could be made), the receiver hears that too.
    let worker = async move {
        worker.await;
        let _ = done.send(());
    };
    // Handed over only once the thread runs, so that a thread that cannot start leaves the
    // worker here to run on the API's runtime.
    let (hand_over, handed) = std::sync::mpsc::channel();
    // The runtime is made and dropped on a plain thread (a runtime cannot be dropped inside
    // another's task).
    let started = std::thread::Builder::new()
        .name("wagate-jobs-main".into())
        .spawn(move || {
            let Ok(worker) = handed.recv() else { return };
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(JOB_THREADS)
                .thread_name("wagate-jobs")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(worker),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the job worker's runtime: no jobs run")
                }
            }
        });
    match started {
        Ok(_) => {
            // The thread waits for it: a send cannot fail while the thread runs.
            let _ = hand_over.send(worker);
        }
        Err(e) => {
            tracing::warn!(error = %e, "no thread of its own for the job worker; it shares the API's");
            tokio::spawn(worker);
        }
    }
    stopped
}

/// How often the worker forgets idempotency keys past their 24 h window.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes idempotency keys older than their window, every [`SWEEP_EVERY`] until `stop`:
/// a key's stored answer is never needed after it, and the table would otherwise only grow.
async fn sweep_idempotency_keys(
    store: Arc<dyn Store>,
    wall: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let expire_before = wall.now() - wagate_http::idempotency::RETENTION;
        match store.idempotency_sweep(expire_before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys = n, "forgot idempotency keys past their 24 h window"),
            Err(e) => tracing::warn!(error = %e, "could not sweep idempotency keys"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The production outside world: Square when configured (otherwise a processor that refuses
/// every charge), and no WhatsApp connector yet (see docs/connector.md).
/// The production connector `config` asks for: the WhatsApp Web connector (also returned
/// as itself, for shutdown) or none.
pub async fn open_connector(
    config: &Config,
    store: Arc<dyn Store>,
) -> anyhow::Result<(
    Arc<dyn wagate_app::connector::Connector>,
    Option<Arc<wagate_whatsapp::WhatsAppConnector>>,
)> {
    match &config.connector {
        crate::config::ConnectorChoice::None => {
            tracing::warn!("--connector none: lines cannot be created (503 connector_unavailable)");
            Ok((Arc::new(wagate_app::connector::Unavailable), None))
        }
        crate::config::ConnectorChoice::WhatsAppWeb { secret_key } => {
            let env = wagate_whatsapp::seal::SECRET_KEY_ENV;
            let Some(key) = secret_key else {
                anyhow::bail!(
                    "{env} is not set: a production server seals WhatsApp sessions with it. \
                     Generate one with `head -c 32 /dev/urandom | base64` and keep it (sessions \
                     sealed with it open with no other key), or run with `--connector none` to \
                     serve without WhatsApp"
                );
            };
            let wall: Arc<dyn Clock> = Arc::new(wagate_domain::clock::SystemClock);
            let wa = wagate_whatsapp::WhatsAppConnector::open(
                store,
                key,
                wall,
                wagate_whatsapp::Options::default(),
            )
            .await
            .with_context(|| format!("cannot start the WhatsApp connector with this {env}"))?;
            let wa = Arc::new(wa);
            tracing::info!("WhatsApp Web connector ready");
            Ok((wa.clone(), Some(wa)))
        }
    }
}

/// The outside world of a production server around `connector`.
pub fn production_outside(
    config: &Config,
    connector: Arc<dyn wagate_app::connector::Connector>,
) -> anyhow::Result<wagate_app::Outside> {
    let processor: Arc<dyn wagate_payments::PaymentProcessor> = match &config.square {
        Some(sq) => Arc::new(
            wagate_payments::SquareProcessor::new(wagate_payments::SquareConfig::new(
                sq.base_url.clone(),
                sq.access_token.clone(),
                sq.location_id.clone(),
            ))
            .map_err(|e| anyhow::anyhow!("invalid Square settings: {e}"))?,
        ),
        None => {
            tracing::warn!(
                "no Square settings: card payments are refused (payments_not_configured)"
            );
            Arc::new(wagate_app::billing::NotConfigured)
        }
    };
    Ok(wagate_app::Outside {
        connector,
        processor,
        lines: wagate_app::lines::LinesConfig::default(),
        cloud: Some(cloud_config(config)?),
        stripe: stripe_setup(config)?,
        numbers: number_providers(config)?,
    })
}

/// The configured virtual number providers (none: numbers are not sold).
pub fn number_providers(
    config: &Config,
) -> anyhow::Result<Vec<Arc<dyn wagate_app::numbers::provider::NumberProvider>>> {
    let Some(h) = &config.numbers_handler_api else {
        return Ok(Vec::new());
    };
    let provider = wagate_app::numbers::handler_api::HandlerApiProvider::new(
        "handler_api",
        &h.url,
        &h.key.0,
        h.usd_per_unit,
    )
    .map_err(|e| anyhow::anyhow!("invalid numbers_handler_api_url {:?}: {e}", h.url))?;
    Ok(vec![Arc::new(provider)])
}

/// Stripe for per-line subscriptions, when its secret key and webhook secret are set.
pub fn stripe_setup(
    config: &Config,
) -> anyhow::Result<Option<wagate_app::billing::subscriptions::StripeSetup>> {
    let Some(s) = &config.stripe else {
        return Ok(None);
    };
    let client = wagate_stripe::StripeClient::new(
        wagate_stripe::StripeConfig::new(s.api_url.clone(), s.secret_key.0.clone()),
        wagate_stripe::StripeClient::http_client().map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .map_err(|e| anyhow::anyhow!("invalid stripe_api_url {:?}: {e}", s.api_url))?;
    Ok(Some(wagate_app::billing::subscriptions::StripeSetup {
        client,
        webhook_secret: s.webhook_secret.0.clone(),
        year_months: s.year_months,
    }))
}

/// The sandbox's server key when none is given: Cloud API tokens in a sandbox are test
/// credentials for a fake or Meta's test numbers, sealed all the same (never stored in clear).
const SANDBOX_SEAL_KEY: [u8; 32] = *b"wagate sandbox: not a secret key";

/// Meta's Cloud API as `config` describes it: tokens are sealed with the server key (a
/// production server without one refuses cloud lines: 503 `cloud_not_configured`).
pub fn cloud_config(config: &Config) -> anyhow::Result<wagate_app::cloud::CloudConfig> {
    use wagate_meta::graph::GraphClient;
    let graph = GraphClient::new(&config.meta.graph_url, GraphClient::http_client()?)
        .map_err(|e| anyhow::anyhow!("invalid meta_graph_url {:?}: {e}", config.meta.graph_url))?;
    let sealer: Option<Arc<dyn wagate_app::cloud::TokenSealer>> = match &config.secret_key {
        Some(key) => Some(Arc::new(
            wagate_whatsapp::seal::SealKey::from_base64(&key.0)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
        None if config.sandbox => Some(Arc::new(wagate_whatsapp::seal::SealKey::from_bytes(
            &SANDBOX_SEAL_KEY,
        ))),
        None => None,
    };
    let pricing = if config.meta.rate_cards.is_empty() && config.meta.tiers.is_empty() {
        None
    } else {
        Some(
            wagate_pricing::cli::load_data(&config.meta.rate_cards, &config.meta.tiers).map_err(
                |e| anyhow::anyhow!("Meta pricing data (meta_rate_cards, meta_tiers): {e}"),
            )?,
        )
    };
    Ok(wagate_app::cloud::CloudConfig {
        graph,
        app_secret: config.meta.app_secret.clone(),
        verify_token: config.meta.verify_token.clone(),
        sealer,
        pricing,
    })
}
