//! Reading request bodies with a size limit and JSON errors that name what is wrong.

use actix_web::web;
use futures_util::StreamExt;

use super::codes::Code;
use super::error::{ApiError, ClientError};
use crate::domain::Fault;

/// Reads the whole body, refusing more than `limit` bytes with 413.
///
/// # Errors
/// 413 `body.too_large`; 400 `body.incomplete` when the upload broke off; 408 `body.timeout`
/// when it did not arrive within [`BODY_DEADLINE`].
pub async fn read_limited(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    tokio::time::timeout(BODY_DEADLINE, read(payload, limit))
        .await
        .map_err(|_| {
            ClientError::new(
                Code::BodyTimeout,
                format!(
                    "The request body did not arrive within {} seconds.",
                    BODY_DEADLINE.as_secs()
                ),
            )
        })?
}

/// Reads the body of an endpoint that takes none, refusing more than 1 KiB with 413: a large
/// body sent there is a client's mistake, better answered than silently dropped.
///
/// # Errors
/// As [`read_limited`].
pub async fn unused(payload: web::Payload) -> Result<(), ApiError> {
    read_limited(payload, 1024).await.map(drop)
}

/// How long a JSON body may take to arrive: a slow sender must not hold a worker for ever.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

async fn read(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ClientError::new(
                Code::BodyIncomplete,
                "The request body could not be read completely.",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ClientError::new(
                Code::BodyTooLarge,
                format!("The request body may be at most {limit} bytes."),
            )
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON object.
///
/// # Errors
/// 400 `body.invalid_json` or `body.not_object`.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ClientError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ClientError::new(
            Code::BodyNotObject,
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(ClientError::new(
            Code::BodyInvalidJson,
            format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )),
    }
}

/// Parses a JSON object into a typed body (one with `#[serde(deny_unknown_fields)]`).
///
/// # Errors
/// 400 `body.invalid_json`/`body.not_object`, or `body.invalid` naming the member at fault.
/// The message never echoes the values sent (they may be personal data).
pub fn typed<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    let map = json_object(bytes)?;
    serde_path_to_error::deserialize(serde_json::Value::Object(map)).map_err(
        |e: serde_path_to_error::Error<serde_json::Error>| {
            // The body's own member at fault, where the path reaches into it; a missing or
            // unknown member of the body itself is named by serde's message instead.
            let member = e.path().iter().find_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            let message = e.inner().to_string();
            let named = ["missing field `", "unknown field `"]
                .iter()
                .find_map(|prefix| message.strip_prefix(prefix))
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned);
            let field = member
                .or(named)
                .map(|f| f.chars().take(64).collect::<String>());
            let mut error = ClientError::new(
                Code::BodyInvalid,
                "The request body does not have the expected fields and types; see the API description.",
            );
            if let Some(field) = field {
                error = error.with_field(field);
            }
            error
        },
    )
}

/// A string member: `Ok(None)` when absent, null or empty.
///
/// # Errors
/// 400 `<field>.type` when it is not a string.
pub fn optional_string<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<Option<&'a str>, ClientError> {
    match map.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ClientError::fault(
            field,
            Fault::Type,
            "This field must be a string.",
        )),
    }
}

/// A boolean member: `false` when absent or null.
///
/// # Errors
/// 400 `<field>.type` when it is not a boolean.
pub fn optional_bool(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<bool, ClientError> {
    match map.get(field) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ClientError::fault(
            field,
            Fault::Type,
            "This field must be true or false.",
        )),
    }
}

/// A required string member.
///
/// # Errors
/// 400 `<field>.required` or `<field>.type`.
pub fn required_string<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<&'a str, ClientError> {
    optional_string(map, field)?
        .ok_or_else(|| ClientError::fault(field, Fault::Required, "This field is required."))
}

/// Rejects members not in `known` (typos must not be silently ignored).
///
/// # Errors
/// 400 `body.unknown_field` naming the first unknown member.
pub fn only_known(
    map: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
) -> Result<(), ClientError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(ClientError::new(
            Code::BodyUnknownField,
            "This field is not part of the request; check its spelling.",
        )
        .with_field(unknown.chars().take(64).collect::<String>())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialised")]
    struct Body {
        name: String,
        #[serde(default)]
        days: Option<u32>,
        #[serde(default)]
        nested: Option<Nested>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialised")]
    struct Nested {
        flag: bool,
    }

    fn field_of(json: &str) -> (String, Option<String>) {
        let error = typed::<Body>(json.as_bytes()).unwrap_err();
        let body = error.body;
        (body.code.into_owned(), body.field.map(|f| f.into_owned()))
    }

    #[test]
    fn a_typed_body_names_the_member_at_fault_never_its_value() {
        assert!(typed::<Body>(br#"{"name": "a", "days": 3}"#).is_ok());
        let invalid = |field: &str| ("body.invalid".to_owned(), Some(field.to_owned()));
        assert_eq!(field_of(r#"{"days": 3}"#), invalid("name"));
        assert_eq!(field_of(r#"{"name": "a", "colour": 1}"#), invalid("colour"));
        assert_eq!(field_of(r#"{"name": 98765, "days": 3}"#), invalid("name"));
        assert_eq!(
            field_of(r#"{"name": "a", "days": -12345}"#),
            invalid("days")
        );
        assert_eq!(field_of(r#"{"days": 4.5, "name": "a"}"#), invalid("days"));
        assert_eq!(
            field_of(r#"{"name": "a", "nested": {"flag": "yes"}}"#),
            invalid("nested")
        );
        assert_eq!(
            field_of(r#"{"name": "a", "nested": {"flag": true, "flga": true}}"#),
            invalid("nested")
        );
        assert_eq!(
            field_of(r#"{"name": "a", "nested": {}}"#),
            invalid("nested")
        );
        assert_eq!(field_of(r#"{"name": ["a\nb"]}"#), invalid("name"));
    }
}
