//! Configuration: flags, then `WAGATE_*` environment variables, then an optional TOML file,
//! then defaults — validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

/// Flags shared by `serve`, `migrate` and `accounts`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "WAGATE_LISTEN")]
    pub listen: Option<String>,
    /// Directory of the embedded SQLite store.
    #[arg(long, env = "WAGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded store.
    #[arg(long, env = "WAGATE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// A TOML file with any of these settings (`listen`, `data_dir`, `database_url`, …).
    #[arg(long, env = "WAGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Sandbox mode: simulated outside world, test keys, a test clock.
    #[arg(long, env = "WAGATE_SANDBOX")]
    pub sandbox: bool,
}

/// The TOML file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    sandbox: Option<bool>,
    clock_start: Option<String>,
    worker: Option<bool>,
    log_format: Option<String>,
    public_url: Option<String>,
    square_access_token: Option<String>,
    square_location_id: Option<String>,
    square_base_url: Option<String>,
    connector: Option<String>,
    max_concurrent_requests: Option<usize>,
    request_timeout: Option<u64>,
    meta_graph_url: Option<String>,
    meta_app_secret: Option<String>,
    meta_verify_token: Option<String>,
    meta_rate_cards: Option<Vec<String>>,
    meta_tiers: Option<Vec<String>>,
    stripe_api_url: Option<String>,
    stripe_secret_key: Option<String>,
    stripe_webhook_secret: Option<String>,
    stripe_year_months: Option<u32>,
    numbers_handler_api_url: Option<String>,
    numbers_handler_api_key: Option<String>,
    numbers_handler_api_usd_per_unit: Option<f64>,
}

/// Stripe, for per-line subscriptions (`WAGATE_STRIPE_*`, `stripe_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSettings {
    /// Stripe's API base (`https://api.stripe.com` by default; a fake in tests).
    pub api_url: String,
    /// The secret key (`sk_…`).
    pub secret_key: SecretText,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: SecretText,
    /// What a year costs, in months (10 by default).
    pub year_months: u32,
}

/// A virtual number provider speaking the handler_api protocol (`WAGATE_NUMBERS_HANDLER_API_*`,
/// `numbers_handler_api_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerApiSettings {
    /// The provider's base URL (its `/stubs/handler_api.php` is under it).
    pub url: String,
    /// Our API key there.
    pub key: SecretText,
    /// What one unit of the provider's currency is worth in USD (1 for a provider pricing
    /// in dollars).
    pub usd_per_unit: f64,
}

/// Meta's Cloud API settings (sandbox and production alike).
#[derive(Clone, PartialEq, Eq)]
pub struct MetaSettings {
    /// The Graph API base with its version (`WAGATE_META_GRAPH_URL`, `meta_graph_url`).
    pub graph_url: String,
    /// The app secret Meta signs webhooks with (`WAGATE_META_APP_SECRET`, `meta_app_secret`).
    pub app_secret: Option<String>,
    /// The token Meta's subscription check carries (`WAGATE_META_VERIFY_TOKEN`,
    /// `meta_verify_token`).
    pub verify_token: Option<String>,
    /// Meta's rate-card files beyond the built-in cards, `[DATE=]FILE` (`meta_rate_cards`,
    /// `WAGATE_META_RATE_CARDS` comma-separated): as `wagate rate --rate-card`.
    pub rate_cards: Vec<String>,
    /// Meta's tier tables, `[DATE=]FILE` (`meta_tiers`, `WAGATE_META_TIERS`): as `wagate rate
    /// --tiers`.
    pub tiers: Vec<String>,
}

impl std::fmt::Debug for MetaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("MetaSettings")
            .field("graph_url", &self.graph_url)
            .field("app_secret", &self.app_secret.is_some())
            .field("verify_token", &self.verify_token.is_some())
            .field("rate_cards", &self.rate_cards)
            .field("tiers", &self.tiers)
            .finish()
    }
}

/// How a production server connects WhatsApp lines.
#[derive(Clone, PartialEq, Eq)]
pub enum ConnectorChoice {
    /// WhatsApp Web multi-device (`--connector whatsapp-web`, the default), with sessions
    /// sealed by this key (the base64 `WAGATE_SECRET_KEY`).
    WhatsAppWeb {
        /// `WAGATE_SECRET_KEY`, which `serve` requires (commands that connect nothing, like
        /// `accounts create`, do not).
        secret_key: Option<String>,
    },
    /// None (`--connector none`): lines cannot be created (503 `connector_unavailable`).
    None,
}

