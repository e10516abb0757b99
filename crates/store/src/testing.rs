//! Helpers for tests that need a real database: a fresh PostgreSQL database per test.

use crate::sql::redact_url;
use crate::StoreError;

/// The environment variable naming the PostgreSQL server tests use
/// (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
pub const POSTGRES_ENV: &str = "WAGATE_TEST_POSTGRES_URL";

/// The test PostgreSQL server's URL. Panics with instructions when it is not set: the
/// PostgreSQL half of the suite must never skip silently.
pub fn postgres_server_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_ENV} is not set: the PostgreSQL tests need a server. \
             Run the suite with scripts/test, which starts one if needed."
        )
    })
}

/// Creates an empty database with a random name on the test server and returns its URL.
pub async fn fresh_postgres_database() -> Result<String, StoreError> {
    sqlx::any::install_default_drivers();
    let server = postgres_server_url();
    let name = format!(
        "wagate_t_{}",
        wagate_domain::ids::random_base62(16).to_lowercase()
    );
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&server).await?;
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
    let mut url = url::Url::parse(&server)
        .map_err(|e| StoreError::UnsupportedUrl(format!("{}: {e}", redact_url(&server))))?;
    url.set_path(&name);
    Ok(url.to_string())
}
