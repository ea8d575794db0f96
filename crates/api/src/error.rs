//! The error contract between the daemon and its callers.
//!
//! An [`ApiError`] is what every failed request becomes on the wire:
//! `{ "error": { "code": "not_found", "message": "..." } }`. Its message is
//! always a single line (constructors fold line breaks), so the CLI can print
//! it after `bulkhead: ` as is. [`ErrorCode`] decides the HTTP status.

use serde::{Deserialize, Serialize};

/// What kind of failure an [`ApiError`] reports; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a value is invalid (400).
    BadRequest,
    /// The caller's uid is not allowed to use the API (403).
    Forbidden,
    /// The named object or route does not exist (404).
    NotFound,
    /// The request clashes with existing state, e.g. a name in use (409).
    Conflict,
    /// The route exists but not for this method (405).
    MethodNotAllowed,
    /// The request was not received in time (408).
    RequestTimeout,
    /// The request body is over the route's limit (413).
    PayloadTooLarge,
    /// The daemon failed; not the caller's fault (500).
    Internal,
    /// The daemon cannot serve now, e.g. still reconciling (503).
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status code this error is sent with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The code a bare HTTP status stands for (used when a body is unreadable).
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            408 => ErrorCode::RequestTimeout,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            503 => ErrorCode::Unavailable,
            400..=499 => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}

/// A failed request: a code and a one-line message meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// One line, naming the field, the value and what is allowed where it can.
    pub message: String,
    /// The request field the error is about (`ip`, `netns_path`,
    /// `local_ports`) when one value was refused: clients test this, not
    /// the message's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// Builds an error; line breaks in `message` are folded into `; `.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: one_line(&message.into()),
            field: None,
        }
    }

    /// The same error, about request field `field`.
    pub fn about(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// A 400 error.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// A 404 error.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// A 409 error.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }

    /// A 500 error.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// A 503 error.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }

    /// The JSON body this error is sent as.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            error: self.clone(),
        })
        .unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"unencodable error"}}"#.to_vec()
        })
    }
}

/// The wire envelope of an error: `{ "error": { "code", "message" } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ApiError,
}

/// Folds a possibly multi-line text into one line, trimming each piece.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_folded_to_one_line() {
        let e = ApiError::bad_request("first\n  second\r\n\nthird ");
        assert_eq!(e.message, "first; second; third");
    }

    #[test]
    fn wire_form_uses_snake_case_codes() {
        let body = ApiError::not_found("network \"x\" does not exist").to_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "network \"x\" does not exist");
    }

    #[test]
    fn status_round_trips_for_every_code() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::RequestTimeout,
            ErrorCode::Conflict,
            ErrorCode::MethodNotAllowed,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
        ] {
            assert_eq!(ErrorCode::from_http_status(code.http_status()), code);
        }
    }
}
