//! The operator's own small CSV files (`--wabas`, `--auth-intl`): one reader for both.

use crate::error::DataError;

/// The data rows of an operator CSV, each with its 1-based row number: cells trimmed, rows
/// of any length, blank rows and an optional header row (first cell `waba`) skipped.
pub(crate) fn operator_rows(
    text: &str,
    source: &str,
) -> Result<Vec<(usize, csv::StringRecord)>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = record.map_err(|e| DataError::new(source, format!("row {row}: {e}")))?;
        let first = record.get(0).unwrap_or("");
        if first.is_empty() || (row == 1 && first.eq_ignore_ascii_case("waba")) {
            continue;
        }
        rows.push((row, record));
    }
    Ok(rows)
}
