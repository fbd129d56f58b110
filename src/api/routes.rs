//! The one table of routes: method, path, who may call it, handler. It registers the router,
//! decides the roles the credential extractor admits ([`super::auth::Caller`] refuses any other
//! with 403 `auth.forbidden`), answers 405 with `Allow` for a known path asked with another
//! method, and is what the tests and the API description check against.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use super::codes::Code;
use super::doc::Doc;
use super::error::{ApiError, ClientError};
use super::{
    access_log, bulk, card, desk, doc, eligibility, enrollments, fhir, health, health_ids, metrics,
    parties, proof_keys, public_expenses, reference_numbers,
};
use crate::parties::Role;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with no credential (health, the API description, the proofs' public keys).
    Anyone,
    /// A card's holder, with no party token: the card's signature over a challenge is the
    /// credential (`/v1/self/...`).
    CardHolder,
    /// Any registered party; the use case decides further (a purpose's parties).
    AnyParty,
    /// Parties with one of these roles.
    Roles(&'static [Role]),
    /// Parties with one of these roles, checked only once the handler has read the body (with
    /// [`admit_after_body`]), so that what the body may not hold is refused (400) whoever sends it.
    RolesAfterBody(&'static [Role]),
}

impl Access {
    /// Whether a party of `role` may call the route.
    pub fn admits(self, role: Role) -> bool {
        match self {
            Access::Anyone | Access::AnyParty | Access::RolesAfterBody(_) => true,
            Access::CardHolder => false,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// The role check a [`Access::RolesAfterBody`] route makes once its body is read: 403 unless the
/// caller has one of the route's roles.
///
/// # Errors
/// The caller's role is not among them (or the request matched no route of the table).
pub fn admit_after_body<'a>(
    req: &HttpRequest,
    caller: &'a super::auth::Caller,
) -> Result<&'a crate::parties::Party, ClientError> {
    let party = caller.party();
    match matched(req).map(|route| route.access) {
        Some(Access::RolesAfterBody(roles)) if roles.contains(&party.role) => Ok(party),
        _ => Err(super::auth::forbidden(
            "Your credential's role may not use this endpoint.",
        )),
    }
}

/// One row of the table.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// The full path, with `{name}` for a path parameter.
    pub path: &'static str,
    pub access: Access,
    /// What the API description says of it.
    pub doc: &'static Doc,
}

const FACILITY: Access = Access::Roles(&[Role::Facility]);
const ADMIN: Access = Access::Roles(&[Role::Admin]);
const CHECKERS: Access = Access::Roles(&[Role::Facility, Role::Claims]);

macro_rules! route_table {
    ($($method:ident $path:literal $access:expr => $handler:path, $doc:path;)+) => {
        /// Every route onshi serves.
        pub static ROUTES: &[Route] = &[$(Route {
            method: Method::$method,
            path: $path,
            access: $access,
            doc: &$doc,
        }),+];

        /// Registers every route of [`ROUTES`] with its handler.
        pub fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::route().method(Method::$method).to($handler));)+
        }
    };
}

