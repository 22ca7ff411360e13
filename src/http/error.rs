//! The one JSON error envelope every HTTP error uses:
//!
//! ```json
//! {"statusCode": 410, "error": "Gone", "message": "...", "errorCode": "resume_point_expired"}
//! ```
//!
//! `error` is the status's canonical reason phrase; `errorCode` is a stable
//! snake_case string a client can branch on; `message` is for people and may
//! change. 401 responses carry `WWW-Authenticate: Bearer`, 503 responses
//! `Retry-After: 1`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{PublishError, SubscribeError};

/// An HTTP error: a status, a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code (`errorCode` in the envelope).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    status_code: u16,
    error: &'a str,
    message: &'a str,
    error_code: &'a str,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 503 `shutting_down`.
    pub fn shutting_down() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the hub is shutting down",
        )
    }

    /// The envelope's JSON text.
    pub fn to_json(&self) -> String {
        let envelope = Envelope {
            status_code: self.status.as_u16(),
            error: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
            error_code: self.code,
        };
        // Serializing a struct of strings and an integer cannot fail.
        serde_json::to_string(&envelope).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.to_json(),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = match self.code {
                "invalid_token" => r#"Bearer error="invalid_token""#,
                _ => "Bearer",
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<SubscribeError> for ApiError {
    fn from(error: SubscribeError) -> ApiError {
        let message = error.to_string();
        match error {
            SubscribeError::Gone(_) => {
                ApiError::new(StatusCode::GONE, "resume_point_expired", message)
            }
            SubscribeError::Shutdown => ApiError::shutting_down(),
            SubscribeError::TooManySubscribers { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_subscribers",
                message,
            ),
            SubscribeError::TooManyTypes { .. } | SubscribeError::InvalidType => {
                ApiError::bad_request(message)
            }
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> ApiError {
        use crate::error::EventError;
        let message = error.to_string();
        match error {
            PublishError::Event(EventError::TooLarge { .. })
            | PublishError::InBatch {
                error: EventError::TooLarge { .. },
                ..
            } => ApiError::too_large(message),
            PublishError::Event(_) | PublishError::InBatch { .. } => ApiError::bad_request(message),
            PublishError::Shutdown => ApiError::shutting_down(),
            PublishError::WriterTaken => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "writer_taken", message)
            }
        }
    }
}

/// The fallback for unknown paths: 404 `not_found`.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The fallback for a known path with another method: 405 `method_not_allowed`.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

#[cfg(feature = "cluster")]
impl From<crate::cluster::ClusterError> for ApiError {
    fn from(error: crate::cluster::ClusterError) -> Self {
        use crate::cluster::ClusterError;
        match error {
            ClusterError::Publish(error) => error.into(),
            ClusterError::Subscribe(error) => error.into(),
            ClusterError::Unavailable(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                format!("the cluster backend cannot be reached: {message}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_contract_fields() {
        let error = ApiError::new(StatusCode::GONE, "resume_point_expired", "gone");
        let json: serde_json::Value = serde_json::from_str(&error.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "statusCode": 410,
                "error": "Gone",
                "message": "gone",
                "errorCode": "resume_point_expired",
            })
        );
    }
}
