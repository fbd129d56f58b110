//! The JSON endpoints' bad input: what each sends wrong and the answer it must get.

use serde_json::{json, Value};

use super::json::{bad, long, refs, Endpoint, Style, F, NUL, SQL, WILDCARDS};
use super::{Case, Who, World, PURPOSE};

/// The query members of an eligibility check (also in a health-ID issuance).
fn query_members(ep: &Endpoint, with_date_of_care: bool) -> Vec<Case> {
    let key_text = [F, F, F, Some("too_long")];
    let mut cases = Vec::new();
    cases.extend(ep.string(
        "insurer_number",
        true,
        &refs(&bad(
            [F, F, F, F],
            &[("３３１２００１５", "format"), ("33120016", "check_digit")],
        )),
    ));
    cases.extend(ep.string(
        "symbol",
        false,
        &refs(&bad(
            key_text,
            &[
                ("東京12", "mixed_width"),
                ("１２　３４", "full_width_space"),
                ("ｱｲ", "format"),
            ],
        )),
    ));
    cases.extend(ep.string(
        "number",
        true,
        &refs(&bad(
            key_text,
            &[("a東", "mixed_width"), ("３４\u{3000}", "full_width_space")],
        )),
    ));
    cases.extend(ep.string(
        "branch",
        false,
        &refs(&bad([F, F, F, F], &[("０１", "format"), ("1", "format")])),
    ));
    let dates = [
        ("１９８０-04-01", "format"),
        ("1980-02-30", "format"),
        ("1980/04/01", "format"),
    ];
    cases.extend(ep.string("birth_date", true, &refs(&bad([F, F, F, F], &dates))));
    if with_date_of_care {
        cases.extend(ep.string("date_of_care", false, &refs(&bad([F, F, F, F], &dates))));
        let later = ep.with("birth_date", Some(json!("2026-11-25")));
        cases.push(ep.case(
            "born after the date of care",
            later,
            (400, "birth_date.after_date_of_care", Some("birth_date")),
            "",
        ));
    }
    cases
}

