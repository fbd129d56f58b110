//! The answer a reception desk or claims system receives.

use chrono::NaiveDate;
use serde::Serialize;
use uuid::Uuid;

use super::{Candidate, Validity};
use crate::domain::calendar::is_preschool;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Answer {
    pub validity: Validity,
    /// Present when validity is 1, 2, 3 or 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageView>,
    pub advisories: Vec<Advisory>,
    /// The access-audit record of this answer.
    pub check_id: Uuid,
    /// The proof of check: a compact JWS (`alg` `EdDSA`, Ed25519; `typ` `onshi-proof+jwt`;
    /// `kid` a key of `GET /.well-known/jwks.json`) anyone can verify offline. Its payload:
    /// `check_id`; `iat` (seconds since the epoch); `facility_code` when a facility asked, else
    /// `party_id`; `validity`; `date_of_care`; `coverage_digest`, base64url of the SHA-256 of
    /// `insurer_number:symbol:number:branch:birth_date` of the coverage shown, or of the key
    /// asked about when none is shown (the insurer number in 8 digits, full-width letters and
    /// digits folded to ASCII, an absent symbol or branch empty, the date `YYYY-MM-DD`); absent
    /// only for a card check that found no coverage. No expiry.
    #[schema(pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub proof: String,
    /// The asking facility's own patient number (照会番号) for this coverage key, if it
    /// registered one; no other party ever sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_number: Option<String>,
    /// Details the coverage has but this answer leaves out, as the patient's consent to show
    /// them is not in force (card path) or not stated (number path).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<Withheld>,
    /// The consents in force for this facility (card path): each given at the reader, lapsing
    /// 24 hours later unless the person withdraws it first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consents: Option<Vec<crate::store::card::ConsentInForce>>,
    /// The person's 公費 (public expenses) in force on the date of care.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub public_expenses: Vec<crate::public_expense::PublicExpenseView>,
}

/// A detail an answer may show only with the patient's consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// 限度額適用認定証.
    LimitCertificate,
    /// 特定疾病療養受療証.
    SpecificDiseaseCertificates,
}

/// Which consent-bound details an answer shows: those the patient consented to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    pub limit_certificate: bool,
    pub specific_diseases: bool,
}

impl Shown {
    /// What consents in force allow.
    pub fn from_consents(consents: &[crate::store::card::ConsentInForce]) -> Self {
        use crate::store::card::ConsentKind;
        let has = |kind| consents.iter().any(|c| c.kind == kind);
        Shown {
            limit_certificate: has(ConsentKind::LimitCertificate),
            specific_diseases: has(ConsentKind::SpecificDiseases),
        }
    }

    pub fn or(self, other: Shown) -> Shown {
        Shown {
            limit_certificate: self.limit_certificate || other.limit_certificate,
            specific_diseases: self.specific_diseases || other.specific_diseases,
        }
    }
}

/// Something the desk should know although the check succeeded.
#[derive(Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Advisory {
    pub code: &'static str,
    pub message: String,
}

/// The coverage fields of DOMAIN.md §3 as of the date of care.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CoverageView {
    pub insurer_number: String,
    pub insurer_name: Option<String>,
    pub symbol: Option<String>,
    pub number: String,
    pub branch: Option<String>,
    pub card_classification: String,
    pub relationship: String,
    pub insured_name: String,
    pub name: String,
    pub name_kana: String,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub postcode: Option<String>,
    pub address: Option<String>,
    pub acquired_on: NaiveDate,
    pub lost_on: Option<NaiveDate>,
    pub loss_reason: Option<String>,
    pub card_issued_on: Option<NaiveDate>,
    pub card_valid_from: Option<NaiveDate>,
    pub card_valid_to: Option<NaiveDate>,
    pub copay_ratio: String,
    /// 未就学者: before the first April 1st on which the child starts school.
    pub preschool: bool,
    pub elderly_recipient: Option<ElderlyRecipient>,
    /// Shown only with the patient's consent (else listed in the answer's `withheld`).
    pub limit_certificate: Option<LimitCertificate>,
    /// Shown only with the patient's consent (else listed in the answer's `withheld`).
    pub specific_disease_certificates: Vec<SpecificDiseaseCertificate>,
}

/// 高齢受給者証.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ElderlyRecipient {
    pub copay_ratio: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

/// 特定疾病療養受療証.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpecificDiseaseCertificate {
    /// 1 dialysis for chronic renal failure, 2 congenital coagulation disorder, 3 HIV from
    /// blood products.
    pub category: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// The monthly self-pay cap in yen.
    pub self_pay_cap: Option<u32>,
}

