//! Signed tokens (JWT): per-subscriber and per-publisher authorization.
//!
//! A backend that knows its users signs each one a token; `ssehub` checks the
//! signature with the configured key and reads what the token grants:
//!
//! | claim | meaning |
//! |---|---|
//! | `exp` | required; seconds since the Unix epoch. An open stream ends at this time with `: end token_expired`. |
//! | `subscribe` | the event types the bearer may receive (`["*"]`: all). Absent or empty: none. |
//! | `publish` | the event types the bearer may publish with `POST /admin/events` (`["*"]`: all). Absent or empty: none. |
//! | `sub` | optional; who the bearer is, for the log lines. |
//!
//! # Rules
//!
//! - The key is configured once ([`JwtKey::new`]): an HMAC secret for
//!   `HS256`/`HS384`/`HS512`, or a PEM public key for the RSA, ECDSA and
//!   EdDSA algorithms. Only that one algorithm is accepted: a token whose
//!   header names another (`none` included, or `HS256` signed with a public
//!   key's text) is refused before its signature is looked at.
//! - Validation is `jsonwebtoken`'s, with no leeway: a token is expired the
//!   second its `exp` passes. A claim of the wrong JSON type (`exp` as a
//!   string, `subscribe` as a string) makes the token malformed.
//! - Every refusal of a token is `401 invalid_token` with
//!   `WWW-Authenticate: Bearer error="invalid_token"`; a valid token asking
//!   for a type it does not grant is `403 forbidden_type`.
//! - The grant is evaluated once, when a stream opens or a batch is
//!   published; nothing per event.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ApiError;
use crate::error::{ConfigError, Setting};
use crate::Event;

/// The key that verifies signed tokens, and the one algorithm it accepts.
#[derive(Clone)]
pub struct JwtKey {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("algorithm", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// A key for `algorithm` (`HS256`, `RS256`, `ES256`, `EdDSA`, …): for the
    /// HMAC algorithms `key` is the secret itself, for the others the path of
    /// a PEM file holding the public key.
    ///
    /// # Errors
    ///
    /// An unknown algorithm name, an empty secret, an unreadable file or a
    /// PEM that is not a public key of the algorithm's family.
    pub fn new(algorithm: &str, key: &str) -> Result<JwtKey, ConfigError> {
        Self::new_from(algorithm, key).map_err(|reason| ConfigError::new(Setting::JwtKey, reason))
    }

    fn new_from(algorithm: &str, key: &str) -> Result<JwtKey, String> {
        let algorithm: Algorithm = algorithm.trim().parse().map_err(|_| {
            format!(
                "unknown JWT algorithm {algorithm:?} (HS256, HS384, HS512, RS256, RS384, RS512, \
                 PS256, PS384, PS512, ES256, ES384, EdDSA)"
            )
        })?;
        let decoding = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if key.is_empty() {
                    return Err("the JWT secret is empty".to_owned());
                }
                DecodingKey::from_secret(key.as_bytes())
            }
            _ => {
                let pem = std::fs::read(key)
                    .map_err(|error| format!("cannot read the JWT public key {key:?}: {error}"))?;
                Self::public_key(algorithm, &pem)
            }
        }
        .map_err(|error| format!("unusable JWT key for {algorithm:?}: {error}"))?;
        Ok(JwtKey::with_decoding_key(algorithm, decoding))
    }

    /// A key for `algorithm` from the PEM text of a public key.
    ///
    /// # Errors
    ///
    /// An HMAC algorithm (it has no public key), or a PEM that is not a
    /// public key of the algorithm's family.
    pub fn from_public_pem(algorithm: Algorithm, pem: &[u8]) -> Result<JwtKey, ConfigError> {
        let decoding = Self::public_key(algorithm, pem).map_err(|error| {
            ConfigError::new(
                Setting::JwtKey,
                format!("unusable JWT key for {algorithm:?}: {error}"),
            )
        })?;
        Ok(JwtKey::with_decoding_key(algorithm, decoding))
    }

    fn public_key(
        algorithm: Algorithm,
        pem: &[u8],
    ) -> Result<DecodingKey, jsonwebtoken::errors::Error> {
        match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into())
            }
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => DecodingKey::from_rsa_pem(pem),
        }
    }

    fn with_decoding_key(algorithm: Algorithm, key: DecodingKey) -> JwtKey {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        // No audience is configured; a token naming one is still valid here.
        validation.validate_aud = false;
        JwtKey { key, validation }
    }

    /// Verifies `token` and returns what it grants.
    ///
    /// # Errors
    ///
    /// `401 invalid_token` for a malformed, badly signed or expired token,
    /// or one signed with another algorithm.
    pub fn verify(&self, token: &str) -> Result<Grant, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |error| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                    ErrorKind::InvalidSignature => "the token's signature is wrong".to_owned(),
                    ErrorKind::InvalidAlgorithm => {
                        "the token is signed with another algorithm".to_owned()
                    }
                    _ => format!("malformed token: {error}"),
                };
                invalid_token(why)
            },
        )?;
        let claims = data.claims;
        Ok(Grant {
            subscribe: Types::from_claim(claims.subscribe),
            publish: Types::from_claim(claims.publish),
            subject: claims.sub,
            expires: SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp)),
        })
    }
}

/// The claims ssehub reads (others are ignored).
#[derive(Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    subscribe: Option<Vec<String>>,
    #[serde(default)]
    publish: Option<Vec<String>>,
    #[serde(default)]
    sub: Option<String>,
}

/// A set of event types a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Types {
    /// Every type (`["*"]`).
    All,
    /// Only these (possibly none).
    Only(Vec<String>),
}

