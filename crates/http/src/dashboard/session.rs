//! Signing in and out, the session extractor and CSRF-checked forms.
//!
//! The session secret travels only in the `wagate_session` cookie: `HttpOnly` (no script can
//! read it), `SameSite=Strict` (no other site's page sends it), `Path=/dashboard`, and
//! `Secure` when the server's public URL is https (TLS ends at a proxy in front of wagate).
//! Every form carries the session's CSRF token; a post without the right one is refused with
//! 403 before anything else is read. The sign-in form, which has no session yet, is
//! protected the same way by a random token kept in a short-lived `wagate_signin` cookie
//! (double submit).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use wagate_app::accounts::Principal;
use wagate_app::dashboard;

use super::view::{error_page, DashError};
use crate::AppState;

/// The session cookie.
pub(super) const SESSION_COOKIE: &str = "wagate_session";
/// The sign-in form's double-submit cookie.
pub(super) const SIGNIN_COOKIE: &str = "wagate_signin";

/// A signed-in browser: the account, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(super) struct Dash {
    /// Who is signed in.
    pub principal: Principal,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The session of a request, if it has a live one.
pub(super) async fn current(st: &AppState, headers: &HeaderMap) -> Result<Option<Dash>, DashError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let principal = dashboard::session(&st.app, secret).await?;
    Ok(principal.map(|principal| Dash {
        principal,
        csrf: dashboard::csrf_token(secret),
    }))
}

impl FromRequestParts<AppState> for Dash {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        // A handler taking both `Dash` and `Posted` looks the session up once.
        if let Some(dash) = parts.extensions.get::<Dash>() {
            return Ok(dash.clone());
        }
        match current(st, &parts.headers).await {
            Ok(Some(dash)) => {
                parts.extensions.insert(dash.clone());
                Ok(dash)
            }
            Err(e) => Err(e.into_response()),
            // A page asked for without a session: the sign-in form.
            Ok(None) if parts.method == Method::GET => {
                Err(Redirect::to("/dashboard").into_response())
            }
            Ok(None) => Err(error_page(
                StatusCode::FORBIDDEN,
                "Signed out",
                "Your session has ended (signed out, expired, or its API key was revoked). Sign in again.",
            )),
        }
    }
}

/// A posted form whose CSRF token matched the session's: `T` is the rest of its fields.
#[derive(Debug)]
pub(super) struct Posted<T>(pub T);

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// The 403 of a post without the right CSRF token.
pub(super) fn forged() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form did not come from your dashboard session (its security token is missing or wrong). Reload the page and try again.",
    )
}

/// Reads a urlencoded form: 403 unless its `csrf` field is `expected`, then 422 if the rest
/// does not parse.
async fn read_form<T: DeserializeOwned>(req: Request, expected: &str) -> Result<T, Response> {
    let body = Bytes::from_request(req, &())
        .await
        .map_err(|e| e.into_response())?;
    let csrf: CsrfOnly = serde_urlencoded::from_bytes(&body).map_err(|_| forged())?;
    if !dashboard::csrf_matches(expected, &csrf.csrf) {
        return Err(forged());
    }
    serde_urlencoded::from_bytes(&body).map_err(|e| {
        error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Check the form",
            &format!("The form could not be read: {e}."),
        )
    })
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let dash = Dash::from_request_parts(&mut parts, st).await?;
        let req = Request::from_parts(parts, body);
        read_form(req, &dash.csrf).await.map(Posted)
    }
}

/// Whether cookies must be `Secure`: the server is reached over https.
fn secure(st: &AppState) -> bool {
    st.app.lines.public_url().starts_with("https://")
}

/// A `Set-Cookie` value for the dashboard.
pub(super) fn set_cookie(st: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(st) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are ASCII")
}

/// A fresh random token for the sign-in form.
pub(super) fn signin_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The sign-in form's fields (its `csrf` is checked by [`read_form`]).
#[derive(Debug, Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    api_key: String,
}

/// `POST /dashboard/sign_in`: the API key in, a session cookie out.
pub(super) async fn sign_in(State(st): State<AppState>, req: Request) -> Response {
    let expected = cookie(req.headers(), SIGNIN_COOKIE)
        .unwrap_or_default()
        .to_owned();
    if expected.len() != 32 {
        return forged();
    }
    let form: SignInForm = match read_form(req, &expected).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match dashboard::sign_in(&st.app, &form.api_key).await {
        Ok(Some(opened)) => {
            let max_age = dashboard::SESSION_TTL.as_secs();
            let mut resp = Redirect::to("/dashboard").into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&st, SESSION_COOKIE, &opened.secret, max_age),
            );
            h.append(header::SET_COOKIE, set_cookie(&st, SIGNIN_COOKIE, "", 0));
            resp
        }
        Ok(None) => super::lines::sign_in_page(
            &st,
            StatusCode::UNAUTHORIZED,
            Some("That API key is not valid (unknown or revoked)."),
        ),
        Err(e) => DashError::from(e).into_response(),
    }
}

/// `POST /dashboard/sign_out`: ends the session and forgets the cookie.
pub(super) async fn sign_out(State(st): State<AppState>, req: Request) -> Response {
    let secret = cookie(req.headers(), SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let expected = dashboard::csrf_token(&secret);
    if let Err(r) = read_form::<CsrfOnly>(req, &expected).await {
        return r;
    }
    if let Err(e) = dashboard::sign_out(&st.app, &secret).await {
        return DashError::from(e).into_response();
    }
    let mut resp = Redirect::to("/dashboard").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, SESSION_COOKIE, "", 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; wagate_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
