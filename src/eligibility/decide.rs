//! The 資格有効性 (validity) decision.

use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use super::Candidate;

/// 資格有効性, as the real system codes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// 1 有効: in force on the date of care.
    Valid,
    /// 2 無効: lost on or before the date of care.
    Lost,
    /// 3 無効（新しい資格あり）: lost, but the same person holds a newer coverage.
    LostWithNewer,
    /// 4 該当資格なし: nothing matches the key and birth date on that date.
    NoSuchCoverage,
    /// 5 複数該当: several coverages match.
    Several,
}

impl Validity {
    pub fn code(self) -> i16 {
        match self {
            Validity::Valid => 1,
            Validity::Lost => 2,
            Validity::LostWithNewer => 3,
            Validity::NoSuchCoverage => 4,
            Validity::Several => 5,
        }
    }
}

impl Validity {
    pub const ALL: [Validity; 5] = [
        Validity::Valid,
        Validity::Lost,
        Validity::LostWithNewer,
        Validity::NoSuchCoverage,
        Validity::Several,
    ];
}

impl utoipa::PartialSchema for Validity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .enum_values(Some(Validity::ALL.map(Validity::code)))
            .description(Some(
                "資格有効性: 1 valid, 2 invalid (lost), 3 invalid but a newer coverage exists, \
                 4 no such coverage, 5 several match.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Validity {}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i16(self.code())
    }
}

/// Decides the answer from the coverages that matched key and birth date (all acquired on or
/// before the date of care). Returns the coverage to disclose, if any.
///
/// - one coverage in force → 1; several in force → 5;
/// - none in force: lost coverages of several persons → 5; else the most recently acquired one
///   → 3 when the person has a newer coverage, 2 otherwise;
/// - nothing matched → 4 (and nothing is disclosed: a wrong birth date looks like no coverage).
pub fn decide(date_of_care: NaiveDate, candidates: &[Candidate]) -> (Validity, Option<&Candidate>) {
    let in_force = |c: &&Candidate| c.lost_on.is_none_or(|lost| lost > date_of_care);
    let mut valid = candidates.iter().filter(in_force);
    match (valid.next(), valid.next()) {
        (Some(only), None) => return (Validity::Valid, Some(only)),
        (Some(first), Some(_)) => return (Validity::Several, Some(first)),
        (None, _) => {}
    }
    let Some(latest) = candidates
        .iter()
        .max_by_key(|c| (c.acquired_on, c.coverage_id))
    else {
        return (Validity::NoSuchCoverage, None);
    };
    if candidates.iter().any(|c| c.person_id != latest.person_id) {
        return (Validity::Several, Some(latest));
    }
    if latest.newer_coverage_exists {
        (Validity::LostWithNewer, Some(latest))
    } else {
        (Validity::Lost, Some(latest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    pub(crate) fn candidate(id: i64, person: i64, acquired: &str, lost: Option<&str>) -> Candidate {
        Candidate {
            coverage_id: crate::domain::CoverageId::new(id),
            person_id: crate::domain::PersonId::new(person),
            insurer_number: "33120015".into(),
            insurer_name: None,
            symbol: "12".into(),
            number: "3456".into(),
            branch: "01".into(),
            acquired_on: date(acquired),
            lost_on: lost.map(date),
            loss_reason: lost.map(|_| "03".into()),
            card_classification: "01".into(),
            relationship: "1".into(),
            insured_name: "架空 太郎".into(),
            name: "架空 太郎".into(),
            name_kana: "カクウ タロウ".into(),
            sex: "1".into(),
            birth_date: date("1980-04-01"),
            postcode: None,
            address: None,
            copay_ratio: "030".into(),
            card_issued_on: None,
            card_valid_from: None,
            card_valid_to: None,
            elderly_copay_ratio: None,
            elderly_valid_from: None,
            elderly_valid_to: None,
            limit_classification: None,
            limit_category: None,
            limit_valid_from: None,
            limit_valid_to: None,
            specific_disease: None,
            specific_disease_valid_from: None,
            specific_disease_valid_to: None,
            specific_disease_self_pay: None,
            newer_coverage_exists: false,
        }
    }

    #[test]
    fn nothing_matched_is_4_and_discloses_nothing() {
        let (v, c) = decide(date("2026-11-24"), &[]);
        assert_eq!(v, Validity::NoSuchCoverage);
        assert!(c.is_none());
    }

    #[test]
    fn in_force_until_the_day_before_loss() {
        let c = [candidate(1, 1, "2020-04-01", Some("2026-11-01"))];
        assert_eq!(decide(date("2026-10-31"), &c).0, Validity::Valid);
        assert_eq!(decide(date("2026-11-01"), &c).0, Validity::Lost);
    }

    #[test]
    fn lost_with_a_newer_coverage_is_3() {
        let mut c = candidate(1, 1, "2020-04-01", Some("2026-11-01"));
        c.newer_coverage_exists = true;
        assert_eq!(decide(date("2026-11-02"), &[c]).0, Validity::LostWithNewer);
    }

    #[test]
    fn two_in_force_or_two_persons_lost_is_5() {
        let both = [
            candidate(1, 1, "2020-04-01", None),
            candidate(2, 2, "2021-04-01", None),
        ];
        assert_eq!(decide(date("2026-11-24"), &both).0, Validity::Several);
        let lost = [
            candidate(1, 1, "2020-04-01", Some("2021-01-01")),
            candidate(2, 2, "2020-04-01", Some("2021-01-01")),
        ];
        assert_eq!(decide(date("2026-11-24"), &lost).0, Validity::Several);
    }

    #[test]
    fn a_reused_key_answers_with_the_coverage_of_the_date() {
        let c = [
            candidate(1, 1, "2010-04-01", Some("2015-04-01")),
            candidate(2, 1, "2018-04-01", None),
        ];
        let (v, chosen) = decide(date("2026-11-24"), &c);
        assert_eq!((v, chosen.unwrap().coverage_id.get()), (Validity::Valid, 2));
    }
}
