//! The dashboard end to end (PRODUCT.md §13, docs/dashboard.md): the real `wagate serve
//! --sandbox` binary on SQLite and PostgreSQL.
//!
//! Over plain HTTP (`http`): sign-in and its refusals, the session cookie's attributes, forged
//! forms refused with 403, another account's objects 404, bad input a clear 4xx, escaping and
//! the page headers, webhook endpoints, a revoked key ending its sessions, sign-out, and
//! (SQLite) a session that survives a restart; and (`numbers`) the numbers page: prices, a
//! verification bought once from a form sent twice, its code shown, cancel and extend, the
//! out-of-stock, balance and unavailable pages, forged forms and another account's numbers.
//!
//! In headless Chromium (`journey`): sign in, add a webhook endpoint and send it a test
//! event, create a line, scan it in the sandbox and see it turn ready without a reload, send a
//! message and see a reply arrive live, place a call and answer an incoming one with audio
//! both ways, top up and see the chart change, rotate the webhook secret, redeliver an event,
//! buy a verification number and see its code, sign out; on every page one `h1`, a label for every control and a status in words. With `WAGATE_SCREENSHOTS=<dir>` the
//! SQLite run also saves each page at desktop and phone width (scripts/screenshots).
//!
//! Waits are wall time for the browser and the server to get on with their work; business
//! time only moves through the sandbox clock.

#[path = "common/browser.rs"]
mod browser;
#[path = "dashboard/client.rs"]
mod client;
mod common;
#[path = "dashboard/http.rs"]
mod http;
#[path = "dashboard/journey.rs"]
mod journey;
#[path = "dashboard/numbers.rs"]
mod numbers;

use std::time::Duration;

/// How long the page may take to show a change pushed by the server (it looks every 1 s).
const NOTICE_WITHIN: Duration = Duration::from_secs(15);
