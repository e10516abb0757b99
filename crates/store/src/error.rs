//! The storage error type.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused a query.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite refused a point read run on the calling thread (`sql/fast.rs`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Migrations failed to apply.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (a corrupted or foreign row).
    #[error("corrupt stored value in {what}: {detail}")]
    Corrupt {
        /// Which column or object.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store was opened in the wrong mode (a sandbox store by a production server, or
    /// the other way round).
    #[error("{0}")]
    ModeMismatch(String),
    /// A grouped write met the change a [`crate::Conflict`] describes (only strict batches can,
    /// see `Batch::messages_must_move`); `LineStore::commit` hands it back as that conflict.
    #[error("conflict: {0}")]
    Conflict(crate::Conflict),
    /// The database URL is not one wagate understands.
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}
