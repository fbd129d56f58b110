//! How failures become HTTP answers.
//!
//! A 4xx body names a stable machine code, the field at fault and a message a person can act on.
//! A 5xx body is fixed text: the cause goes to the log with the request's span, never to the
//! caller. "The database cannot be reached" is 503 (retry later), anything else 500.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::Invalid;

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
}

/// A caller's mistake: status, stable code, message, field.
#[derive(Debug)]
pub struct ClientError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ClientError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                field: None,
            },
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// A field that failed its domain validation: code `<field>.<kind>`.
    pub fn invalid(field: &'static str, invalid: Invalid) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("{field}.{}", invalid.kind),
            invalid.message,
        )
        .with_field(field)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", .0.body.message)]
    Client(ClientError),
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("unexpected failure")]
    Unexpected(#[source] anyhow::Error),
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        ApiError::Client(error)
    }
}

impl From<anyhow::Error> for ApiError {
    /// Classifies by meaning: lost connections and pool exhaustion are 503, the rest 500.
    fn from(error: anyhow::Error) -> Self {
        if crate::store::is_unavailable(&error) || crate::store::is_timeout(&error) {
            ApiError::Unavailable(error)
        } else {
            ApiError::Unexpected(error)
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Client(e) => e.status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let fixed;
        let body = match self {
            ApiError::Client(e) => &e.body,
            ApiError::Unavailable(cause) => {
                tracing::warn!(
                    error = crate::store::errors::describe(cause),
                    "database unavailable"
                );
                fixed = ErrorBody {
                    code: "service.unavailable".into(),
                    message: "The service cannot reach its database right now. Try again in a few seconds.".into(),
                    field: None,
                };
                &fixed
            }
            ApiError::Unexpected(cause) => {
                tracing::error!(
                    error = crate::store::errors::describe(cause),
                    "unexpected failure"
                );
                fixed = ErrorBody {
                    code: "internal".into(),
                    message: "An internal error occurred. It has been logged; try again or contact the operator.".into(),
                    field: None,
                };
                &fixed
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header(("Retry-After", "5"));
            }
            ApiError::Client(ClientError {
                retry_after: Some(seconds),
                ..
            }) => {
                response.insert_header(("Retry-After", seconds.to_string()));
            }
            _ => {}
        }
        response.json(Envelope { error: body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.error_response();
        let status = response.status();
        let bytes = response.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn unexpected_errors_hide_their_cause() {
        let (status, body) =
            body_of(anyhow::anyhow!("relation \"coverages\" has secret detail").into());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        assert!(!body.to_string().contains("secret detail"));
    }

    #[test]
    fn pool_timeouts_are_503() {
        let cause = anyhow::Error::new(deadpool_postgres::PoolError::Timeout(
            deadpool_postgres::TimeoutType::Wait,
        ));
        let (status, body) = body_of(cause.into());
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "service.unavailable");
    }

    #[test]
    fn client_errors_carry_code_and_field() {
        let invalid = Invalid {
            kind: "check_digit",
            message: "the check digit does not match",
        };
        let (status, body) = body_of(ClientError::invalid("insurer_number", invalid).into());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "insurer_number.check_digit");
        assert_eq!(body["error"]["field"], "insurer_number");
    }
}
