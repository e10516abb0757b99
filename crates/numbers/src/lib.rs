#![doc = r#"
Virtual number providers for wagate (PRODUCT.md §12).

- [`handler_api`]: [`HandlerApiClient`], a client of the "handler_api" protocol that many
  SMS-activation providers share (first published by sms-activate and cloned widely):
  `GET {base}/stubs/handler_api.php?api_key=…&action=…` with plain-text answers
  (`ACCESS_NUMBER:id:number`, `STATUS_OK:code`, `STATUS_WAIT_CODE`, `NO_NUMBERS`,
  `NO_BALANCE`, `BAD_KEY`, …) and a JSON price list (`getPrices`). Every answer is sorted
  into a typed result or a [`HandlerApiError`] the caller can act on (out of stock, our
  balance at the provider, a bad key, a transport failure).
- [`codes`]: wagate's service names and ISO countries in the protocol's own codes
  (`whatsapp` → `wa`, `GB` → `16`).
- `fake` (cargo feature `fake`): [`fake::FakeHandlerApi`], a local server answering the same
  protocol from an in-memory price list, stock and balance, with controls a test uses to
  deliver a code to an activation.

The shapes follow the protocol's public documentation and the many client libraries that
speak it: `getNumber` answers `ACCESS_NUMBER:<activation id>:<number without +>`, `getStatus`
answers `STATUS_WAIT_CODE`, `STATUS_WAIT_RETRY:<code>`, `STATUS_WAIT_RESEND`, `STATUS_CANCEL`
or `STATUS_OK:<code>`, `setStatus` takes `1` (SMS sent), `3` (another code), `6` (done) or
`8` (cancel) and answers `ACCESS_READY`, `ACCESS_RETRY_GET`, `ACCESS_ACTIVATION` or
`ACCESS_CANCEL`; `getPrices` answers `{"<country>": {"<service>": {"cost": 0.5, "count": 12}}}`.
"#]
#![forbid(unsafe_code)]

pub mod codes;
pub mod handler_api;

#[cfg(feature = "fake")]
pub mod fake;

pub use handler_api::{
    Activation, ActivationStatus, HandlerApiClient, HandlerApiError, PriceRow, SetStatus,
    REQUEST_TIMEOUT,
};
