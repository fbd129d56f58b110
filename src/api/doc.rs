//! The API description (OpenAPI 3.1), generated when first asked for and served at
//! `GET /openapi.json` and `GET /openapi.yaml`.
//!
//! Nothing in it is written twice. The paths, methods and roles come from the route table
//! ([`super::routes::ROUTES`]); each route's [`Doc`] (beside its handler) adds its prose, its
//! request and its answers; the schemas come from the request and answer types themselves
//! (`utoipa::ToSchema`, with the lengths, patterns and ranges the parsers enforce); the error
//! answers come from the error-code table ([`super::codes`]): every code a route may answer,
//! grouped by status, each error body's `code` held to that list.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::codes::Code;
use super::routes::{Access, Route, ROUTES};
use crate::domain::Fault;

/// The schemas a document refers to, by name.
#[derive(Default)]
pub struct Schemas(BTreeMap<String, Value>);

/// Registers a schema and answers a reference to it.
pub type SchemaFn = fn(&mut Schemas) -> Value;

/// `{"$ref": "#/components/schemas/<T>"}`, registering `T` and every schema it refers to.
///
/// # Panics
/// Two different schemas under one name (two types of the same name in different modules):
/// one would silently describe the other's answers.
pub fn schema<T: ToSchema>(out: &mut Schemas) -> Value {
    let mut refs = Vec::new();
    T::schemas(&mut refs);
    let name = T::name().into_owned();
    refs.push((name.clone(), T::schema()));
    for (name, schema) in refs {
        let schema = to_json(&schema);
        if let Some(known) = out.0.get(&name) {
            assert!(
                *known == schema,
                "two different schemas are named {name}: rename one of the types"
            );
        }
        out.0.insert(name, schema);
    }
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("a schema is plain JSON")
}

/// What a route takes as its body.
#[derive(Debug)]
pub enum Body {
    /// No body (an empty one is accepted; anything else is refused).
    None,
    /// A JSON object of this schema.
    Json(SchemaFn),
    /// A CSV file, described in prose.
    Csv(&'static str),
    /// Either a JSON object of this schema or a CSV file described in prose, by `Content-Type`.
    JsonOrCsv(SchemaFn, &'static str),
}

/// What a successful answer carries.
#[derive(Debug)]
pub enum Content {
    Json(SchemaFn),
    /// FHIR JSON (`application/fhir+json`), or else onshi's error body.
    Fhir(SchemaFn),
    Yaml,
    Text,
    /// A static file of this media type (the reception page and its script and style).
    File(&'static str),
    /// No body (a redirect).
    Empty,
}

/// One successful (or otherwise documented) answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub description: &'static str,
    pub content: Content,
}

/// Where a parameter goes.
#[derive(Clone, Copy, Debug)]
pub enum In {
    Path,
    Query,
    Header,
}

/// A parameter besides the body.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    pub required: bool,
    pub description: &'static str,
    pub schema: fn() -> Value,
}

/// What a route's handler documents about itself.
#[derive(Debug)]
pub struct Doc {
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub body: Body,
    pub replies: &'static [Reply],
    /// The codes of the table this route may answer besides those every route of its kind
    /// answers (authentication, limits, body reading, the database), in groups that routes share.
    pub codes: &'static [&'static [Code]],
    /// The members whose validation may fail as `<member>.<fault>`.
    pub fields: &'static [&'static str],
    pub params: &'static [Param],
}

const PARTY: &[Code] = &[
    Code::AuthMissing,
    Code::AuthMalformed,
    Code::AuthInvalid,
    Code::AuthCertificateMismatch,
    Code::AuthForbidden,
    Code::RateLimited,
    Code::RateDailyQuota,
    Code::RateEnumerationSuspected,
];
const HOLDER: &[Code] = &[Code::RateLimited];
const JSON_BODY: &[Code] = &[
    Code::BodyTimeout,
    Code::BodyIncomplete,
    Code::BodyTooLarge,
    Code::BodyNotObject,
    Code::BodyInvalidJson,
    Code::BodyInvalid,
    Code::BodyUnknownField,
];
const NO_BODY: &[Code] = &[Code::BodyTimeout, Code::BodyIncomplete, Code::BodyTooLarge];
const ALWAYS: &[Code] = &[Code::Internal, Code::ServiceUnavailable];

/// Every code `route` may answer, in table order.
pub fn codes_of(route: &Route) -> Vec<Code> {
    let doc = route.doc;
    let mut codes: Vec<Code> = ALWAYS.to_vec();
    match route.access {
        Access::Anyone => {}
        Access::CardHolder => codes.extend(HOLDER),
        Access::AnyParty | Access::Roles(_) | Access::RolesAfterBody(_) => codes.extend(PARTY),
    }
    match doc.body {
        Body::Json(_) | Body::JsonOrCsv(..) => codes.extend(JSON_BODY),
        Body::None if route.access != Access::Anyone => codes.extend(NO_BODY),
        Body::None | Body::Csv(_) => {}
    }
    codes.extend(doc.codes.iter().copied().flatten());
    Code::ALL
        .iter()
        .copied()
        .filter(|c| codes.contains(c))
        .collect()
}

