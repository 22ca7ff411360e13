//! Bearer tokens: the admin token for `/admin/*` and the optional subscriber
//! token for `GET /events`.
//!
//! Tokens are compared in constant time (`subtle`), so response timing does
//! not reveal how many leading bytes of a guess were right. Only the length
//! can leak, which a random 32-byte token makes worthless to an attacker.
//! The admin token is read from `Authorization: Bearer <token>` only; the
//! subscriber token is also accepted as `?token=` because a browser's
//! `EventSource` cannot set headers.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// A secret compared in constant time. Its `Debug` output hides the value.
#[derive(Clone)]
pub struct Token {
    secret: Box<[u8]>,
    locked: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token with this secret value.
    pub fn new(secret: impl AsRef<str>) -> Token {
        Token {
            secret: secret.as_ref().as_bytes().into(),
            locked: false,
        }
    }

    /// A token nothing matches (locks a route shut).
    pub fn locked() -> Token {
        Token {
            secret: Box::default(),
            locked: true,
        }
    }

    /// A fresh random token: 32 bytes from the OS, as 64 hex digits.
    ///
    /// # Errors
    ///
    /// When the OS random source fails.
    pub fn random() -> Result<(Token, String), getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok((Token::new(&text), text))
    }

    /// True if `candidate` equals the token (constant time for equal lengths).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        !self.locked && bool::from(self.secret.as_ref().ct_eq(candidate))
    }
}

/// The token in `Authorization: Bearer <token>`, if the header has that form.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

/// Checks the admin token: `Authorization: Bearer` must match.
pub(crate) fn check_admin(token: &Token, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(candidate) if token.matches(candidate) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("wrong admin token")),
        None => Err(ApiError::unauthorized(
            "admin routes need Authorization: Bearer <token>",
        )),
    }
}

/// Checks the subscriber token, from the header or from `?token=`.
pub(crate) fn check_subscriber(
    token: &Token,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), ApiError> {
    let candidate = bearer(headers).or(query_token.map(str::as_bytes));
    match candidate {
        Some(candidate) if token.matches(candidate) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("wrong subscriber token")),
        None => Err(ApiError::unauthorized(
            "subscribing needs Authorization: Bearer <token> or ?token=<token>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let token = Token::new("s3cret");
        assert!(check_admin(&token, &headers("Bearer s3cret")).is_ok());
        assert!(check_admin(&token, &headers("bearer s3cret")).is_ok());
        assert!(check_admin(&token, &headers("Bearer s3cre")).is_err());
        assert!(check_admin(&token, &headers("Basic s3cret")).is_err());
        assert!(check_admin(&token, &headers("Bear")).is_err());
        assert!(check_admin(&token, &HeaderMap::new()).is_err());
    }

    #[test]
    fn subscriber_token_may_come_from_the_query() {
        let token = Token::new("t");
        assert!(check_subscriber(&token, &HeaderMap::new(), Some("t")).is_ok());
        assert!(check_subscriber(&token, &HeaderMap::new(), Some("x")).is_err());
        assert!(check_subscriber(&token, &HeaderMap::new(), None).is_err());
    }

    #[test]
    fn random_tokens_differ() {
        let (a, text_a) = Token::random().unwrap();
        let (_, text_b) = Token::random().unwrap();
        assert_eq!(text_a.len(), 64);
        assert_ne!(text_a, text_b);
        assert!(a.matches(text_a.as_bytes()));
        assert!(!Token::locked().matches(b""));
    }
}
