//! Every answer the tests receive through [`crate::helpers::TestApp`] is held to the served API
//! description: its status must be documented for its operation, and its JSON body must match
//! the documented schema, validated by an independent JSON Schema implementation (the
//! `jsonschema` crate, not the generator). An error body's `code` must be one the operation
//! lists under that status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

/// The description of this build, as the server serves it.
fn document() -> &'static Value {
    onshi::api::doc::document()
}

/// `~` and `/` escaped for a JSON pointer.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The documented path template `path` (a request's, without its query) fits, if any.
fn template_of(path: &str) -> Option<String> {
    let paths = document()["paths"].as_object()?;
    paths
        .keys()
        .find(|template| {
            let (mut want, mut have) = (template.split('/'), path.split('/'));
            loop {
                match (want.next(), have.next()) {
                    (None, None) => return true,
                    (Some(w), Some(h)) if w.starts_with('{') && !h.is_empty() => {}
                    (Some(w), Some(h)) if w == h => {}
                    _ => return false,
                }
            }
        })
        .cloned()
}

type Validator = Arc<jsonschema::Validator>;

/// A validator of the schema at `pointer` in the document, compiled once.
fn validator(pointer: &str) -> Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, Validator>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(pointer) {
        return v.clone();
    }
    // The document itself is the root resource, so that its `#/components/...` references
    // resolve; the root's own keywords besides `$ref` are not schema keywords and are ignored.
    let mut root = document().clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    // As a URI fragment: a path template's braces are not URI characters.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = json!(format!("#{fragment}"));
    let compiled = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema at {pointer} compiles: {e}"));
    let compiled = Arc::new(compiled);
    cache
        .lock()
        .unwrap()
        .insert(pointer.to_owned(), compiled.clone());
    compiled
}

/// Checks one answer against the description; panics naming what does not match.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let path = path.split('?').next().unwrap_or(path);
    let Some(template) = template_of(path) else {
        assert_eq!(
            status, 404,
            "{method} {path}: an undocumented path answers 404"
        );
        error_code_is(body, &["route.not_found"], method, path);
        return;
    };
    let operation = &document()["paths"][&template][method.to_lowercase()];
    if operation.is_null() {
        assert_eq!(
            status, 405,
            "{method} {template}: an undocumented method answers 405"
        );
        error_code_is(body, &["route.method_not_allowed"], method, path);
        return;
    }
    let response = &operation["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{method} {template} answered {status}, which its description does not list: {}",
        String::from_utf8_lossy(body)
    );
    let Some(content) = response["content"].as_object() else {
        return;
    };
    // The answer's media type must be one documented for the status; a JSON one is validated.
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    let documented = content
        .keys()
        .find(|k| k.as_str() == media)
        .unwrap_or_else(|| {
            panic!(
                "{method} {template} {status}: answered {content_type:?}, documented {:?}",
                content.keys().collect::<Vec<_>>()
            )
        });
    if !documented.ends_with("json") {
        return;
    }
    let instance: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{method} {template} {status}: the body is not JSON ({e})"));
    let pointer = format!(
        "/paths/{}/{}/responses/{status}/content/{}/schema",
        escape(&template),
        method.to_lowercase(),
        escape(documented)
    );
    let errors: Vec<String> = validator(&pointer)
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: the body does not match the description: {errors:#?}\n{instance:#}"
    );
}

fn error_code_is(body: &[u8], codes: &[&str], method: &str, path: &str) {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    let code = value["error"]["code"].as_str().unwrap_or_default();
    assert!(
        codes.contains(&code),
        "{method} {path}: code {code:?}, expected one of {codes:?}"
    );
}

/// `response`, checked against the description and handed back unchanged.
pub async fn checked(method: &str, response: reqwest::Response) -> reqwest::Response {
    let status = response.status();
    let path = response.url().path().to_owned();
    let headers = response.headers().clone();
    let version = response.version();
    let body = response.bytes().await.expect("the answer's body arrives");
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    check(method, &path, status.as_u16(), content_type, &body);
    let mut rebuilt = http::Response::builder().status(status).version(version);
    if let Some(h) = rebuilt.headers_mut() {
        *h = headers;
    }
    reqwest::Response::from(rebuilt.body(body).expect("the same answer"))
}
