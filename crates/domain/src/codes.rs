//! The small code lists of an eligibility answer and of enrolment changes.
//!
//! Each enum parses its wire code (`parse`), gives it back (`as_str`) and serializes as it, so
//! the codes on the wire are exactly those of the real system.

use super::Invalid;

/// Defines a code enum: variants with their wire codes, `parse`, `as_str`, `ALL`, `Serialize`.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// # Errors
            /// `required` when empty, `unknown_code` for any code not in the list.
            pub fn parse(s: &str) -> Result<Self, Invalid> {
                match s {
                    "" => Err(Invalid::required(concat!("the ", $what, " is required"))),
                    $( $code => Ok(Self::$variant), )+
                    _ => Err(Invalid::unknown_code(concat!(
                        "not a known ", $what, "; use one of: ", $($code, " ",)+
                    ))),
                }
            }

            /// The wire code.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( Self::$variant => $code, )+
                }
            }
        }

        canonical_string!($name);
    };
}

code_enum! {
    /// 性別: sex as registered.
    Sex, "sex code" {
        /// 1 男: male.
        Male = "1",
        /// 2 女: female.
        Female = "2",
        /// 3 未設定: not set.
        Unset = "3",
    }
}

code_enum! {
    /// 本人・家族: whether the person is the insured person or a dependant.
    Relationship, "relationship code" {
        /// 1 本人: the insured person (被保険者).
        Insured = "1",
        /// 2 家族: a dependant (被扶養者).
        Dependant = "2",
    }
}

code_enum! {
    /// 資格区分 / 証区分: the kind of card or certificate the coverage is shown with.
    CardClassification, "card classification" {
        /// 01 一般: general.
        General = "01",
        /// 02 退職: retired.
        Retired = "02",
        /// 03 短期(一般): short-term, general.
        ShortTermGeneral = "03",
        /// 04 短期(退職): short-term, retired.
        ShortTermRetired = "04",
        /// 05 資格証明書: certificate of eligibility.
        EligibilityCertificate = "05",
        /// 06 特例退職: special retired.
        SpecialRetired = "06",
        /// 07 自衛官診療証: Self-Defense Forces medical card.
        SelfDefenseForces = "07",
        /// A1 医療扶助: medical assistance under public assistance.
        MedicalAssistance = "A1",
    }
}

code_enum! {
    /// 負担割合: the patient's copay ratio, the percentage as three zero-padded digits ("030" = 30%).
    CopayRatio, "copay ratio" {
        /// 010: 1割, 10%.
        Ten = "010",
        /// 020: 2割, 20%.
        Twenty = "020",
        /// 030: 3割, 30%.
        Thirty = "030",
    }
}

impl CopayRatio {
    /// The ratio in percent.
    pub fn percent(&self) -> u8 {
        match self {
            Self::Ten => 10,
            Self::Twenty => 20,
            Self::Thirty => 30,
        }
    }
}

code_enum! {
    /// 資格喪失事由: why a coverage was lost.
    LossReason, "loss reason" {
        /// 01 死亡: death.
        Death = "01",
        /// 02 生活保護受給開始: started public assistance.
        PublicAssistance = "02",
        /// 03 他の保険の資格取得: acquired other coverage.
        OtherCoverage = "03",
        /// 99 その他: other.
        Other = "99",
    }
}

code_enum! {
    /// 限度額適用認定証 区分: the classification of a high-cost limit certificate. The public
    /// sources give the codes 01-03 without their meanings, so the variants are named by code.
    LimitClassification, "limit classification" {
        /// 区分 01.
        C01 = "01",
        /// 区分 02.
        C02 = "02",
        /// 区分 03.
        C03 = "03",
    }
}

code_enum! {
    /// 適用区分: the income category of a high-cost limit certificate. A01-A06 are the
    /// categories under 70; B01-B10 those for 70 and over, whose meanings the public sources do
    /// not give.
    LimitCategory, "limit category" {
        /// A01 ア: under 70, category ア (highest income).
        A01 = "A01",
        /// A02 イ: under 70, category イ.
        A02 = "A02",
        /// A03 ウ: under 70, category ウ.
        A03 = "A03",
        /// A04 エ: under 70, category エ.
        A04 = "A04",
        /// A05 オ: under 70, category オ (exempt from residence tax).
        A05 = "A05",
        /// A06 オ（境）: under 70, category オ, boundary-layer case (境界層該当).
        A06 = "A06",
        /// B01: 70 and over, category 1.
        B01 = "B01",
        /// B02: 70 and over, category 2.
        B02 = "B02",
        /// B03: 70 and over, category 3.
        B03 = "B03",
        /// B04: 70 and over, category 4.
        B04 = "B04",
        /// B05: 70 and over, category 5.
        B05 = "B05",
        /// B06: 70 and over, category 6.
        B06 = "B06",
        /// B07: 70 and over, category 7.
        B07 = "B07",
        /// B08: 70 and over, category 8.
        B08 = "B08",
        /// B09: 70 and over, category 9.
        B09 = "B09",
        /// B10: 70 and over, category 10.
        B10 = "B10",
    }
}