impl std::fmt::Debug for ConnectorChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        match self {
            ConnectorChoice::WhatsAppWeb { .. } => f.write_str("WhatsAppWeb"),
            ConnectorChoice::None => f.write_str("None"),
        }
    }
}

/// The Square account that card payments go to (production mode).
#[derive(Clone)]
pub struct SquareSettings {
    /// `https://connect.squareup.com` (or Square's sandbox).
    pub base_url: String,
    /// The seller's access token.
    pub access_token: String,
    /// The location receiving the payments.
    pub location_id: String,
}

impl std::fmt::Debug for SquareSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SquareSettings")
            .field("base_url", &self.base_url)
            .field("location_id", &self.location_id)
            .finish_non_exhaustive()
    }
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// Embedded SQLite in this directory.
    SqliteDir(PathBuf),
    /// A database URL.
    Url(String),
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreLocation,
    /// Sandbox mode.
    pub sandbox: bool,
    /// Where the sandbox clock starts on a fresh store.
    pub clock_start: Option<jiff::Timestamp>,
    /// Whether this process runs the job worker.
    pub worker: bool,
    /// `text` or `json` logs.
    pub log_format: String,
    /// The public base URL of connect links (`WAGATE_PUBLIC_URL`); default: the listen address.
    pub public_url: Option<String>,
    /// Square, when configured (`WAGATE_SQUARE_ACCESS_TOKEN`, `WAGATE_SQUARE_LOCATION_ID`,
    /// optional `WAGATE_SQUARE_BASE_URL`).
    pub square: Option<SquareSettings>,
    /// The WhatsApp connector of a production server (the sandbox always simulates).
    pub connector: ConnectorChoice,
    /// Most API requests handled at once.
    pub max_concurrent_requests: usize,
    /// How long a request may take to answer.
    pub request_timeout: std::time::Duration,
    /// Meta's Cloud API.
    pub meta: MetaSettings,
    /// The server key (`WAGATE_SECRET_KEY`), which seals WhatsApp sessions and Cloud API
    /// access tokens.
    pub secret_key: Option<SecretText>,
    /// Stripe, when configured.
    pub stripe: Option<StripeSettings>,
    /// A handler_api number provider, when configured (in the sandbox it replaces the
    /// simulated providers).
    pub numbers_handler_api: Option<HandlerApiSettings>,
}

