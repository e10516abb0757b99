//! A browser-like HTTP client of the dashboard, and helpers both tests share.

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};

use crate::common::Server;

/// A browser-like HTTP client of the dashboard: keeps its cookies, follows no redirects.
pub struct Dash {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<(String, String)>,
    pub csrf: String,
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("a csrf field in {html}"));
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

impl Dash {
    pub fn new(base: &str) -> Dash {
        Dash {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps the response's cookies (an empty value forgets one); returns the raw headers.
    pub fn keep(&mut self, resp: &reqwest::Response) -> Vec<String> {
        let raw: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &raw {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        raw
    }

    /// GET: (status, body, Location).
    pub async fn get(&mut self, path: &str) -> (u16, String, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.text().await.unwrap();
        if let Some(at) = body.find(r#"name="csrf" value=""#) {
            let _ = at;
            self.csrf = csrf_of(&body);
        }
        (status, body, location)
    }

    /// POSTs a form as it is (no token added): (status, body, Location, Set-Cookie).
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, String, Vec<String>) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        let cookies = self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, resp.text().await.unwrap(), location, cookies)
    }

    /// POSTs a form with the session's CSRF token: (status, body, Location).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let (st, body, location, _) = self.post_raw(path, &all).await;
        (st, body, location)
    }

    /// Signs in with `key`; returns the Set-Cookie headers of the sign-in.
    pub async fn sign_in(&mut self, key: &str) -> Vec<String> {
        let (st, page, _) = self.get("/dashboard").await;
        assert_eq!(st, 200, "{page}");
        assert!(page.contains(r#"id="sign-in-form""#), "{page}");
        let token = self.csrf.clone();
        let (st, body, location, cookies) = self
            .post_raw("/dashboard/sign_in", &[("csrf", &token), ("api_key", key)])
            .await;
        assert_eq!((st, location.as_str()), (303, "/dashboard"), "{body}");
        let (st, page, _) = self.get("/dashboard").await;
        assert_eq!(st, 200);
        assert!(page.contains("<h1>Lines</h1>"), "{page}");
        cookies
    }
}

/// A request to the API as the holder of `key` (another account than the server's demo).
pub fn as_key(
    s: &Server,
    key: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    s.http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(key)
}

/// Puts the sandbox's test card on the account of `key`.
pub async fn add_card_for(s: &Server, key: &str) {
    let (st, card) = crate::common::send(
        as_key(s, key, reqwest::Method::POST, "/api/v1/billing/card")
            .json(&json!({"source_id": "cnon:card-nonce-ok"})),
    )
    .await;
    assert_eq!(st, 201, "{card}");
}

pub async fn add_card(s: &Server) {
    let (st, card) = s
        .post(
            "/api/v1/billing/card",
            json!({"source_id": "cnon:card-nonce-ok"}),
        )
        .await;
    assert_eq!(st, 201, "{card}");
}

pub async fn lines_of(s: &Server) -> Vec<Value> {
    let (st, list) = s.get("/api/v1/wa/lines").await;
    assert_eq!(st, 200);
    list["data"].as_array().unwrap().clone()
}
