//! The proof claims the benches sign: an answer's, with a coverage digest (shared by
//! `benches/proof.rs` and the soak's `token-sign`).

use onshi::proof::Claims;

pub fn claims() -> Claims {
    Claims {
        check_id: uuid::Uuid::now_v7(),
        iat: 1_795_500_000,
        facility_code: Some("0110113719".into()),
        party_id: None,
        validity: 1,
        date_of_care: "2026-11-24".parse().expect("a date"),
        coverage_digest: Some(onshi::proof::coverage_digest(
            "33120015",
            "12",
            "3456",
            "01",
            "1980-04-01".parse().expect("a date"),
        )),
    }
}