/// A secret setting: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Per-`serve` extras that come from flags or the file.
#[derive(Debug, Default, Clone)]
pub struct ServeExtras {
    /// `--clock-start`.
    pub clock_start: Option<String>,
    /// `--no-worker`.
    pub no_worker: bool,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--max-concurrent-requests`.
    pub max_concurrent_requests: Option<usize>,
    /// `--request-timeout` (seconds).
    pub request_timeout_secs: Option<u64>,
    /// `--public-url`.
    pub public_url: Option<String>,
    /// `--connector`.
    pub connector: Option<String>,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl Config {
    /// Merges flags/env (already merged by clap), the file and defaults, and validates.
    pub fn resolve(common: &CommonArgs, extras: &ServeExtras) -> anyhow::Result<Config> {
        let file = match &common.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let listen_text = common
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("--listen {listen_text:?} is not an address like 127.0.0.1:8080")
        })?;
        let store = match common.database_url.clone().or(file.database_url) {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                StoreLocation::Url(url)
            }
            Some(url) if url.starts_with("sqlite:") => StoreLocation::Url(url),
            Some(_) => bail!("--database-url must start with postgres:// (or sqlite:)"),
            None => StoreLocation::SqliteDir(
                common
                    .data_dir
                    .clone()
                    .or(file.data_dir)
                    .unwrap_or_else(|| PathBuf::from("./wagate-data")),
            ),
        };
        let sandbox = common.sandbox || file.sandbox.unwrap_or(false);
        let clock_start = match extras.clock_start.clone().or(file.clock_start) {
            None => None,
            Some(s) => Some(
                s.parse::<jiff::Timestamp>()
                    .with_context(|| format!("--clock-start {s:?} is not an RFC 3339 time"))?,
            ),
        };
        if clock_start.is_some() && !sandbox {
            bail!("--clock-start only applies with --sandbox");
        }
        if clock_start.is_some_and(|t| t > wagate_domain::clock::SANDBOX_CLOCK_MAX) {
            bail!(
                "--clock-start must be at or before {} (the sandbox clock's end)",
                wagate_domain::clock::SANDBOX_CLOCK_MAX
            );
        }
        let log_format = extras
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".to_owned());
        if log_format != "text" && log_format != "json" {
            bail!("--log-format must be text or json");
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let public_url = extras
            .public_url
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| env("WAGATE_PUBLIC_URL"))
            .or(file.public_url);
        if let Some(u) = &public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("public_url must start with http:// or https://");
            }
        }
        let token = env("WAGATE_SQUARE_ACCESS_TOKEN").or(file.square_access_token);
        let location = env("WAGATE_SQUARE_LOCATION_ID").or(file.square_location_id);
        let square = match (token, location) {
            (Some(access_token), Some(location_id)) => Some(SquareSettings {
                base_url: env("WAGATE_SQUARE_BASE_URL")
                    .or(file.square_base_url)
                    .unwrap_or_else(|| wagate_payments::SQUARE_PRODUCTION_URL.to_owned()),
                access_token,
                location_id,
            }),
            (None, None) => None,
            _ => bail!("Square needs both an access token and a location id"),
        };
        let connector = match extras
            .connector
            .clone()
            .or(file.connector)
            .unwrap_or_else(|| "whatsapp-web".to_owned())
            .as_str()
        {
            _ if sandbox => ConnectorChoice::None,
            "none" => ConnectorChoice::None,
            "whatsapp-web" => ConnectorChoice::WhatsAppWeb {
                secret_key: env(wagate_whatsapp::seal::SECRET_KEY_ENV),
            },
            other => bail!("--connector must be whatsapp-web or none, not {other:?}"),
        };
        let max_concurrent_requests = extras
            .max_concurrent_requests
            .or(file.max_concurrent_requests)
            .unwrap_or(wagate_http::guard::RequestLimits::DEFAULT_MAX_IN_FLIGHT);
        if max_concurrent_requests == 0 {
            bail!("--max-concurrent-requests must be at least 1");
        }
        let request_timeout = match extras.request_timeout_secs.or(file.request_timeout) {
            Some(0) => bail!("--request-timeout must be at least 1 second"),
            Some(secs) => std::time::Duration::from_secs(secs),
            None => wagate_http::guard::RequestLimits::DEFAULT_TIMEOUT,
        };
        let meta = MetaSettings {
            graph_url: env("WAGATE_META_GRAPH_URL")
                .or(file.meta_graph_url)
                .unwrap_or_else(|| wagate_meta::graph::DEFAULT_GRAPH_URL.to_owned()),
            app_secret: env("WAGATE_META_APP_SECRET").or(file.meta_app_secret),
            verify_token: env("WAGATE_META_VERIFY_TOKEN").or(file.meta_verify_token),
            rate_cards: env("WAGATE_META_RATE_CARDS")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .or(file.meta_rate_cards)
                .unwrap_or_default(),
            tiers: env("WAGATE_META_TIERS")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .or(file.meta_tiers)
                .unwrap_or_default(),
        };
        let stripe = match (
            env("WAGATE_STRIPE_SECRET_KEY").or(file.stripe_secret_key),
            env("WAGATE_STRIPE_WEBHOOK_SECRET").or(file.stripe_webhook_secret),
        ) {
            (Some(secret_key), Some(webhook_secret)) => {
                let year_months = match env("WAGATE_STRIPE_YEAR_MONTHS") {
                    Some(v) => v.parse().map_err(|_| {
                        anyhow::anyhow!("WAGATE_STRIPE_YEAR_MONTHS must be a whole number")
                    })?,
                    None => file.stripe_year_months.unwrap_or(10),
                };
                if !(1..=12).contains(&year_months) {
                    bail!("stripe_year_months must be between 1 and 12");
                }
                Some(StripeSettings {
                    api_url: env("WAGATE_STRIPE_API_URL")
                        .or(file.stripe_api_url)
                        .unwrap_or_else(|| wagate_stripe::DEFAULT_API_URL.to_owned()),
                    secret_key: SecretText(secret_key),
                    webhook_secret: SecretText(webhook_secret),
                    year_months,
                })
            }
            (None, None) => None,
            _ => bail!("Stripe needs both stripe_secret_key and stripe_webhook_secret"),
        };
        let numbers_handler_api = match (
            env("WAGATE_NUMBERS_HANDLER_API_URL").or(file.numbers_handler_api_url),
            env("WAGATE_NUMBERS_HANDLER_API_KEY").or(file.numbers_handler_api_key),
        ) {
            (Some(url), Some(key)) => {
                let usd_per_unit = match env("WAGATE_NUMBERS_HANDLER_API_USD_PER_UNIT") {
                    Some(v) => v.parse().map_err(|_| {
                        anyhow::anyhow!("WAGATE_NUMBERS_HANDLER_API_USD_PER_UNIT must be a number")
                    })?,
                    None => file.numbers_handler_api_usd_per_unit.unwrap_or(1.0),
                };
                if !(usd_per_unit.is_finite() && usd_per_unit > 0.0) {
                    bail!("numbers_handler_api_usd_per_unit must be above 0");
                }
                Some(HandlerApiSettings {
                    url,
                    key: SecretText(key),
                    usd_per_unit,
                })
            }
            (None, None) => None,
            _ => bail!("a handler_api number provider needs both numbers_handler_api_url and numbers_handler_api_key"),
        };
        Ok(Config {
            numbers_handler_api,
            stripe,
            meta,
            secret_key: env(wagate_whatsapp::seal::SECRET_KEY_ENV).map(SecretText),
            listen,
            store,
            sandbox,
            clock_start,
            worker: !extras.no_worker && file.worker.unwrap_or(true),
            log_format,
            public_url,
            square,
            connector,
            max_concurrent_requests,
            request_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common() -> CommonArgs {
        CommonArgs {
            listen: None,
            data_dir: None,
            database_url: None,
            config: None,
            sandbox: false,
        }
    }

    #[test]
    fn defaults_are_local_and_embedded() {
        let c = Config::resolve(&common(), &ServeExtras::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(
            matches!(c.store, StoreLocation::SqliteDir(ref p) if p == Path::new("./wagate-data"))
        );
        assert!(c.worker && !c.sandbox);
    }

    #[test]
    fn the_public_url_flag_beats_the_file_and_must_be_http() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(&file, "public_url = \"https://file.example\"\n").unwrap();
        let mut args = common();
        args.config = Some(file);
        let flag = |u: &str| ServeExtras {
            public_url: Some(u.into()),
            ..ServeExtras::default()
        };
        let from_file = Config::resolve(&args, &ServeExtras::default()).unwrap();
        assert_eq!(
            from_file.public_url.as_deref(),
            Some("https://file.example")
        );
        let from_flag = Config::resolve(&args, &flag("https://wa.example.com")).unwrap();
        assert_eq!(
            from_flag.public_url.as_deref(),
            Some("https://wa.example.com")
        );
        let err = Config::resolve(&args, &flag("wa.example.com")).unwrap_err();
        assert!(err.to_string().contains("http"), "{err}");
    }

    #[test]
    fn flags_beat_the_file_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9\"\nsandbox = true\nworker = false\n",
        )
        .unwrap();
        let mut args = common();
        args.config = Some(file.clone());
        let c = Config::resolve(&args, &ServeExtras::default()).unwrap();
        assert_eq!(c.listen.port(), 9);
        assert!(c.sandbox && !c.worker);
        args.listen = Some("127.0.0.1:10".into());
        assert_eq!(
            Config::resolve(&args, &ServeExtras::default())
                .unwrap()
                .listen
                .port(),
            10
        );

        args.listen = Some("nowhere".into());
        assert!(Config::resolve(&args, &ServeExtras::default()).is_err());
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        args.listen = None;
        assert!(
            Config::resolve(&args, &ServeExtras::default()).is_err(),
            "typos in the file are errors"
        );
        let mut args = common();
        args.database_url = Some("mysql://x".into());
        assert!(Config::resolve(&args, &ServeExtras::default()).is_err());
        let extras = ServeExtras {
            clock_start: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        assert!(
            Config::resolve(&common(), &extras).is_err(),
            "clock-start needs --sandbox"
        );
    }
}
