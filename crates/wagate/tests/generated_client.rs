//! A client generated from the OpenAPI document talks to the real server: the document is
//! good enough to build a working client from, and what that client decodes is what the
//! server said.
//!
//! The client comes from `openapi-python-client` (PyPI), so this test is ignored by a plain
//! `cargo test`; `scripts/client-check` installs the generator, generates the client and
//! runs it with `WAGATE_CLIENT_PYTHON` (a Python with the client's dependencies) and
//! `WAGATE_CLIENT_DIR` (where the generated package `wagate_api_client` is) set.

mod common;

use common::{fresh, Server};
use serde_json::Value;

/// Calls three operations through the generated client (and one that fails) and prints what
/// the client decoded, as JSON. `raise_on_unexpected_status`: any status the document does
/// not list for the operation is an error.
const PROGRAM: &str = r#"
import json, os
from wagate_api_client import AuthenticatedClient
from wagate_api_client.api.account import get_account
from wagate_api_client.api.lines import get_line
from wagate_api_client.api.webhooks import create_webhook_endpoint, list_webhook_endpoints
from wagate_api_client.models import AccountOut, EndpointIn, EndpointInEventsType0Item, EndpointOut, ErrorOut, ListOutEndpointOut

client = AuthenticatedClient(
    base_url=os.environ["WAGATE_BASE"], token=os.environ["WAGATE_KEY"], raise_on_unexpected_status=True
)
out = {}
account = get_account.sync(client=client)
assert isinstance(account, AccountOut), account
out["account"] = account.to_dict()
body = EndpointIn(
    url="https://hooks.example/wagate",
    events=[EndpointInEventsType0Item.LINE_READY, EndpointInEventsType0Item.MESSAGE_RECEIVED],
    description="from the generated client",
)
for n in range(2):
    endpoint = create_webhook_endpoint.sync(client=client, body=body, idempotency_key=f"generated-{n}")
    assert isinstance(endpoint, EndpointOut), endpoint
    out[f"endpoint{n}"] = endpoint.to_dict()
page = list_webhook_endpoints.sync(client=client, limit=1)
assert isinstance(page, ListOutEndpointOut), page
out["page"] = page.to_dict()
missing = get_line.sync_detailed(client=client, id="line_0000000000000000000000")
assert isinstance(missing.parsed, ErrorOut), missing
out["missing"] = {"status": int(missing.status_code), "body": missing.parsed.to_dict()}
print(json.dumps(out))
"#;

#[tokio::test]
#[ignore = "needs the generated Python client: run scripts/client-check"]
async fn a_client_generated_from_the_document_works() {
    let python = std::env::var("WAGATE_CLIENT_PYTHON").expect(
        "WAGATE_CLIENT_PYTHON: a Python with the client's dependencies (scripts/client-check)",
    );
    let dir = std::env::var("WAGATE_CLIENT_DIR")
        .expect("WAGATE_CLIENT_DIR: the generated client's directory (scripts/client-check)");
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;

    let out = tokio::process::Command::new(&python)
        .args(["-c", PROGRAM])
        .env("PYTHONPATH", &dir)
        .env("WAGATE_BASE", &s.base)
        .env("WAGATE_KEY", &s.key)
        .output()
        .await
        .expect("run the generated client");
    assert!(
        out.status.success(),
        "the generated client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("the program prints JSON");

    // getAccount: the demo account, as the server shows it.
    let (_, account) = s.get("/api/v1/account").await;
    assert_eq!(got["account"], account);
    assert_eq!(got["account"]["id"], s.demo_account.as_str());

    // createWebhookEndpoint: the endpoint as sent, and as the server stored it.
    let endpoint = &got["endpoint0"];
    assert_eq!(endpoint["url"], "https://hooks.example/wagate");
    assert_eq!(
        endpoint["events"],
        serde_json::json!(["line.ready", "message.received"])
    );
    assert_eq!(endpoint["description"], "from the generated client");
    let id = endpoint["id"].as_str().expect("an id");
    let (st, stored) = s.get(&format!("/api/v1/webhooks/endpoints/{id}")).await;
    assert_eq!((st, &stored), (200, endpoint));

    // listWebhookEndpoints with a limit: the newest, and more to come.
    assert_eq!(got["page"]["has_more"], true);
    assert_eq!(got["page"]["data"][0]["id"], got["endpoint1"]["id"]);

    // getLine on an unknown id: the documented 404, decoded as ErrorOut.
    assert_eq!(got["missing"]["status"], 404);
    assert_eq!(got["missing"]["body"]["error"], "not_found");
}