/// 限度額適用認定証.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitCertificate {
    pub classification: Option<String>,
    pub category: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

impl Answer {
    /// The answer before its proof is signed in (`proof` empty).
    pub(super) fn unsigned(
        validity: Validity,
        coverage: Option<&Candidate>,
        date_of_care: NaiveDate,
        check_id: Uuid,
        shown: Shown,
    ) -> Self {
        let advisories = coverage
            .map(|c| advisories(validity, c, date_of_care, shown))
            .unwrap_or_default();
        let mut withheld = Vec::new();
        if let Some(c) = coverage {
            if c.limit_category.is_some() && !shown.limit_certificate {
                withheld.push(Withheld::LimitCertificate);
            }
            if c.specific_disease.is_some() && !shown.specific_diseases {
                withheld.push(Withheld::SpecificDiseaseCertificates);
            }
        }
        Answer {
            validity,
            coverage: coverage.map(|c| CoverageView::new(c, date_of_care, shown)),
            advisories,
            check_id,
            reference_number: None,
            withheld,
            consents: None,
            public_expenses: Vec::new(),
            proof: String::new(),
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl CoverageView {
    fn new(c: &Candidate, date_of_care: NaiveDate, shown: Shown) -> Self {
        CoverageView {
            insurer_number: c.insurer_number.clone(),
            insurer_name: c.insurer_name.clone(),
            symbol: non_empty(&c.symbol),
            number: c.number.clone(),
            branch: non_empty(&c.branch),
            card_classification: c.card_classification.clone(),
            relationship: c.relationship.clone(),
            insured_name: c.insured_name.clone(),
            name: c.name.clone(),
            name_kana: c.name_kana.clone(),
            sex: c.sex.clone(),
            birth_date: c.birth_date,
            postcode: c.postcode.clone(),
            address: c.address.clone(),
            acquired_on: c.acquired_on,
            lost_on: c.lost_on,
            loss_reason: c.loss_reason.clone(),
            card_issued_on: c.card_issued_on,
            card_valid_from: c.card_valid_from,
            card_valid_to: c.card_valid_to,
            copay_ratio: c.copay_ratio.clone(),
            preschool: is_preschool(c.birth_date, date_of_care),
            elderly_recipient: c
                .elderly_copay_ratio
                .as_ref()
                .map(|ratio| ElderlyRecipient {
                    copay_ratio: ratio.clone(),
                    valid_from: c.elderly_valid_from,
                    valid_to: c.elderly_valid_to,
                }),
            limit_certificate: c
                .limit_category
                .as_ref()
                .filter(|_| shown.limit_certificate)
                .map(|category| LimitCertificate {
                    classification: c.limit_classification.clone(),
                    category: category.clone(),
                    valid_from: c.limit_valid_from,
                    valid_to: c.limit_valid_to,
                }),
            specific_disease_certificates: c
                .specific_disease
                .as_ref()
                .filter(|_| shown.specific_diseases)
                .map(|category| SpecificDiseaseCertificate {
                    category: category.clone(),
                    valid_from: c.specific_disease_valid_from,
                    valid_to: c.specific_disease_valid_to,
                    self_pay_cap: c
                        .specific_disease_self_pay
                        .as_deref()
                        .and_then(|yen| yen.parse().ok()),
                })
                .into_iter()
                .collect(),
        }
    }
}

fn advisories(
    validity: Validity,
    c: &Candidate,
    date_of_care: NaiveDate,
    shown: Shown,
) -> Vec<Advisory> {
    let mut out = Vec::new();
    if validity == Validity::Several {
        out.push(Advisory {
            code: "match.several",
            message:
                "Several coverages match; ask for the branch number on the card and check again."
                    .into(),
        });
    }
    if validity == Validity::Valid {
        if let Some(lost) = c.lost_on {
            out.push(Advisory {
                code: "coverage.ends",
                message: format!(
                    "This coverage ends on {lost}; care from that day is not covered by it."
                ),
            });
        }
        if c.card_valid_to.is_some_and(|to| to < date_of_care) {
            out.push(Advisory {
                code: "card.expired",
                message: "The card's validity date has passed, but the coverage is in force."
                    .into(),
            });
        }
        if shown.limit_certificate && c.limit_valid_to.is_some_and(|to| to < date_of_care) {
            out.push(Advisory {
                code: "limit_certificate.expired",
                message: "The high-cost limit certificate has expired.".into(),
            });
        }
    }
    out
}
