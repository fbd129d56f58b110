//! The routes `src/api` declares, read from its source, against the table: a route added
//! without a row fails here.

use super::ENDPOINTS;

/// The routes `src/api` declares, as (method, path with its scope), read from the source.
///
/// Reads every file of `src/api`: `.route("<path>", web::<method>()...)` entries, prefixed with
/// `/v1` when declared inside `web::scope("/v1")` in `mod.rs` or in a module that `mod.rs`
/// configures inside that scope. Anything this reading does not understand fails loudly.
fn declared_routes() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mod_rs = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let scope = mod_rs
        .find(r#"web::scope("/v1")"#)
        .expect("mod.rs declares the /v1 scope");
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Modules of their own (such as `limits/`) declare no routes: say so loudly if one
            // starts to, so that this reading learns it.
            for file in std::fs::read_dir(&path).unwrap() {
                let file = file.unwrap().path();
                let source = std::fs::read_to_string(&file).unwrap();
                assert!(
                    !source.contains(".route("),
                    "{} declares routes: teach declared_routes() to read it",
                    file.display()
                );
            }
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        for pattern in ["web::resource(", "web::scope(", ".service("] {
            let allowed = usize::from(stem == "mod" && pattern != "web::resource(");
            assert!(
                source.matches(pattern).count() <= allowed,
                "{stem}.rs uses {pattern}: teach declared_routes() to read it"
            );
        }
        let configured_at = if stem == "mod" {
            None
        } else {
            mod_rs.find(&format!(".configure({stem}::routes)"))
        };
        for (at, _) in source.match_indices(".route(") {
            let rest = source[at + ".route(".len()..].trim_start();
            let route = rest
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("{stem}.rs: a .route( without a literal path"));
            let method = rest
                .split("web::")
                .nth(1)
                .and_then(|m| m.split("()").next())
                .unwrap_or_else(|| panic!("{stem}.rs: no web::<method>() after {route}"))
                .to_ascii_uppercase();
            let in_scope = match configured_at {
                None if stem == "mod" => at > scope,
                None => panic!("{stem}.rs declares routes but mod.rs does not configure it"),
                Some(c) => c > scope,
            };
            let prefix = if in_scope { "/v1" } else { "" };
            routes.push((method, format!("{prefix}{route}")));
        }
    }
    routes.sort();
    routes
}

#[test]
fn the_table_lists_every_declared_route() {
    let declared = declared_routes();
    assert!(
        declared.len() >= 15,
        "the source reading found {declared:?}"
    );
    let mut listed: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.to_owned(), e.route.to_owned()))
        .collect();
    listed.sort();
    assert_eq!(
        listed, declared,
        "ENDPOINTS must list each route of src/api exactly once"
    );
}
