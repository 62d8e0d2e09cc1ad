//! The API's error type: every failure a handler can answer with, each mapped to an HTTP status
//! and a JSON body `{"error": {"code", "message", "field"?}}` in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; `field` names the part that is wrong when there is one.
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A failure its own module describes (a plugin's): status, code and, when a limit was
    /// hit, which one.
    #[error("{message}")]
    Described { status: StatusCode, code: &'static str, message: String, limit: Option<&'static str> },
    /// Over a rate limit: answered 429 with `Retry-After` (seconds) and the limit's name.
    #[error("{message}")]
    RateLimited { limit: &'static str, message: String, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A failed check of a request's value: the field at fault (a path inside the body) and what is
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

pub type Check = Result<(), Invalid>;

pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), message: message.into() }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::field(e.field, e.message)
    }
}

impl ApiError {
    /// A bad value in the named field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid { field: Some(field.into()), message: message.into() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Described { status, code, .. } => (*status, code),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.to_json();
        let mut response = (status, Json(json!({ "error": body }))).into_response();
        if let ApiError::RateLimited { retry_after, .. } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        response
    }
}

impl ApiError {
    /// The status and the `error` object of the response body.
    pub fn to_json(&self) -> (StatusCode, serde_json::Value) {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = json!({ "code": code, "message": self.to_string() });
        match &self {
            ApiError::Invalid { field: Some(field), .. } => body["field"] = json!(field),
            ApiError::Described { limit: Some(limit), .. } | ApiError::RateLimited { limit, .. } => {
                body["limit"] = json!(limit)
            }
            _ => {}
        }
        (status, body)
    }
}
