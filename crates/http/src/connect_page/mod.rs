//! The hosted connect page (`GET /connect/{token}`), as pure rendering.
//!
//! The end customer opens it on a phone, optionally chooses calling, and scans the QR with
//! WhatsApp. The page polls `GET /connect/{token}/status` ([`status_json`]) and updates itself
//! in place (new QR, "Connected", "Reconnecting…") without reloading. Everything here is a
//! function of a [`ConnectPage`] value: the routes that look up the line live elsewhere.
//!
//! The end customer is not the one paying, so the page never shows a price (PRODUCT.md §3).

mod qr;

use askama::Template;
use serde_json::{json, Value};

pub use qr::qr_svg;

/// What the connect page shows, as the app sees the line. No price ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectPage<'a> {
    /// The URL token; the page polls `/connect/{token}/status`.
    pub token: &'a str,
    /// Shown as "<business> invites you to connect WhatsApp".
    pub business_name: &'a str,
    /// Where the line is in its lifecycle.
    pub state: ConnectState<'a>,
    /// Show the "Make and receive calls?" toggle.
    pub allow_calling: bool,
    /// The toggle's current value.
    pub calling_choice: bool,
    /// After the scan the choice is fixed: the toggle is disabled and shows it.
    pub calling_locked: bool,
}

/// The line's state, in the words the end customer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectState<'a> {
    /// Not linked (new, or the phone unlinked it): show this QR to scan.
    AwaitingScan {
        /// What the connector wants encoded in the QR; it rotates.
        qr_payload: &'a str,
    },
    /// Linked and working.
    Connected {
        /// The linked WhatsApp number, once the connector knows it.
        phone_number: Option<&'a str>,
    },
    /// Linked, but the connection dropped; it heals by itself.
    Reconnecting,
    /// WhatsApp blocked the account or this client: nothing to scan, the business acts.
    Blocked,
    /// The line was released: the link is dead for good.
    Released,
}

impl ConnectState<'_> {
    /// The `state` value of the status JSON, also the page's `data-state`.
    fn name(&self) -> &'static str {
        match self {
            ConnectState::AwaitingScan { .. } => "awaiting_scan",
            ConnectState::Connected { .. } => "connected",
            ConnectState::Reconnecting => "reconnecting",
            ConnectState::Blocked => "blocked",
            ConnectState::Released => "released",
        }
    }

    /// The `#status` line. The page's script has the same texts for updates in place.
    fn status_text(&self) -> &'static str {
        match self {
            ConnectState::AwaitingScan { .. } => "Scan this code with WhatsApp",
            ConnectState::Connected { .. } => "Connected",
            ConnectState::Reconnecting => "Reconnecting…",
            ConnectState::Blocked => {
                "WhatsApp has blocked this account; please contact the business"
            }
            ConnectState::Released => "This line was closed",
        }
    }

    fn qr_payload(&self) -> Option<&str> {
        match self {
            ConnectState::AwaitingScan { qr_payload } => Some(qr_payload),
            _ => None,
        }
    }

    fn phone_number(&self) -> Option<&str> {
        match self {
            ConnectState::Connected { phone_number } => *phone_number,
            _ => None,
        }
    }
}

/// The connect page's template: values already worked out, so the template only lays out.
#[derive(Template)]
#[template(path = "connect/page.html")]
struct PageTemplate<'a> {
    token: &'a str,
    business_name: &'a str,
    state: &'static str,
    status_text: &'static str,
    /// Trusted markup from [`qr_svg`]; the template marks it `safe`.
    qr_svg: Option<String>,
    qr_version: Option<String>,
    phone_number: Option<&'a str>,
    allow_calling: bool,
    calling_choice: bool,
    calling_locked: bool,
}

#[derive(Template)]
#[template(path = "connect/not_found.html")]
struct NotFoundTemplate;

#[derive(Template)]
#[template(path = "connect/unavailable.html")]
struct UnavailableTemplate;