route_table! {
    GET "/healthz" Access::Anyone => health::healthz, health::HEALTHZ_DOC;
    GET "/readyz" Access::Anyone => health::readyz, health::READYZ_DOC;
    GET "/openapi.json" Access::Anyone => doc::json, doc::JSON_DOC;
    GET "/openapi.yaml" Access::Anyone => doc::yaml, doc::YAML_DOC;
    GET "/metrics" Access::Anyone => metrics::scrape, metrics::SCRAPE_DOC;
    GET "/desk" Access::Anyone => desk::to_page, desk::TO_PAGE_DOC;
    GET "/desk/" Access::Anyone => desk::page, desk::PAGE_DOC;
    GET "/desk/desk.js" Access::Anyone => desk::script, desk::SCRIPT_DOC;
    GET "/desk/desk.css" Access::Anyone => desk::style, desk::STYLE_DOC;
    GET "/fhir/metadata" Access::Anyone => fhir::metadata, fhir::METADATA_DOC;
    POST "/fhir/CoverageEligibilityRequest/$submit" CHECKERS => fhir::submit, fhir::SUBMIT_DOC;
    GET "/.well-known/jwks.json" Access::Anyone => proof_keys::jwks, proof_keys::JWKS_DOC;
    POST "/v1/eligibility" CHECKERS => eligibility::check_one, eligibility::CHECK_ONE_DOC;
    // Pharmacies and home-nursing stations are facilities but check one patient at a time:
    // the handler refuses them (`crate::parties::Party::may_batch`).
    POST "/v1/eligibility/batch" CHECKERS => eligibility::check_batch, eligibility::CHECK_BATCH_DOC;
    // The same parties as the batch (the handler refuses the others); a job is read only by
    // the party that sent it (the handler checks).
    POST "/v1/eligibility/bulk" CHECKERS => bulk::submit, bulk::SUBMIT_DOC;
    GET "/v1/eligibility/bulk/{reception_number}" CHECKERS => bulk::status, bulk::STATUS_DOC;
    POST "/v1/eligibility/card" FACILITY => card::check, card::CHECK_DOC;
    POST "/v1/eligibility/assistance" CHECKERS => public_expenses::check, public_expenses::CHECK_DOC;
    POST "/v1/public-expenses" Access::Roles(&[Role::Payer]) => public_expenses::upload, public_expenses::UPLOAD_DOC;
    POST "/v1/reference-numbers" CHECKERS => reference_numbers::register, reference_numbers::REGISTER_DOC;
    POST "/v1/self/consents/withdraw" Access::CardHolder => card::withdraw_consents, card::WITHDRAW_CONSENTS_DOC;
    POST "/v1/challenges" FACILITY => card::challenge, card::CHALLENGE_DOC;
    // A typed My Number in the body is refused (400) for every role, before the role is checked.
    POST "/v1/card-links" Access::RolesAfterBody(&[Role::Facility]) => card::link, card::LINK_DOC;
    POST "/v1/card-links/unlink" ADMIN => card::unlink_by_admin, card::UNLINK_BY_ADMIN_DOC;
    POST "/v1/self/card-unlink" Access::CardHolder => card::unlink_by_holder, card::UNLINK_BY_HOLDER_DOC;
    POST "/v1/parties" ADMIN => parties::add, parties::ADD_DOC;
    POST "/v1/parties/{id}/revoke" ADMIN => parties::revoke, parties::REVOKE_DOC;
    POST "/v1/enrollments" Access::Roles(&[Role::Insurer]) => enrollments::upload, enrollments::UPLOAD_DOC;
    // An insurer reads only its own batches' reports (the handler checks).
    GET "/v1/enrollments/{batch_id}" Access::Roles(&[Role::Insurer, Role::Admin]) => enrollments::report, enrollments::REPORT_DOC;
    POST "/v1/purposes" ADMIN => health_ids::add_purpose, health_ids::ADD_PURPOSE_DOC;
    POST "/v1/health-ids" FACILITY => health_ids::issue, health_ids::ISSUE_DOC;
    POST "/v1/health-ids/resolve" Access::AnyParty => health_ids::resolve, health_ids::RESOLVE_DOC;
    POST "/v1/health-ids/reissue" ADMIN => health_ids::reissue, health_ids::REISSUE_DOC;
    POST "/v1/self/challenges" Access::CardHolder => access_log::self_challenge, access_log::SELF_CHALLENGE_DOC;
    POST "/v1/self/access-log" Access::CardHolder => access_log::self_view, access_log::SELF_VIEW_DOC;
    POST "/v1/access-log/lookup" ADMIN => access_log::lookup, access_log::LOOKUP_DOC;
}

/// The route a request matched, by its pattern and method.
pub fn matched(req: &HttpRequest) -> Option<&'static Route> {
    let pattern = req.match_pattern()?;
    ROUTES
        .iter()
        .find(|r| r.path == pattern && r.method == req.method())
}

/// Whether `path` (a request's) fits the route pattern `pattern`.
fn fits(pattern: &str, path: &str) -> bool {
    let (mut want, mut have) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// The methods the table serves `path` with (empty for an unknown path).
pub fn methods_of(path: &str) -> Vec<&'static Method> {
    ROUTES
        .iter()
        .filter(|r| fits(r.path, path))
        .map(|r| &r.method)
        .collect()
}

/// What no route matched: 405 with `Allow` for a known path and another method, else 404.
pub async fn unmatched(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let methods = methods_of(req.path());
    if methods.is_empty() {
        return Err(ClientError::new(
            Code::RouteNotFound,
            "No such endpoint; see the API description.",
        )
        .into());
    }
    let allow = methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = HttpResponse::from_error(ApiError::from(ClientError::new(
        Code::RouteMethodNotAllowed,
        "This endpoint does not take this method; the Allow header lists those it takes.",
    )));
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::{fits, methods_of, ROUTES};

    #[test]
    fn patterns_fit_their_paths_only() {
        assert!(fits("/v1/parties/{id}/revoke", "/v1/parties/7/revoke"));
        assert!(!fits("/v1/parties/{id}/revoke", "/v1/parties//revoke"));
        assert!(!fits("/v1/parties/{id}/revoke", "/v1/parties/7"));
        assert!(fits("/v1/eligibility", "/v1/eligibility"));
        assert!(!fits("/v1/eligibility", "/v1/eligibility/x"));
    }

    #[test]
    fn each_method_and_path_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(a.method != b.method || a.path != b.path, "{a:?} twice");
            }
        }
        assert_eq!(methods_of("/v1/enrollments/abc").len(), 1);
        assert!(methods_of("/v1/nothing").is_empty());
    }
}
