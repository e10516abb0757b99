//! The subcommands.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use wagate_app::App;
use wagate_domain::account::KeyMode;
use wagate_domain::clock::ManualClock;
use wagate_store::{AccountStore, SqlStore, Store};

use crate::config::{CommonArgs, Config, ServeExtras, StoreLocation};

/// wagate: WhatsApp lines with exact billing.
#[derive(Debug, Parser)]
#[command(name = "wagate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (and the job worker).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Manage invoices for days (partner billing).
    #[command(subcommand)]
    Invoices(InvoicesCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Price WhatsApp Business Platform traffic exactly as Meta charges it (JSON Lines in,
    /// one priced line per outbound message out).
    Rate(wagate_pricing::cli::RateArgs),
}

/// The commands that need the async runtime.
enum Async {
    Serve(ServeArgs),
    Migrate(CommonArgs),
    Accounts(AccountsCommand),
    Invoices(InvoicesCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Sandbox only: where the test clock starts on a fresh store (RFC 3339).
    #[arg(long, env = "WAGATE_CLOCK_START")]
    clock_start: Option<String>,
    /// Do not run the job worker in this process (API-only node).
    #[arg(long, env = "WAGATE_NO_WORKER")]
    no_worker: bool,
    /// Log format: text or json.
    #[arg(long, env = "WAGATE_LOG_FORMAT")]
    log_format: Option<String>,
    /// Most API requests handled at once; more are refused with 503 `server_busy`.
    #[arg(long, env = "WAGATE_MAX_CONCURRENT_REQUESTS")]
    max_concurrent_requests: Option<usize>,
    /// Seconds a request may take to answer before 503 `request_timeout` (the work goes on).
    #[arg(long, env = "WAGATE_REQUEST_TIMEOUT")]
    request_timeout: Option<u64>,
    /// The public base URL of every `connect_url` (e.g. https://wa.example.com); default: the
    /// listen address.
    #[arg(long, env = "WAGATE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Production only: `whatsapp-web` (default; needs WAGATE_SECRET_KEY) or `none` (lines
    /// cannot be created).
    #[arg(long, env = "WAGATE_CONNECTOR")]
    connector: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Create an account and print its API key (shown once).
    Create(CreateAccountArgs),
    /// Change how an account is billed.
    Update(UpdateAccountArgs),
}

/// How an account is billed, as the operator sets it.
#[derive(Debug, Args)]
struct BillingArgs {
    /// `flat` (monthly plans from the wallet, the default) or `days` (partner billing: a
    /// balance of days bought by invoice).
    #[arg(long, value_parser = ["flat", "days"])]
    billing: Option<String>,
    /// The account's price of one day, e.g. `0.50` (needed with `--billing days`).
    #[arg(long)]
    day_price: Option<String>,
    /// Days billing only: the balance may go below zero, and the month's use is invoiced.
    #[arg(long, conflicts_with = "prepaid")]
    postpaid: bool,
    /// Days billing only: back to buying days ahead (the default; `update` keeps the
    /// account's current choice unless `--postpaid` or `--prepaid` is given).
    #[arg(long)]
    prepaid: bool,
}

#[derive(Debug, Args)]
struct UpdateAccountArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The account (`acct_…`).
    account: String,
    #[command(flatten)]
    billing: BillingArgs,
}

#[derive(Debug, Subcommand)]
enum InvoicesCommand {
    /// Record that an invoice was paid (a bank transfer): its days are credited once.
    MarkPaid(MarkPaidArgs),
}

#[derive(Debug, Args)]
struct MarkPaidArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The invoice (`inv_…`).
    invoice: String,
}