/// The whole HTML document of the connect page.
pub fn render_page(page: &ConnectPage) -> String {
    let payload = page.state.qr_payload();
    PageTemplate {
        token: page.token,
        business_name: page.business_name,
        state: page.state.name(),
        status_text: page.state.status_text(),
        qr_svg: payload.map(qr_svg),
        qr_version: payload.map(qr::qr_version),
        phone_number: page.state.phone_number(),
        allow_calling: page.allow_calling,
        calling_choice: page.calling_choice,
        calling_locked: page.calling_locked,
    }
    .render()
    // Rendering writes plain strings and booleans into a String: it cannot fail.
    .expect("the connect page renders")
}

/// The friendly page for an unknown or dead token (serve it with 404). It names no line,
/// no token and no business, so it tells a guesser nothing.
pub fn render_not_found() -> String {
    NotFoundTemplate
        .render()
        .expect("the not-found page renders")
}

/// The friendly page for when the server cannot produce a QR to scan (its WhatsApp connector
/// is down or not configured; serve it with 503): the link stays valid, so it asks the end
/// customer to come back rather than showing an error body meant for developers.
pub fn render_unavailable() -> String {
    UnavailableTemplate
        .render()
        .expect("the unavailable page renders")
}

/// The JSON the page polls at `GET /connect/{token}/status`.
///
/// `{"state", "qr_svg", "qr_version", "allow_calling", "calling", "calling_locked",
/// "phone_number"}`; `qr_svg` and `qr_version` are non-null only while awaiting a scan.
pub fn status_json(page: &ConnectPage) -> Value {
    let payload = page.state.qr_payload();
    json!({
        "state": page.state.name(),
        "qr_svg": payload.map(qr_svg),
        "qr_version": payload.map(qr::qr_version),
        "allow_calling": page.allow_calling,
        "calling": page.calling_choice,
        "calling_locked": page.calling_locked,
        "phone_number": page.state.phone_number(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "2@c2NhbiBtZQ==,a2V5,c2lnbmF0dXJl";

    fn page(state: ConnectState<'static>) -> ConnectPage<'static> {
        ConnectPage {
            token: "tok_abc",
            business_name: "Acme Bakery",
            state,
            allow_calling: false,
            calling_choice: false,
            calling_locked: false,
        }
    }

    fn every_state() -> [ConnectState<'static>; 5] {
        [
            ConnectState::AwaitingScan {
                qr_payload: PAYLOAD,
            },
            ConnectState::Connected {
                phone_number: Some("+447700900123"),
            },
            ConnectState::Connected { phone_number: None },
            ConnectState::Reconnecting,
            ConnectState::Released,
        ]
    }

    /// The element with this id, from its opening tag to the end of the document.
    fn from_id<'h>(html: &'h str, id: &str) -> &'h str {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("#{id} in {html}"));
        let open = html[..at].rfind('<').unwrap();
        &html[open..]
    }

    fn opening_tag<'h>(html: &'h str, id: &str) -> &'h str {
        let from = from_id(html, id);
        &from[..from.find('>').unwrap() + 1]
    }

    /// The page as text a person could read: without the QR drawing and its fingerprint,
    /// which are module coordinates and hex digits rather than words.
    fn readable(html: &str) -> String {
        let mut out = html.to_owned();
        if let (Some(start), Some(end)) = (out.find("<svg"), out.find("</svg>")) {
            out.replace_range(start..end + "</svg>".len(), "");
        }
        let key = "data-qr-version=\"";
        if let Some(start) = out.find(key) {
            let end = start + key.len() + out[start + key.len()..].find('"').unwrap();
            out.replace_range(start + key.len()..end, "");
        }
        out
    }

    #[test]
    fn no_page_and_no_status_ever_shows_a_price() {
        for state in every_state() {
            for (allow, choice, locked) in [
                (false, false, false),
                (true, true, false),
                (true, false, true),
            ] {
                let page = ConnectPage {
                    allow_calling: allow,
                    calling_choice: choice,
                    calling_locked: locked,
                    ..page(state)
                };
                let mut status = status_json(&page);
                status["qr_svg"] = Value::Null;
                status["qr_version"] = Value::Null;
                for text in [
                    readable(&render_page(&page)),
                    render_not_found(),
                    status.to_string(),
                ] {
                    for banned in ["$", "USD", "15", "20.00", "price", "Price", "€", "£"] {
                        assert!(!text.contains(banned), "{banned:?} in {state:?}: {text}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_page_is_a_phone_sized_html5_document_without_outside_assets() {
        let html = render_page(&page(ConnectState::AwaitingScan {
            qr_payload: PAYLOAD,
        }));
        assert!(html.starts_with("<!doctype html>"), "{html}");
        assert!(html
            .contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#));
        assert!(html.contains("<style>") && html.contains("<script>"));
        for external in ["<link", "src=", "http://", "https://"] {
            let outside_svg = readable(&html);
            assert!(!outside_svg.contains(external), "{external}: {html}");
        }
        assert!(html.contains("Acme Bakery invites you to connect WhatsApp"));
        for step in ["WhatsApp", "Settings", "Linked devices", "Link a device"] {
            assert!(html.contains(step), "{step}");
        }
    }

    #[test]
    fn awaiting_a_scan_shows_the_qr_inline() {
        let html = render_page(&page(ConnectState::AwaitingScan {
            qr_payload: PAYLOAD,
        }));
        let qr = from_id(&html, "qr");
        assert!(!opening_tag(&html, "qr").contains("hidden"));
        assert!(
            qr[qr.find('>').unwrap() + 1..].starts_with("<svg"),
            "unescaped svg: {qr}"
        );
        assert!(opening_tag(&html, "qr").contains(&qr::qr_version(PAYLOAD)));
        assert!(from_id(&html, "status").contains(">Scan this code with WhatsApp<"));
        assert!(!opening_tag(&html, "steps").contains("hidden"));
    }

    #[test]
    fn connected_hides_the_qr_and_shows_the_number() {
        let html = render_page(&page(ConnectState::Connected {
            phone_number: Some("+447700900123"),
        }));
        assert!(opening_tag(&html, "qr").contains(" hidden"), "{html}");
        assert!(!html.contains("<svg"));
        assert!(opening_tag(&html, "steps").contains(" hidden"));
        assert!(from_id(&html, "status").contains(">Connected<"));
        assert!(!opening_tag(&html, "phone").contains("hidden"));
        assert!(from_id(&html, "phone").contains(">+447700900123<"));

        let html = render_page(&page(ConnectState::Connected { phone_number: None }));
        assert!(opening_tag(&html, "phone").contains(" hidden"));
    }

    #[test]
    fn reconnecting_and_released_say_so() {
        let html = render_page(&page(ConnectState::Reconnecting));
        assert!(from_id(&html, "status").contains(">Reconnecting…<"));
        assert!(opening_tag(&html, "qr").contains(" hidden"));

        let html = render_page(&ConnectPage {
            allow_calling: true,
            ..page(ConnectState::Released)
        });
        assert!(from_id(&html, "status").contains(">This line was closed<"));
        assert!(!opening_tag(&html, "closed").contains("hidden"));
        assert!(opening_tag(&html, "calling").contains(" hidden"));
        assert!(
            html.contains(r#"data-state="released""#),
            "the script polls nothing"
        );
    }

    #[test]
    fn the_calling_toggle_is_there_only_when_allowed() {
        let awaiting = ConnectState::AwaitingScan {
            qr_payload: PAYLOAD,
        };
        let html = render_page(&page(awaiting));
        assert!(!html.contains(r#"id="calling-toggle""#));
        assert!(!html.contains("Make and receive calls?"));

        let html = render_page(&ConnectPage {
            allow_calling: true,
            ..page(awaiting)
        });
        let label = from_id(&html, "calling");
        let label = &label[label.find("<label").unwrap()..label.find("</label>").unwrap()];
        assert!(label.contains("Make and receive calls?"), "{label}");
        let toggle = opening_tag(&html, "calling-toggle");
        assert!(label.contains(toggle));
        assert!(toggle.contains(r#"type="checkbox""#));
        assert!(
            !toggle.contains("checked") && !toggle.contains("disabled"),
            "{toggle}"
        );
        assert!(
            html.find("calling-toggle").unwrap() < html.find(r#"id="qr""#).unwrap(),
            "before the QR"
        );
    }

    #[test]
    fn a_locked_toggle_is_disabled_and_shows_the_choice() {
        let page = ConnectPage {
            allow_calling: true,
            calling_choice: true,
            calling_locked: true,
            ..page(ConnectState::Connected { phone_number: None })
        };
        let toggle = opening_tag(&render_page(&page), "calling-toggle").to_owned();
        assert!(
            toggle.contains(" checked") && toggle.contains(" disabled"),
            "{toggle}"
        );
        let html = render_page(&page);
        assert!(opening_tag(&html, "calling-open").contains(" hidden"));
        assert!(!opening_tag(&html, "calling-locked").contains("hidden"));
    }

    #[test]
    fn the_business_name_and_token_are_escaped() {
        let page = ConnectPage {
            business_name: "<script>alert(1)</script> & \"Sons\"",
            token: "\"><script>",
            ..page(ConnectState::Released)
        };
        let html = render_page(&page);
        assert!(!html.contains("<script>alert"), "{html}");
        // askama writes numeric entities; either spelling is safe.
        let escaped = [
            "&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;Sons&#34;",
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Sons&quot;",
        ];
        assert!(escaped.iter().any(|e| html.contains(e)), "{html}");
        assert!(!html.contains("\"><script>"));
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own script"
        );
    }

    #[test]
    fn the_script_polls_the_status_and_posts_the_choice() {
        let html = render_page(&page(ConnectState::AwaitingScan {
            qr_payload: PAYLOAD,
        }));
        let script = &html[html.find("<script>").unwrap()..];
        for needle in [
            r#"base + "/status""#,
            r#"cache: "no-store""#,
            "1.5 * 1000",
            r#"base + "/calling""#,
            r#"method: "POST""#,
            "JSON.stringify({ calling: wanted })",
        ] {
            assert!(script.contains(needle), "{needle}");
        }
        for state in every_state() {
            assert!(script.contains(&format!("{}: \"{}\"", state.name(), state.status_text())));
        }
    }

    #[test]
    fn the_status_follows_the_state() {
        let awaiting = status_json(&page(ConnectState::AwaitingScan {
            qr_payload: PAYLOAD,
        }));
        assert_eq!(awaiting["state"], "awaiting_scan");
        assert_eq!(awaiting["qr_svg"], qr_svg(PAYLOAD));
        assert_eq!(awaiting["qr_version"], qr::qr_version(PAYLOAD));
        assert_eq!(awaiting["phone_number"], Value::Null);

        let connected = status_json(&ConnectPage {
            allow_calling: true,
            calling_choice: true,
            calling_locked: true,
            ..page(ConnectState::Connected {
                phone_number: Some("+447700900123"),
            })
        });
        assert_eq!(
            connected,
            json!({
                "state": "connected",
                "qr_svg": null,
                "qr_version": null,
                "allow_calling": true,
                "calling": true,
                "calling_locked": true,
                "phone_number": "+447700900123",
            })
        );
        assert_eq!(
            status_json(&page(ConnectState::Reconnecting))["state"],
            "reconnecting"
        );
        assert_eq!(
            status_json(&page(ConnectState::Released))["state"],
            "released"
        );
    }

    #[test]
    fn the_not_found_page_helps_without_naming_anything() {
        let html = render_not_found();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("This link is no longer valid"));
        assert!(html.contains("Ask the business that sent it to you for a new link."));
        assert!(!html.contains("<script"), "nothing to poll");
    }
}