/// The whole description, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut schemas = Schemas::default();
    schema::<super::error::ErrorBody>(&mut schemas);
    let mut paths = Map::new();
    for route in ROUTES {
        let path = openapi_path(route.path);
        let item = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[route.method.as_str().to_lowercase()] = operation(route, &mut schemas);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "onshi",
            "version": "1",
            "summary": "Online insurance-eligibility confirmation and per-purpose health IDs.",
            "description": INTRODUCTION,
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "servers": [{
            "url": "http://127.0.0.1:8080",
            "description": "`onshi serve` with its default `ONSHI_LISTEN`",
        }],
        "security": [{ "bearerAuth": [] }],
        "tags": TAGS.iter().map(|(name, description)| json!({
            "name": name, "description": description,
        })).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The party's token, as `POST /v1/parties` answered it.",
                },
            },
            "schemas": schemas.0,
        },
    })
}

const INTRODUCTION: &str = "\
HTTP/1.1 JSON API. Every `/v1` call carries `Authorization: Bearer <token>` except the \
`/v1/self/` routes, which a card's holder calls with the card's signature; a token belongs to \
one registered party whose role is `facility`, `claims`, `insurer` or `admin`. Each operation \
names the roles it admits; any other role gets 403 `auth.forbidden`.

Every 4xx/5xx body is `{\"error\": {\"code\", \"message\", \"field\"?, \"remedy\", \
\"vendor_remedy\"}}`: `code` is stable, dotted and lower case (`<field>.<fault>` for a member \
that failed validation, e.g. `insurer_number.check_digit`), `field` names the request member or \
header at fault where there is one, `message` is for a person, `remedy` tells the desk's staff \
what to do (Japanese) and `vendor_remedy` tells the client's developer what to change \
(English). Each operation lists the codes it may answer under each status. A 5xx body is fixed \
text (`internal`, `service.unavailable`). A bad request changes nothing.

JSON bodies are read up to a per-operation size limit (413 `body.too_large`) and within 30 \
seconds (408 `body.timeout`); an upload that breaks off is 400 `body.incomplete`. A path not \
listed here is 404 `route.not_found`; a listed path asked with a method it does not take is 405 \
`route.method_not_allowed`, with `Allow` naming the methods it takes.

This contract is extended, never broken: new optional members and new endpoints may appear, so \
clients must ignore members they do not know.";

const TAGS: &[(&str, &str)] = &[
    (
        "service",
        "Liveness, readiness and this description; no token.",
    ),
    (
        "eligibility",
        "資格確認 by insured-person number, one or in batches.",
    ),
    ("enrolment", "Coverage changes sent by insurers."),
    ("card", "The My Number card (JPKI) path."),
    (
        "desk",
        "The reception page, no token (it signs in with the facility's token in the browser).",
    ),
    ("parties", "Registered parties and their tokens."),
    ("health-ids", "Per-purpose health identifiers (医療等ID)."),
    (
        "access-log",
        "Who looked at a person's data, for the person (with their card) and administrators.",
    ),
];

/// `/a/{id:\d+}` → `/a/{id}`: actix's parameter patterns are not part of the OpenAPI path.
pub fn openapi_path(path: &str) -> String {
    let (mut out, mut in_param, mut in_pattern) = (String::new(), false, false);
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => (in_param, in_pattern) = (false, false),
            ':' if in_param => in_pattern = true,
            _ => {}
        }
        if !in_pattern {
            out.push(c);
        }
    }
    out
}

