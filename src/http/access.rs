//! Who may open a stream, and what it receives: the one decision both
//! `GET /events` paths (the router's handler and `ssehub serve`'s streaming
//! front) make before subscribing.
//!
//! # Credentials
//!
//! One credential is read per request, the first present of:
//! `Authorization: Bearer <credential>`, `?token=<credential>`, the cookie
//! `ssehub_token` (what a browser's `EventSource` can send).
//!
//! | configured | credential accepted |
//! |---|---|
//! | nothing | none needed |
//! | `--subscriber-token` only | that token (401 `unauthorized` otherwise) |
//! | `--jwt-key` (with or without the subscriber token) | the subscriber token, or a valid signed token (401 `invalid_token` otherwise) |
//!
//! A signed token fixes the stream's type filter when it opens
//! ([`Grant::restrict_subscription`], applied by the admission module) and
//! when the stream must end (its `exp`); a shared subscriber token grants
//! every type for as long as the client stays.

use axum::http::{header, HeaderMap};

use super::auth::{self, Token};
use super::error::ApiError;
use super::jwt::{invalid_token, Grant, JwtKey};
use super::query::query_token;

/// The cookie a browser's `EventSource` (`withCredentials`) sends the token in.
pub const TOKEN_COOKIE: &str = "ssehub_token";

/// The credential check of every subscriber-facing route (`/events`, the
/// live page and its feed): the grant of a signed token, `None` when no
/// credential is configured or the shared subscriber token was presented.
///
/// # Errors
///
/// 401 `unauthorized` for a missing or wrong subscriber token (no JWT key);
/// 401 `invalid_token` for a missing, malformed, badly signed or expired
/// signed token.
pub(crate) fn subscriber_grant(
    subscriber_token: Option<&Token>,
    jwt: Option<&JwtKey>,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Grant>, ApiError> {
    match (subscriber_token, jwt) {
        (None, None) => Ok(None),
        (Some(token), None) => {
            auth::check_subscriber(token, headers, query_token(query).as_deref())?;
            Ok(None)
        }
        (token, Some(jwt)) => {
            let credential = credential(headers, query).ok_or_else(|| {
                invalid_token(
                    "subscribing needs a token: Authorization: Bearer <token>, ?token=<token> \
                     or the ssehub_token cookie",
                )
            })?;
            if token.is_some_and(|token| token.matches(credential.as_bytes())) {
                Ok(None)
            } else {
                jwt.verify(&credential).map(Some)
            }
        }
    }
}

/// Checks who publishes: the admin token (`None`: may publish anything), or,
/// with a JWT key configured, a signed token in `Authorization: Bearer`
/// whose `publish` claim the caller checks against the batch. Only the header
/// is read for publishing (no query, no cookie: a cookie would let another
/// site's page publish with the user's credentials).
///
/// # Errors
///
/// 401 `unauthorized` without a bearer or with a wrong admin token and no
/// JWT key; 401 `invalid_token` for a bearer that is neither the admin token
/// nor a valid signed token.
pub(crate) fn authorize_publisher(
    admin_token: &Token,
    jwt: Option<&JwtKey>,
    headers: &HeaderMap,
) -> Result<Option<Grant>, ApiError> {
    let refused = match auth::check_admin(admin_token, headers) {
        Ok(()) => return Ok(None),
        Err(refused) => refused,
    };
    match (jwt, auth::bearer(headers)) {
        (Some(jwt), Some(candidate)) => {
            let text = std::str::from_utf8(candidate)
                .map_err(|_| invalid_token("the bearer token is not ASCII"))?;
            Ok(Some(jwt.verify(text)?))
        }
        _ => Err(refused),
    }
}

/// The request's credential: the bearer header, else `?token=`, else the
/// `ssehub_token` cookie.
fn credential(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(bearer) = auth::bearer(headers) {
        return Some(String::from_utf8_lossy(bearer).into_owned());
    }
    if let Some(token) = query_token(query) {
        return Some(token);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_credential_comes_from_header_then_query_then_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ssehub_token=from-cookie; b=2"),
        );
        assert_eq!(
            credential(&headers, Some("x=1")).as_deref(),
            Some("from-cookie")
        );
        assert_eq!(
            credential(&headers, Some("token=from-query")).as_deref(),
            Some("from-query")
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer from-header"),
        );
        assert_eq!(
            credential(&headers, Some("token=from-query")).as_deref(),
            Some("from-header")
        );
        assert_eq!(credential(&HeaderMap::new(), None), None);
    }
}
