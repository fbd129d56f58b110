//! The API description, generated from the route table, the error-code table and the types
//! (`src/api/doc.rs`): served without a token as JSON and YAML, OpenAPI 3.1, complete, and
//! in step with the tables. Every other test's answers are held to it (`crate::contract`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;
use onshi::api::codes::Code;
use onshi::api::doc::{codes_of, openapi_path};
use onshi::api::routes::ROUTES;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn the_description_is_served_without_a_token_as_json_and_yaml() {
    let app = spawn_app().await;
    let json = app.get("/openapi.json").await;
    assert_eq!(json.status(), 200);
    assert!(json.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let from_json: Value = json.json().await.unwrap();

    let yaml = app.get("/openapi.yaml").await;
    assert_eq!(yaml.status(), 200);
    assert!(yaml.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/yaml"));
    let from_yaml: Value = serde_norway::from_str(&yaml.text().await.unwrap())
        .expect("the YAML document parses and maps onto JSON");
    assert_eq!(from_json, from_yaml, "both forms are the same document");
    assert_eq!(&from_json, onshi::api::doc::document());

    let version = from_json["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi: {version:?}");
    assert!(from_json["info"]["title"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert_eq!(
        from_json["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let mut dangling = Vec::new();
    dangling_refs(&from_json, &from_json, &mut dangling);
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
fn the_paths_are_the_route_table_and_each_names_its_roles() {
    let doc = onshi::api::doc::document();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), openapi_path(r.path)))
        .collect();
    let mut documented = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                documented.insert((method.to_uppercase(), path.clone()));
                assert!(
                    operation["description"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("Roles:")),
                    "{method} {path}: the description names the roles"
                );
                let id = operation["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    if parameter["in"] == "path" {
                        let name = parameter["name"].as_str().unwrap();
                        assert!(path.contains(&format!("{{{name}}}")), "{path}: {name}");
                    }
                }
            }
        }
    }
    assert_eq!(routes, documented);
    assert!(routes.contains(&("POST".into(), "/v1/eligibility".into())));
}

#[test]
fn every_code_of_the_table_is_answered_by_some_route_and_listed_under_its_status() {
    let doc = onshi::api::doc::document();
    let mut answered = BTreeSet::new();
    for route in ROUTES {
        let operation =
            &doc["paths"][openapi_path(route.path)][route.method.as_str().to_lowercase()];
        for code in codes_of(route) {
            answered.insert(code.as_str());
            let response = &operation["responses"][code.status().as_u16().to_string()];
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("`{}`", code.as_str()))),
                "{} {}: {} is listed under {}",
                route.method,
                route.path,
                code.as_str(),
                code.status()
            );
        }
    }
    // The two codes of no route: the router's own answers to an unknown path or method.
    let unrouted: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !answered.contains(c))
        .collect();
    assert_eq!(unrouted, ["route.not_found", "route.method_not_allowed"]);
}

#[test]
fn the_constraints_the_code_enforces_are_in_the_schemas() {
    let doc = onshi::api::doc::document();
    let schemas = &doc["components"]["schemas"];
    let query = &schemas["EligibilityQuery"];
    assert_eq!(query["additionalProperties"], false);
    assert_eq!(
        query["properties"]["insurer_number"]["pattern"],
        "^([0-9]{6}|[0-9]{8})$"
    );
    assert_eq!(query["properties"]["branch"]["pattern"], "^([0-9]{2})?$");
    let party = &schemas["NewParty"];
    assert_eq!(party["properties"]["expires_in_days"]["maximum"], 36500);
    assert_eq!(party["properties"]["expires_in_days"]["minimum"], 1);
    assert!(
        party["properties"]["client_certificate"].is_object(),
        "every member the code reads is described"
    );
    let batch = &schemas["BatchRequest"]["properties"]["queries"];
    assert_eq!(batch["maxItems"], 10000);
    assert_eq!(batch["minItems"], 1);
}

#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let app = spawn_app().await;
    let response = app
        .send(app.http.get(format!("{}/v1/eligibility", app.address)))
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}