code_enum! {
    /// 特定疾病療養受療証の疾病区分: the specific disease of a 特定疾病 certificate.
    SpecificDisease, "specific-disease category" {
        /// 1 人工腎臓を実施している慢性腎不全: chronic renal failure on dialysis.
        Dialysis = "1",
        /// 2 血漿分画製剤を投与している先天性血液凝固因子障害: congenital coagulation disorder.
        Coagulation = "2",
        /// 3 抗ウイルス剤を投与している後天性免疫不全症候群 (HIV from blood products).
        Hiv = "3",
    }
}

/// A self-pay cap in yen per month (自己負担限度額), e.g. 10000 for most 特定疾病 certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelfPayCap(u32);

impl SelfPayCap {
    /// # Errors
    /// `required` when empty, `format` unless 1 to 7 ASCII digits (at most 9,999,999 yen).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the self-pay cap is required"));
        }
        if s.len() > 7 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::format(
                "a self-pay cap is yen per month in 1 to 7 digits, e.g. 10000",
            ));
        }
        s.parse()
            .map(Self)
            .map_err(|_| Invalid::format("not a number of yen"))
    }

    pub fn yen(self) -> u32 {
        self.0
    }
}

/// 照会番号: a facility's own number for a patient, 1 to 20 ASCII letters, digits or hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferenceNumber(String);

impl ReferenceNumber {
    /// # Errors
    /// `required` when empty, `too_long` beyond 20 characters, `format` for any character but
    /// ASCII letters, digits and `-`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.is_empty() {
            return Err(Invalid::required("the reference number is required"));
        }
        if s.len() > 20 {
            return Err(Invalid::too_long(
                "a reference number has at most 20 characters",
            ));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Invalid::format(
                "a reference number is ASCII letters, digits and hyphens",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip() {
        assert_eq!(Sex::parse("2"), Ok(Sex::Female));
        assert_eq!(Relationship::parse("1"), Ok(Relationship::Insured));
        assert_eq!(
            CardClassification::parse("A1"),
            Ok(CardClassification::MedicalAssistance)
        );
        assert_eq!(CopayRatio::parse("020").unwrap().percent(), 20);
        assert_eq!(LossReason::parse("99"), Ok(LossReason::Other));
        assert_eq!(
            LimitClassification::parse("03"),
            Ok(LimitClassification::C03)
        );
        assert_eq!(LimitCategory::parse("B10"), Ok(LimitCategory::B10));
        assert_eq!(LimitCategory::A06.as_str(), "A06");
        assert_eq!(
            serde_json::to_string(&CopayRatio::Thirty).unwrap(),
            "\"030\""
        );
    }

    #[test]
    fn every_variant_parses_from_its_own_code() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            as_str: fn(&T) -> &'static str,
            parse: fn(&str) -> Result<T, Invalid>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for v in all {
                assert!(seen.insert(as_str(v)), "duplicate code {}", as_str(v));
                assert_eq!(parse(as_str(v)), Ok(*v));
            }
        }
        check(Sex::ALL, Sex::as_str, Sex::parse);
        check(Relationship::ALL, Relationship::as_str, Relationship::parse);
        check(
            CardClassification::ALL,
            CardClassification::as_str,
            CardClassification::parse,
        );
        check(CopayRatio::ALL, CopayRatio::as_str, CopayRatio::parse);
        check(LossReason::ALL, LossReason::as_str, LossReason::parse);
        check(
            LimitClassification::ALL,
            LimitClassification::as_str,
            LimitClassification::parse,
        );
        check(
            LimitCategory::ALL,
            LimitCategory::as_str,
            LimitCategory::parse,
        );
        assert_eq!(CardClassification::ALL.len(), 8);
        assert_eq!(LimitCategory::ALL.len(), 16);
    }

    #[test]
    fn rejects_unknown_and_empty_codes() {
        assert_eq!(Sex::parse("").unwrap_err().kind, "required");
        assert_eq!(Sex::parse("0").unwrap_err().kind, "unknown_code");
        assert_eq!(Sex::parse("1 ").unwrap_err().kind, "unknown_code");
        assert_eq!(CopayRatio::parse("30").unwrap_err().kind, "unknown_code");
        assert_eq!(
            CardClassification::parse("a1").unwrap_err().kind,
            "unknown_code"
        );
        assert_eq!(LossReason::parse("04").unwrap_err().kind, "unknown_code");
        assert_eq!(
            LimitCategory::parse("A07").unwrap_err().kind,
            "unknown_code"
        );
        assert_eq!(
            LimitClassification::parse("04").unwrap_err().kind,
            "unknown_code"
        );
    }
}