pub fn all(world: &World) -> Vec<Case> {
    let query = json!({"insurer_number": "33120015", "symbol": "12", "number": "3456",
                       "branch": "01", "birth_date": "1980-04-01", "date_of_care": "2026-11-24"});
    let challenge = "00000000-0000-4000-8000-000000000000";
    let mut cases = Vec::new();

    let eligibility = Endpoint {
        who: Who::Facility,
        path: "/v1/eligibility",
        base: query.clone(),
        style: Style::Members,
    };
    cases.extend(eligibility.generic());
    cases.extend(query_members(&eligibility, true));

    let batch = Endpoint {
        who: Who::Claims,
        path: "/v1/eligibility/batch",
        base: json!({"queries": [query]}),
        style: Style::Members,
    };
    cases.extend(batch.generic());
    let queries = |v: Value| batch.with("queries", Some(v));
    let required = (400, "queries.required", Some("queries"));
    cases.push(batch.case("queries missing", batch.with("queries", None), required, ""));
    cases.push(batch.case("queries = null", queries(Value::Null), required, ""));
    cases.push(batch.case(
        "queries = a string",
        queries(json!("marker-value")),
        required,
        "marker-value",
    ));
    cases.push(batch.case(
        "queries = an object",
        queries(query.clone()),
        required,
        "33120015",
    ));
    cases.push(batch.case(
        "no queries",
        queries(json!([])),
        (400, "queries.count", Some("queries")),
        "",
    ));
    let mut hostile_query = query.clone();
    hostile_query["insurer_number"] = json!(SQL);
    cases.push(batch.case(
        "a query's hostile member",
        queries(json!([hostile_query])),
        (200, "insurer_number.format", Some("insurer_number")),
        "",
    ));
    cases.push(batch.case(
        "a query that is a string",
        queries(json!(["marker-value"])),
        (200, "query.not_object", None),
        "marker-value",
    ));

    let check = Endpoint {
        who: Who::Facility,
        path: "/v1/eligibility/card",
        base: json!({"certificate": "MA==", "challenge_id": challenge, "signature": "MA==", "date_of_care": "2026-11-24", "consents": {"medication": true}}),
        style: Style::Typed,
    };
    let base64 = bad([F, F, F, None], &[("ＭＡ==", "format")]);
    cases.extend(check.generic());
    cases.extend(check.string("certificate", true, &refs(&base64)));
    cases.extend(check.string("signature", true, &refs(&base64)));
    cases.extend(check.string(
        "challenge_id",
        true,
        &refs(&bad(
            [F, F, F, F],
            &[("０0000000-0000-4000-8000-000000000000", "format")],
        )),
    ));
    cases.extend(check.string(
        "date_of_care",
        false,
        &refs(&bad([F, F, F, F], &[("2026-02-30", "format")])),
    ));
    let consents = [
        json!("yes"),
        json!([]),
        json!({"medication": "yes"}),
        json!({"medicaton": true}),
    ];
    cases.extend(check.other("consents", &consents, "body.invalid"));

    let own_view = Endpoint {
        who: Who::Facility,
        path: "/v1/self/access-log",
        base: json!({"certificate": "MA==", "challenge_id": challenge, "signature": "MA=="}),
        style: Style::Typed,
    };
    cases.extend(own_view.generic());
    cases.extend(own_view.string("certificate", true, &refs(&base64)));
    cases.extend(own_view.string("signature", true, &refs(&base64)));
    cases.extend(own_view.string(
        "challenge_id",
        true,
        &refs(&bad(
            [F, F, F, F],
            &[("０0000000-0000-4000-8000-000000000000", "format")],
        )),
    ));

    let lookup = Endpoint {
        who: Who::Admin,
        path: "/v1/access-log/lookup",
        base: query.clone(),
        style: Style::Members,
    };
    cases.extend(lookup.generic());
    cases.extend(query_members(&lookup, true));

    let surface = json!({"my_number": "MA==", "basic_facts": "MA==", "signature": "MA==",
                         "issuer_certificate": "MA==", "auth_key": "MA==", "internal_authentication": "MA=="});
    let link = Endpoint {
        who: Who::Facility,
        path: "/v1/card-links",
        base: json!({"certificate": "MA==", "challenge_id": challenge, "signature": "MA==", "card_surface": surface}),
        style: Style::Typed,
    };
    cases.extend(link.generic());
    cases.extend(link.string("certificate", true, &refs(&base64)));
    cases.extend(link.string("signature", true, &refs(&base64)));
    cases.extend(link.string("challenge_id", true, &refs(&bad([F, F, F, F], &[]))));
    // No typed number, whatever it looks like: the member does not exist.
    for number in ["983205673214", "９８３２０５６７３２１４", "983205673215"] {
        cases.push(link.case(
            "a typed individual number",
            link.with("individual_number", Some(json!(number))),
            (400, "body.invalid", Some("individual_number")),
            number,
        ));
    }
    cases.extend(link.other(
        "card_surface",
        &[json!("MA=="), json!([]), json!({"my_number": "MA=="})],
        "body.invalid",
    ));
    let mut nested = surface.clone();
    nested["my_number"] = json!("ＭＡ==");
    cases.push(link.case(
        "a record that is not base64",
        link.with("card_surface", Some(nested)),
        (
            400,
            "card_surface.my_number.format",
            Some("card_surface.my_number"),
        ),
        "",
    ));

    let own_unlink = Endpoint {
        who: Who::Facility,
        path: "/v1/self/card-unlink",
        base: json!({"certificate": "MA==", "challenge_id": challenge, "signature": "MA=="}),
        style: Style::Typed,
    };
    cases.extend(own_unlink.generic());
    cases.extend(own_unlink.string("certificate", true, &refs(&base64)));
    cases.extend(own_unlink.string("signature", true, &refs(&base64)));

    let admin_unlink = Endpoint {
        who: Who::Admin,
        path: "/v1/card-links/unlink",
        base: json!({"certificate": "MA=="}),
        style: Style::Typed,
    };
    cases.extend(admin_unlink.generic());
    cases.extend(admin_unlink.string("certificate", true, &refs(&base64)));

    let party = Endpoint {
        who: Who::Admin,
        path: "/v1/parties",
        base: json!({"role": "facility", "name": "架空クリニック", "facility_code": "0110113719", "expires_in_days": 30}),
        style: Style::Typed,
    };
    let unknown = Some("unknown_code");
    cases.extend(party.generic());
    cases.extend(party.string(
        "role",
        true,
        &refs(&bad(
            [unknown; 4],
            &[
                ("ｆａｃｉｌｉｔｙ", "unknown_code"),
                ("Facility", "unknown_code"),
            ],
        )),
    ));
    // Quotes, semicolons and percent signs are fine in a name (it is bound, never spliced).
    cases.extend(party.string("name", false, &refs(&bad([None, None, F, F], &[]))));
    cases.extend(party.string(
        "facility_code",
        false,
        &refs(&bad(
            [F, F, F, F],
            &[
                ("０１１０１１３７１９", "format"),
                ("0110113718", "check_digit"),
                ("0120113719", "unknown_code"),
            ],
        )),
    ));
    cases.push(party.case(
        "a facility without its code",
        party.with("facility_code", None),
        (400, "facility_code.required", Some("facility_code")),
        "",
    ));
    let range = [json!(0), json!(36_501), json!(4_294_967_295u64)];
    cases.extend(party.other("expires_in_days", &range, "expires_in_days.range"));
    let not_days = [
        json!(-1),
        json!("30"),
        json!(1.5),
        json!(4_294_967_296u64),
        json!([30]),
    ];
    cases.extend(party.other("expires_in_days", &not_days, "body.invalid"));
    let insurer = Endpoint {
        base: json!({"role": "insurer", "insurer_numbers": ["33120015"]}),
        ..party
    };
    let not_numbers = [json!("33120015"), json!([33120015]), json!({}), Value::Null];
    cases.extend(insurer.other("insurer_numbers", &not_numbers, "body.invalid"));
    cases.extend(insurer.other("insurer_numbers", &[json!([])], "insurer_numbers.required"));
    let numbers: Vec<Value> = [SQL, WILDCARDS, NUL, &long(), "３３１２００１５"]
        .iter()
        .map(|n| json!([n]))
        .collect();
    cases.extend(insurer.other("insurer_numbers", &numbers, "insurer_number.format"));

    let purposes = Endpoint {
        who: Who::Admin,
        path: "/v1/purposes",
        base: json!({"name": "bad-input-new", "parties": [world.facility_id], "key_version": 1}),
        style: Style::Members,
    };
    cases.extend(purposes.generic());
    cases.extend(purposes.string(
        "name",
        true,
        &refs(&bad(
            [F, F, F, F],
            &[("ｂａｄ", "format"), ("Bad", "format")],
        )),
    ));
    let not_ids = [
        json!("1"),
        json!([]),
        json!(["1"]),
        json!([1.5]),
        Value::Null,
        json!({"id": 1}),
    ];
    cases.extend(purposes.other("parties", &not_ids, "parties.type"));
    cases.push(purposes.case(
        "parties missing",
        purposes.with("parties", None),
        (400, "parties.type", Some("parties")),
        "",
    ));
    cases.extend(purposes.other(
        "parties",
        &[json!([999_999]), json!([-1])],
        "parties.unknown",
    ));
    let not_versions = [
        json!(0),
        json!(-1),
        json!("1"),
        json!(1.5),
        json!(4_294_967_296u64),
    ];
    cases.extend(purposes.other("key_version", &not_versions, "key_version.type"));

    let purpose_bad = bad([F, F, F, F], &[("ｂａｄ-input", "format")]);
    let issue = Endpoint {
        who: Who::Facility,
        path: "/v1/health-ids",
        base: json!({"purpose": PURPOSE, "insurer_number": "33120015", "symbol": "12", "number": "3456", "branch": "01", "birth_date": "1980-04-01"}),
        style: Style::Members,
    };
    cases.extend(issue.generic());
    cases.extend(issue.string("purpose", true, &refs(&purpose_bad)));
    cases.extend(query_members(&issue, false));
    cases.push(issue.case(
        "an unknown purpose",
        issue.with("purpose", Some(json!("no-such-purpose"))),
        (404, "purpose.unknown", Some("purpose")),
        "no-such-purpose",
    ));

    let mut typo = world.health_id.clone();
    let last = if typo.ends_with('0') { "1" } else { "0" };
    typo.replace_range(typo.len() - 1.., last);
    let id_bad = bad(
        [F, F, F, F],
        &[("ＡＢＣ", "format"), (&typo, "check_symbol")],
    );
    for (path, who) in [
        ("/v1/health-ids/resolve", Who::Facility),
        ("/v1/health-ids/reissue", Who::Admin),
    ] {
        let mut base = json!({"purpose": PURPOSE, "health_id": world.health_id});
        if who == Who::Facility {
            base["date_of_care"] = json!("2026-11-24");
        }
        let ep = Endpoint {
            who,
            path,
            base,
            style: Style::Members,
        };
        cases.extend(ep.generic());
        cases.extend(ep.string("purpose", true, &refs(&purpose_bad)));
        cases.extend(ep.string("health_id", true, &refs(&id_bad)));
        if who == Who::Facility {
            cases.extend(ep.string(
                "date_of_care",
                false,
                &refs(&bad([F, F, F, F], &[("2026-02-30", "format")])),
            ));
        }
    }

    // Bodies where none is taken, and ids in the path that name nothing.
    for (path, who) in [
        ("/v1/challenges", Who::Facility),
        ("/v1/parties/0/revoke", Who::Admin),
    ] {
        let ep = Endpoint {
            who,
            path,
            base: json!({}),
            style: Style::Members,
        };
        let body = format!("{{\"x\": \"{}\"}}", "7".repeat(2048)).into_bytes();
        cases.push(ep.case(
            "a 2 KiB body",
            body,
            (413, "body.too_large", None),
            "7777777777",
        ));
    }
    for id in [
        "abc",
        "%27%3B%20drop%20table%20parties%3B%20--",
        "99999999999999999999",
        "1.5",
    ] {
        let mut case = Endpoint {
            who: Who::Admin,
            path: "/v1/parties/{id}/revoke",
            base: json!({}),
            style: Style::Members,
        }
        .case(
            "an id that is not one",
            Vec::new(),
            (404, "party.not_found", None),
            id,
        );
        case.path = format!("/v1/parties/{id}/revoke");
        cases.push(case);
    }
    for id in [
        "a%00b",
        "%FF%FE",
        "%27%3B%20drop%20table%20parties%3B%20--",
        &"7".repeat(10_000),
        "%25_%25",
    ] {
        let mut case = Endpoint {
            who: Who::Insurer,
            path: "/v1/enrollments",
            base: json!({}),
            style: Style::Members,
        }
        .case(
            "a batch id that is not one",
            Vec::new(),
            (404, "batch.not_found", None),
            "",
        );
        case.method = "GET";
        case.path = format!("/v1/enrollments/{id}");
        case.sent = id.chars().take(16).collect();
        cases.push(case);
    }
    cases
}
