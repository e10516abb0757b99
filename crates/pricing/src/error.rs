//! Errors in pricing data (rate cards, tier tables, country codes, WABA and eligibility files).

/// A data file that cannot be used; the CLI exits with status 2 on any of these, because
/// pricing with a half-read card would give wrong money.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct DataError {
    /// Which file (or built-in table) the problem is in.
    pub source_name: String,
    /// What is wrong and where (row numbers are 1-based like a spreadsheet).
    pub message: String,
}

impl DataError {
    /// A problem in `source_name`, described by `message`.
    pub fn new(source_name: impl Into<String>, message: impl Into<String>) -> DataError {
        DataError {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}
