//! How failures become HTTP answers.
//!
//! A 4xx body names a stable machine code, the field at fault and a message a person can act on.
//! A 5xx body is fixed text: the cause goes to the log with the request's span, never to the
//! caller. "The database cannot be reached" is 503 (retry later), anything else 500.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::codes::{fault_remedies, Code};
use crate::domain::{Fault, Invalid};

/// Why a request was refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, dotted, lower case; each operation lists those it may answer.
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    /// For a person; never repeats the rejected input.
    #[schema(value_type = String)]
    pub message: Cow<'static, str>,
    /// The request member or header at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub field: Option<Cow<'static, str>>,
    /// `remedy` and `vendor_remedy`.
    #[serde(flatten)]
    pub remedies: Remedies,
}

/// What to do about an error: `remedy` for the desk's staff (Japanese), `vendor_remedy` for the
/// client's developer (English). Kept as the code it comes from, so that an error stays small.
#[derive(Clone, Copy, Debug)]
pub enum Remedies {
    Code(Code),
    Fault(Fault),
}

impl Remedies {
    pub fn texts(self) -> (&'static str, &'static str) {
        match self {
            Remedies::Code(code) => (code.spec().remedy, code.spec().vendor_remedy),
            Remedies::Fault(fault) => fault_remedies(fault),
        }
    }
}

impl Serialize for Remedies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (remedy, vendor_remedy) = self.texts();
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("remedy", remedy)?;
        map.serialize_entry("vendor_remedy", vendor_remedy)?;
        map.end()
    }
}

impl utoipa::PartialSchema for Remedies {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .property(
                "remedy",
                text("What the desk's staff should do (Japanese)."),
            )
            .property(
                "vendor_remedy",
                text("What the client's software must change (English)."),
            )
            .required("remedy")
            .required("vendor_remedy")
            .into()
    }
}

impl utoipa::ToSchema for Remedies {}

impl ErrorBody {
    fn of(code: Code, message: Cow<'static, str>) -> Self {
        let spec = code.spec();
        Self {
            code: spec.code.into(),
            message,
            field: spec.field.map(Cow::Borrowed),
            remedies: Remedies::Code(code),
        }
    }
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
    /// An error of the table ([`Code`]): its status, and its field where the table fixes one.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: code.status(),
            body: ErrorBody::of(code, message.into()),
            retry_after: None,
        }
    }

    /// 400 `<field>.<fault>` naming `field`: a member that failed its validation.
    pub fn fault(
        field: impl Into<Cow<'static, str>>,
        fault: Fault,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        let field = field.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                code: format!("{field}.{fault}").into(),
                message: message.into(),
                field: Some(field),
                remedies: Remedies::Fault(fault),
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

    /// A field that failed its domain validation: code `<field>.<fault>`.
    pub fn invalid(field: &'static str, invalid: Invalid) -> Self {
        Self::fault(field, invalid.kind, invalid.message)
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
                fixed = ErrorBody::of(
                    Code::ServiceUnavailable,
                    "The service cannot reach its database right now. Try again in a few seconds."
                        .into(),
                );
                &fixed
            }
            ApiError::Unexpected(cause) => {
                tracing::error!(
                    error = crate::store::errors::describe(cause),
                    "unexpected failure"
                );
                fixed = ErrorBody::of(
                    Code::Internal,
                    "An internal error occurred. It has been logged; try again or contact the operator.".into(),
                );
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
            kind: Fault::CheckDigit,
            message: "the check digit does not match",
        };
        let (status, body) = body_of(ClientError::invalid("insurer_number", invalid).into());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "insurer_number.check_digit");
        assert_eq!(body["error"]["field"], "insurer_number");
    }
}
