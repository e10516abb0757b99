//! The data built into the binary: copies of `../shared/data/` (see `data/README.md` for
//! where each file came from, its date and how far to trust it).

/// Meta's calling-code → market table with NANP area codes and market moves.
pub const COUNTRY_CODES_CSV: &str = include_str!("../data/meta_country_codes.csv");

/// Meta's rate cards gathered from public copies (USD PMP 2026-01-01, 2026-04-01, 2026-07-01
/// and 2026-10-01, INR PMP 2025-10-01, partial EUR PMP 2026-07-01, Brazil-only BRL PMP
/// 2026-07-01, USD CBP 2024-11-01 and 2023-06-01; `data/SOURCES.md` cites each).
pub const RATE_CARDS_CSV: &str = include_str!("../data/meta_rate_card.csv");

/// Where each built-in card came from, what it misses, and how far to trust it.
pub const RATE_CARD_SOURCES_CSV: &str = include_str!("../data/meta_rate_card_sources.csv");
