//! The OpenAPI description (`src/api/openapi.yaml`, served at `GET /openapi.yaml`): well-formed,
//! and in step with `src/api/`. A route, or an error code given to `ClientError::new`, that is
//! added without documentation fails here, and so does a documented route that does not exist.
//!
//! The sources are read from `src/api/` when the test runs (not listed one by one), so that a new
//! handler file is covered without editing this test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::helpers::spawn_app;
use rust_source::Rust;

mod rust_source;

const SPEC: &str = include_str!("../../src/api/openapi.yaml");
const API_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec() -> Value {
    // Into JSON values: this also proves the document is JSON-compatible, as OpenAPI requires
    // (e.g. response codes quoted, since JSON keys are strings).
    serde_norway::from_str(SPEC).expect("src/api/openapi.yaml is YAML that maps onto JSON")
}

#[tokio::test]
async fn the_description_is_served_without_a_token_and_is_openapi_3_1() {
    let app = spawn_app().await;
    let response = app.get("/openapi.yaml").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/yaml"),
        "{content_type}"
    );
    let body = response.text().await.unwrap();
    assert_eq!(body, SPEC, "the server serves the document of its build");

    let doc: Value = serde_norway::from_str(&body).expect("the served document parses as YAML");
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi: {version:?}");
    assert!(doc["info"]["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(doc["info"]["version"].as_str().is_some());
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let mut dangling = Vec::new();
    dangling_refs(&doc, &doc, &mut dangling);
    assert!(dangling.is_empty(), "$refs to nothing: {dangling:?}");
}

/// Every local `$ref` in `value` that does not point at anything in `doc`.
fn dangling_refs(doc: &Value, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let found = target
                    .strip_prefix('#')
                    .and_then(|pointer| doc.pointer(pointer));
                if found.is_none() {
                    out.push(target.clone());
                }
            }
            map.values().for_each(|v| dangling_refs(doc, v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, out)),
        _ => {}
    }
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let routes = routes_in_table();
    assert!(
        routes.contains(&("GET".into(), "/healthz".into()))
            && routes.contains(&("POST".into(), "/v1/eligibility".into()))
            && routes.contains(&("POST".into(), "/v1/health-ids/resolve".into())),
        "the table holds the top-level and /v1 routes: {routes:?}"
    );

    let spec = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                documented.insert((method.to_uppercase(), path.clone()));
                let description = operation["description"].as_str().unwrap_or_default();
                assert!(
                    description.contains("Roles:"),
                    "{method} {path}: the description names the roles allowed (\"Roles: ...\")"
                );
            }
        }
    }
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from src/api/openapi.yaml: {undocumented:?}; \
         documented but not routed: {unrouted:?}"
    );
}

#[test]
fn every_error_code_of_the_handlers_is_documented() {
    let mut codes = BTreeMap::new();
    for (file, source) in api_sources() {
        for code in client_error_codes(&source) {
            codes.entry(code).or_insert_with(|| file.clone());
        }
    }
    for known in ["route.not_found", "auth.forbidden", "queries.count"] {
        assert!(
            codes.contains_key(known),
            "the extraction finds {known}: {codes:?}"
        );
    }
    let missing: Vec<_> = codes
        .iter()
        .filter(|(code, _)| !mentions(SPEC, code))
        .map(|(code, file)| format!("{code} ({file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "error codes missing from src/api/openapi.yaml: {missing:?}"
    );
}

#[test]
fn a_code_counts_as_mentioned_only_as_a_whole_word() {
    assert!(mentions(
        "codes `body.invalid`, `body.not_object`",
        "body.invalid"
    ));
    assert!(!mentions("`body.invalid_json`", "body.invalid"));
    assert!(!mentions("`rate.limited.more`", "rate.limited"));
    assert!(!mentions("`xauth.missing`", "auth.missing"));
}

/// Whether `text` has `code` not as part of a longer code (`body.invalid` is not in
/// `body.invalid_json`), a sentence's full stop allowed after it.
fn mentions(text: &str, code: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + code.len()..].chars();
        let continues = match after.next() {
            Some('.') => after.next().is_some_and(word),
            Some(c) => word(c),
            None => false,
        };
        !before.is_some_and(|c| word(c) || c == '.') && !continues
    })
}

/// `(file name, source)` of every `src/api/*.rs` and `src/api/*/*.rs` (named `dir/file.rs`).
fn api_sources() -> Vec<(String, String)> {
    let entries = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .expect("src/api is readable")
            .map(|entry| entry.expect("a directory entry").path())
            .collect()
    };
    let top = std::path::Path::new(API_DIR);
    let mut paths = entries(top);
    for sub in paths.clone().iter().filter(|p| p.is_dir()) {
        paths.extend(entries(sub));
    }
    let mut files: Vec<_> = paths
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let name = path
                .strip_prefix(top)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                name,
                std::fs::read_to_string(&path).expect("a readable source"),
            )
        })
        .collect();
    files.sort();
    assert!(files.iter().any(|(name, _)| name == "mod.rs"));
    files
}

/// Every `(METHOD, full path)` of the route table the server registers.
fn routes_in_table() -> BTreeSet<(String, String)> {
    onshi::api::routes::ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), without_param_patterns(r.path)))
        .collect()
}

/// `/a/{id:\d+}` → `/a/{id}`: actix's parameter patterns are not part of the OpenAPI path.
fn without_param_patterns(path: &str) -> String {
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

/// The string literal given to each `ClientError::new(status, "<code>", ...)` as its code.
/// Codes built at run time (`format!`, variables) are not literals and are not listed.
fn client_error_codes(source: &str) -> Vec<String> {
    let rust = Rust::new(source);
    rust.find_code("ClientError::new(")
        .into_iter()
        .filter_map(|at| {
            let args = at + "ClientError::new(".len();
            let comma = rust.next_code_byte(args, b',')?;
            rust.string_at(comma + 1).map(|(code, _)| code)
        })
        .collect()
}

#[test]
fn the_source_reader_skips_comments_and_literals() {
    let source = r#"
        // ClientError::new(StatusCode::NOT_FOUND, "commented.out", "")
        fn handler() {
            let _ = ClientError::new(StatusCode::NOT_FOUND, "x.y", "a ) in a message (");
            let _ = ClientError::new(status, code, "not a literal code");
            let _ = ('"', 'a');
        }
    "#;
    assert_eq!(client_error_codes(source), ["x.y"]);
    assert_eq!(without_param_patterns(r"/a/{id:\d+}/b"), "/a/{id}/b");
}