fn roles_line(access: Access) -> String {
    match access {
        Access::Anyone => "Roles: anyone, no token.".into(),
        Access::CardHolder => {
            "Roles: the card's holder, no token (the card's signature is the credential).".into()
        }
        Access::AnyParty => "Roles: any registered party (the operation decides further).".into(),
        Access::Roles(roles) | Access::RolesAfterBody(roles) => format!(
            "Roles: {}.",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn operation(route: &Route, schemas: &mut Schemas) -> Value {
    let doc = route.doc;
    let mut op = json!({
        "tags": [doc.tag],
        "operationId": doc.id,
        "summary": doc.summary,
        "description": format!("{}\n\n{}", roles_line(route.access), doc.description),
    });
    if route.access == Access::Anyone || route.access == Access::CardHolder {
        op["security"] = json!([]);
    }
    if !doc.params.is_empty() {
        op["parameters"] = doc
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": match p.location { In::Path => "path", In::Query => "query", In::Header => "header" },
                    "required": p.required,
                    "description": p.description,
                    "schema": (p.schema)(),
                })
            })
            .collect();
    }
    match doc.body {
        Body::None => {}
        Body::Json(schema) => {
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": schema(schemas) } },
            });
        }
        Body::Csv(description) => {
            op["requestBody"] = json!({
                "required": true,
                "description": description,
                "content": { "text/csv": { "schema": { "type": "string" } } },
            });
        }
        Body::JsonOrCsv(schema, description) => {
            op["requestBody"] = json!({
                "required": true,
                "description": description,
                "content": {
                    "application/json": { "schema": schema(schemas) },
                    "text/csv": { "schema": { "type": "string" } },
                },
            });
        }
    }
    let mut responses = Map::new();
    for reply in doc.replies {
        if let Content::Empty = reply.content {
            responses.insert(
                reply.status.to_string(),
                json!({ "description": reply.description }),
            );
            continue;
        }
        let content = match reply.content {
            Content::Json(schema) => {
                json!({ "application/json": { "schema": schema(schemas) } })
            }
            Content::Fhir(schema) => json!({
                "application/fhir+json": { "schema": schema(schemas) },
            }),
            Content::Yaml => json!({ "application/yaml": { "schema": { "type": "string" } } }),
            Content::Text => json!({ "text/plain": { "schema": { "type": "string" } } }),
            Content::File(media) => json!({ media: { "schema": { "type": "string" } } }),
            Content::Empty => Value::Null,
        };
        responses.insert(
            reply.status.to_string(),
            json!({ "description": reply.description, "content": content }),
        );
    }
    let mut by_status: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
    for code in codes_of(route) {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(code);
    }
    for (status, codes) in by_status {
        let fields = if status == 400 { doc.fields } else { &[] };
        let error = error_answer(&codes, fields);
        match responses.get_mut(&status.to_string()) {
            // A documented answer of an error status (a rejected enrolment's report) carries
            // the error body beside its own members.
            Some(documented) => {
                let listed = format!(
                    "{} Error codes: {}",
                    documented["description"].as_str().unwrap_or_default(),
                    error["description"].as_str().unwrap_or_default()
                );
                documented["description"] = Value::String(listed);
                let error_content = error["content"]["application/json"].clone();
                let fhir = doc
                    .replies
                    .iter()
                    .any(|r| r.status == status && matches!(r.content, Content::Fhir(_)));
                if fhir {
                    // Either the FHIR answer (its own media type) or onshi's JSON error body.
                    documented["content"]["application/json"] = error_content;
                } else {
                    let content = &mut documented["content"]["application/json"]["schema"];
                    *content =
                        json!({ "allOf": [content.take(), error_content["schema"].clone()] });
                }
            }
            None => {
                responses.insert(status.to_string(), error);
            }
        }
    }
    op["responses"] = Value::Object(responses);
    op
}

/// An error answer whose `code` is one of `codes`, or `<field>.<fault>` for one of `fields`.
fn error_answer(codes: &[Code], fields: &[&str]) -> Value {
    let listed: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let mut code = json!({ "enum": listed });
    let mut description = listed
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if !fields.is_empty() {
        let faults: Vec<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
        let pattern = format!(
            "^({})\\.({})$",
            fields
                .iter()
                .map(|f| regex_escape(f))
                .collect::<Vec<_>>()
                .join("|"),
            faults.join("|")
        );
        code = json!({ "anyOf": [code, { "type": "string", "pattern": pattern }] });
        description.push_str(&format!(
            "; or `<member>.<fault>` for a member of {} that failed validation",
            fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    json!({
        "description": description,
        "content": { "application/json": { "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "allOf": [{ "$ref": "#/components/schemas/ErrorBody" }],
                    "properties": { "code": code },
                },
            },
        } } },
    })
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escape = matches!(c, '.' | '-' | '[' | ']' | '(' | ')' | '|' | '*' | '+' | '?');
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// `GET /openapi.json`.
pub async fn json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// `GET /openapi.yaml`.
pub async fn yaml() -> HttpResponse {
    static YAML: OnceLock<String> = OnceLock::new();
    let text = YAML.get_or_init(|| {
        serde_norway::to_string(document()).expect("the description is YAML-compatible")
    });
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(text.as_str())
}

/// The documents' own [`Doc`]s.
pub const JSON_DOC: Doc = Doc {
    id: "openapiJson",
    tag: "service",
    summary: "This description, as JSON.",
    description: "Generated from the route table, the error-code table and the request and answer types of this build.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The OpenAPI 3.1 document.",
        content: Content::Json(|_| json!({ "type": "object" })),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

pub const YAML_DOC: Doc = Doc {
    id: "openapiYaml",
    tag: "service",
    summary: "This description, as YAML.",
    description: "The same document as `GET /openapi.json`.",
    body: Body::None,
    replies: &[Reply {
        status: 200,
        description: "The OpenAPI 3.1 document.",
        content: Content::Yaml,
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};