#[derive(Debug, Args)]
struct CreateAccountArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The business's name.
    #[arg(long)]
    name: String,
    /// Turn on the calling rollout for this account.
    #[arg(long)]
    calling: bool,
    #[command(flatten)]
    billing: BillingArgs,
    /// Print `{"account_id", "api_key"}` as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let command = match cli.command {
        // The pricing engine is synchronous and streams: no runtime, no store.
        Command::Rate(args) => return wagate_pricing::cli::run(args),
        Command::Serve(a) => Async::Serve(a),
        Command::Migrate(c) => Async::Migrate(c),
        Command::Accounts(a) => Async::Accounts(a),
        Command::Invoices(i) => Async::Invoices(i),
        Command::Openapi => {
            // A reader that stops early (`| head`) is not an error.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            return match out
                .write_all(wagate_http::openapi::json().as_bytes())
                .and_then(|()| out.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Async::Serve(a) => {
                let extras = ServeExtras {
                    clock_start: a.clock_start,
                    no_worker: a.no_worker,
                    log_format: a.log_format,
                    max_concurrent_requests: a.max_concurrent_requests,
                    request_timeout_secs: a.request_timeout,
                    public_url: a.public_url,
                    connector: a.connector,
                };
                let config = Config::resolve(&a.common, &extras)?;
                crate::serve::serve(config).await
            }
            Async::Migrate(common) => {
                let config = Config::resolve(&common, &ServeExtras::default())?;
                let store = open_store(&config).await?;
                println!("migrations applied ({})", store.redacted_url());
                Ok(())
            }
            Async::Accounts(AccountsCommand::Create(a)) => create_account(a).await,
            Async::Accounts(AccountsCommand::Update(a)) => update_account(a).await,
            Async::Invoices(InvoicesCommand::MarkPaid(a)) => mark_paid(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the configured store (running migrations).
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    let store = match &config.store {
        StoreLocation::SqliteDir(dir) => SqlStore::open_sqlite_dir(dir).await,
        StoreLocation::Url(url) => SqlStore::open(url, Default::default()).await,
    };
    store.context("cannot open the store")
}

/// The application an operator command acts through, on the configured existing store.
async fn operator_app(common: &CommonArgs) -> anyhow::Result<App> {
    let config = Config::resolve(common, &ServeExtras::default())?;
    if let StoreLocation::SqliteDir(dir) = &config.store {
        // A mistyped --data-dir must not silently start a second, empty store.
        if !dir.join("wagate.db").exists() {
            anyhow::bail!(
                "there is no wagate store in {}: start `wagate serve` there first, run `wagate migrate --data-dir {}` to create an empty one, or pass the right --data-dir",
                dir.display(),
                dir.display()
            );
        }
    }
    let store = open_store(&config).await?;
    // The store knows whether it is a sandbox; `--sandbox` only matters for a fresh store.
    let mode = match store.store_mode().await? {
        Some(mode) => mode,
        None if config.sandbox => KeyMode::Test,
        None => KeyMode::Live,
    };
    store.claim_store_mode(mode).await?;
    let store: Arc<dyn Store> = Arc::new(store);
    Ok(match mode {
        // Operator commands connect nothing: no connector, no server key needed.
        KeyMode::Live => App::production(
            store,
            crate::serve::production_outside(
                &config,
                Arc::new(wagate_app::connector::Unavailable),
            )?,
        )?,
        KeyMode::Test => {
            let now = store
                .load_sandbox_clock()
                .await?
                .unwrap_or_else(crate::serve::wall_now);
            App::sandbox(store, Arc::new(ManualClock::new(now)))?
        }
    })
}

/// Applies `--billing/--day-price/--postpaid` to an account (nothing when no flag is given).
async fn apply_billing(
    app: &App,
    account: &wagate_domain::ids::AccountId,
    b: &BillingArgs,
) -> anyhow::Result<Option<wagate_store::DayAccountRecord>> {
    use wagate_domain::billing::days::BillingMode;
    let existing = app.store.day_account(account).await?;
    let mode = match b.billing.as_deref() {
        None if b.day_price.is_none() && !b.postpaid && !b.prepaid => return Ok(None),
        None | Some("days") => BillingMode::Days,
        Some(_) => BillingMode::Flat,
    };
    let day_price = match &b.day_price {
        Some(p) => wagate_domain::money::Micros::parse(p)
            .map_err(|e| anyhow::anyhow!("--day-price {p}: {e}"))?,
        None if mode == BillingMode::Days => match &existing {
            Some(d) if d.day_price.0 > 0 => d.day_price,
            _ => anyhow::bail!("--billing days needs --day-price (e.g. --day-price 0.50)"),
        },
        None => existing
            .as_ref()
            .map_or(wagate_domain::money::Micros(0), |d| d.day_price),
    };
    let postpaid = match (b.postpaid, b.prepaid) {
        (true, _) => true,
        (_, true) => false,
        _ => existing.as_ref().is_some_and(|d| d.postpaid),
    };
    let set = app
        .days
        .set_mode(account, mode, day_price, postpaid)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(set))
}

async fn create_account(a: CreateAccountArgs) -> anyhow::Result<()> {
    let app = operator_app(&a.common).await?;
    let created = wagate_app::accounts::create_account(&app, &a.name, a.calling)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    apply_billing(&app, &created.account.id, &a.billing).await?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"account_id": created.account.id, "api_key": created.api_key})
        );
    } else {
        println!("account: {}", created.account.id);
        println!("api key: {}", created.api_key);
        println!("(the key is shown only once; store it now)");
    }
    Ok(())
}

async fn update_account(a: UpdateAccountArgs) -> anyhow::Result<()> {
    let app = operator_app(&a.common).await?;
    let account = wagate_domain::ids::AccountId::parse(&a.account)
        .map_err(|_| anyhow::anyhow!("{} is not an account id (acct_…)", a.account))?;
    match apply_billing(&app, &account, &a.billing).await? {
        Some(d) => println!(
            "{}",
            serde_json::json!({
                "account_id": account,
                "billing": d.mode.as_str(),
                "day_price": d.day_price.to_string(),
                "postpaid": d.postpaid,
                "balance_days": d.balance_days,
            })
        ),
        None => anyhow::bail!("nothing to change: give --billing, --day-price or --postpaid"),
    }
    Ok(())
}

async fn mark_paid(a: MarkPaidArgs) -> anyhow::Result<()> {
    let app = operator_app(&a.common).await?;
    let id = wagate_domain::ids::InvoiceId::parse(&a.invoice)
        .map_err(|_| anyhow::anyhow!("{} is not an invoice id (inv_…)", a.invoice))?;
    let done = app
        .days
        .mark_paid(&id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}",
        serde_json::json!({
            "invoice": wagate_app::billing::days::invoice_json(&done.invoice, &app.lines.public_url()),
            "credited_now": done.newly,
            "balance_days": done.balance_days,
        })
    );
    Ok(())
}