impl Types {
    fn from_claim(claim: Option<Vec<String>>) -> Types {
        let list = claim.unwrap_or_default();
        if list.iter().any(|t| t == "*") {
            return Types::All;
        }
        let mut seen = HashSet::new();
        Types::Only(
            list.into_iter()
                .filter(|t| !t.is_empty() && seen.insert(t.clone()))
                .collect(),
        )
    }

    /// True if `event_type` is in the set.
    pub fn allows(&self, event_type: &str) -> bool {
        match self {
            Types::All => true,
            Types::Only(list) => list.iter().any(|t| t == event_type),
        }
    }
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Types the bearer may receive.
    pub subscribe: Types,
    /// Types the bearer may publish.
    pub publish: Types,
    /// The `sub` claim, for the logs.
    pub subject: Option<String>,
    /// When the token expires (`None`: beyond what the clock can hold).
    pub expires: Option<SystemTime>,
}

impl Grant {
    /// Fixes a subscription's type filter to what the token grants: an empty
    /// request becomes the granted types; a request naming a type outside
    /// them is refused.
    ///
    /// # Errors
    ///
    /// `403 forbidden_type` for a type the token does not grant, or when it
    /// grants none.
    pub fn restrict_subscription(&self, requested: &mut Vec<String>) -> Result<(), ApiError> {
        let Types::Only(allowed) = &self.subscribe else {
            return Ok(());
        };
        if allowed.is_empty() {
            return Err(forbidden_type(
                "the token grants no event types to subscribe to",
            ));
        }
        if requested.is_empty() {
            requested.clone_from(allowed);
            return Ok(());
        }
        match requested.iter().find(|t| !allowed.contains(t)) {
            Some(denied) => Err(forbidden_type(format!(
                "the token does not grant the event type {denied:?}"
            ))),
            None => Ok(()),
        }
    }

    /// Checks that the token may publish every event of a batch.
    ///
    /// # Errors
    ///
    /// `403 forbidden_type` naming the first event whose type is not granted.
    pub fn check_publish(&self, events: &[Event]) -> Result<(), ApiError> {
        match events
            .iter()
            .enumerate()
            .find(|(_, event)| !self.publish.allows(event.event_type()))
        {
            Some((index, event)) => Err(forbidden_type(format!(
                "event {index}: the token does not grant publishing the event type {:?}; \
                 nothing was published",
                event.event_type()
            ))),
            None => Ok(()),
        }
    }

    /// The `sub` claim, or `-`, for log lines.
    pub fn subject_for_log(&self) -> &str {
        self.subject.as_deref().unwrap_or("-")
    }
}

/// 401 `invalid_token` (with `WWW-Authenticate: Bearer error="invalid_token"`).
pub fn invalid_token(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
}

/// 403 `forbidden_type`.
pub fn forbidden_type(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden_type", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn sign(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k").expect("hmac key"),
        )
        .unwrap()
    }

    #[test]
    fn claims_become_a_grant() {
        let key = JwtKey::new("HS256", "k").unwrap();
        let exp = now() + 60;
        let grant = key
            .verify(&sign(serde_json::json!({
                "exp": exp, "subscribe": ["a", "b", "a"], "publish": ["*"], "sub": "u1"
            })))
            .unwrap();
        assert_eq!(grant.subscribe, Types::Only(vec!["a".into(), "b".into()]));
        assert_eq!(grant.publish, Types::All);
        assert_eq!(grant.subject.as_deref(), Some("u1"));
        assert_eq!(
            grant.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
        );
    }

    #[test]
    fn wrong_claim_types_and_missing_exp_are_invalid() {
        let key = JwtKey::new("HS256", "k").unwrap();
        for claims in [
            serde_json::json!({ "subscribe": ["a"] }),
            serde_json::json!({ "exp": (now() + 60).to_string(), "subscribe": ["a"] }),
            serde_json::json!({ "exp": now() + 60, "subscribe": "a" }),
            serde_json::json!({ "exp": now() - 1, "subscribe": ["a"] }),
        ] {
            let error = key.verify(&sign(claims.clone())).unwrap_err();
            assert_eq!(error.code, "invalid_token", "{claims}");
        }
    }

    #[test]
    fn restriction_rules() {
        let grant = |subscribe| Grant {
            subscribe,
            publish: Types::Only(vec![]),
            subject: None,
            expires: None,
        };
        let only_a = grant(Types::Only(vec!["a".into()]));
        let mut requested = vec![];
        only_a.restrict_subscription(&mut requested).unwrap();
        assert_eq!(requested, ["a"]);
        let mut requested = vec!["a".into(), "b".into()];
        assert_eq!(
            only_a
                .restrict_subscription(&mut requested)
                .unwrap_err()
                .code,
            "forbidden_type"
        );
        let none = grant(Types::Only(vec![]));
        assert!(none.restrict_subscription(&mut vec![]).is_err());
        let mut requested = vec![];
        grant(Types::All)
            .restrict_subscription(&mut requested)
            .unwrap();
        assert!(requested.is_empty(), "all types stays an empty filter");
        let events = [Event::new("a", "{}")];
        assert_eq!(
            only_a.check_publish(&events).unwrap_err().code,
            "forbidden_type"
        );
    }

    #[test]
    fn unknown_algorithms_and_empty_secrets_are_config_errors() {
        assert!(JwtKey::new("none", "k").is_err());
        assert!(JwtKey::new("HS256", "").is_err());
        assert!(JwtKey::new("RS256", "/nonexistent/key.pem").is_err());
    }
}
