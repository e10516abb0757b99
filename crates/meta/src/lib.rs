#![doc = r#"
Meta's WhatsApp Cloud API, as wagate uses it for `cloud` lines (PRODUCT.md §10).

- [`graph`]: [`GraphClient`] looks a business phone number up (`GET /{phone-number-id}`) and
  sends text and template messages (`POST /{phone-number-id}/messages`). Meta's error codes are
  sorted into a [`GraphError`] an API user can act on (bad credentials, closed customer service
  window, unknown template, rate limit, ...), each keeping Meta's own code and message for logs.
- [`webhook`]: checks `X-Hub-Signature-256` ([`webhook::verify_signature`]), answers Meta's
  verification `GET` ([`webhook::verify_challenge`]) and flattens a delivery into typed
  [`webhook::Notification`]s ([`webhook::parse`]): inbound messages (with their ad
  `referral`), message statuses (with Meta's `pricing` and `conversation`) and volume tier
  updates.
- `fake` (cargo feature `fake`): `FakeGraph`, a local server that answers like Meta's Graph API
  for what wagate uses and checks requests the way Meta does, and its `Driver`, which posts
  signed, Meta-shaped webhooks to a wagate server. `cargo run -p wagate-meta --features fake
  --example fake_graph` runs it by hand.

Shapes follow Meta's documentation: the WhatsApp Business Platform OpenAPI description
(`facebook/openapi`, `business-messaging-api_v23.0.yaml`), the status and `account_update`
webhook references, the pricing page and the error code table.
"#]
#![forbid(unsafe_code)]

pub mod graph;
pub mod webhook;

#[cfg(feature = "fake")]
pub mod fake;

pub use graph::{
    GraphClient, GraphConfigError, GraphError, MetaError, Outbound, PhoneNumber, Sent,
    DEFAULT_GRAPH_URL, DEFAULT_RETRY_AFTER_SECS, REQUEST_TIMEOUT,
};
pub use webhook::{
    InboundMessage, MessageStatus, MetaConversation, MetaErrorItem, MetaPricing, Notification,
    ParseError, Referral, StatusUpdate, TierUpdate,
};
