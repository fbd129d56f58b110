//! The routes the server's table declares, against the test's table: a route added without a
//! row here fails.

use super::ENDPOINTS;

/// `(method, path)` of every route of `onshi::api::routes::ROUTES`.
fn declared_routes() -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = onshi::api::routes::ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    routes.sort();
    routes
}

#[test]
fn the_table_lists_every_declared_route() {
    let declared = declared_routes();
    assert!(declared.len() >= 15, "the table holds {declared:?}");
    let mut listed: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.to_owned(), e.route.to_owned()))
        .collect();
    listed.sort();
    assert_eq!(
        listed, declared,
        "ENDPOINTS must list each route of the server's table exactly once"
    );
}
