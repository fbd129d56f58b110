//! The columns of an insurer's enrolment file (the layout in the API description), and which
//! change may set which.

/// Every column onshi knows; a header naming anything else rejects the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    Change,
    IndividualNumber,
    InsurerNumber,
    InsurerName,
    Symbol,
    Number,
    Branch,
    CardClassification,
    Relationship,
    InsuredName,
    Name,
    NameKana,
    Sex,
    BirthDate,
    Postcode,
    Address,
    AcquiredOn,
    LostOn,
    LossReason,
    EffectiveOn,
    CopayRatio,
    CardIssuedOn,
    CardValidFrom,
    CardValidTo,
    ElderlyCopayRatio,
    ElderlyValidFrom,
    ElderlyValidTo,
    LimitClassification,
    LimitCategory,
    LimitValidFrom,
    LimitValidTo,
    SpecificDisease,
    SpecificDiseaseValidFrom,
    SpecificDiseaseValidTo,
    SpecificDiseaseSelfPay,
}

pub const ALL: [Col; 35] = [
    Col::Change,
    Col::IndividualNumber,
    Col::InsurerNumber,
    Col::InsurerName,
    Col::Symbol,
    Col::Number,
    Col::Branch,
    Col::CardClassification,
    Col::Relationship,
    Col::InsuredName,
    Col::Name,
    Col::NameKana,
    Col::Sex,
    Col::BirthDate,
    Col::Postcode,
    Col::Address,
    Col::AcquiredOn,
    Col::LostOn,
    Col::LossReason,
    Col::EffectiveOn,
    Col::CopayRatio,
    Col::CardIssuedOn,
    Col::CardValidFrom,
    Col::CardValidTo,
    Col::ElderlyCopayRatio,
    Col::ElderlyValidFrom,
    Col::ElderlyValidTo,
    Col::LimitClassification,
    Col::LimitCategory,
    Col::LimitValidFrom,
    Col::LimitValidTo,
    Col::SpecificDisease,
    Col::SpecificDiseaseValidFrom,
    Col::SpecificDiseaseValidTo,
    Col::SpecificDiseaseSelfPay,
];

/// The attribute columns an `update` may change (and an `acquire` sets).
pub const ATTRIBUTES: [Col; 24] = [
    Col::CardClassification,
    Col::Relationship,
    Col::InsuredName,
    Col::Name,
    Col::NameKana,
    Col::Sex,
    Col::BirthDate,
    Col::Postcode,
    Col::Address,
    Col::CopayRatio,
    Col::CardIssuedOn,
    Col::CardValidFrom,
    Col::CardValidTo,
    Col::ElderlyCopayRatio,
    Col::ElderlyValidFrom,
    Col::ElderlyValidTo,
    Col::LimitClassification,
    Col::LimitCategory,
    Col::LimitValidFrom,
    Col::LimitValidTo,
    Col::SpecificDisease,
    Col::SpecificDiseaseValidFrom,
    Col::SpecificDiseaseValidTo,
    Col::SpecificDiseaseSelfPay,
];

impl Col {
    pub fn name(self) -> &'static str {
        match self {
            Col::Change => "change",
            Col::IndividualNumber => "individual_number",
            Col::InsurerNumber => "insurer_number",
            Col::InsurerName => "insurer_name",
            Col::Symbol => "symbol",
            Col::Number => "number",
            Col::Branch => "branch",
            Col::CardClassification => "card_classification",
            Col::Relationship => "relationship",
            Col::InsuredName => "insured_name",
            Col::Name => "name",
            Col::NameKana => "name_kana",
            Col::Sex => "sex",
            Col::BirthDate => "birth_date",
            Col::Postcode => "postcode",
            Col::Address => "address",
            Col::AcquiredOn => "acquired_on",
            Col::LostOn => "lost_on",
            Col::LossReason => "loss_reason",
            Col::EffectiveOn => "effective_on",
            Col::CopayRatio => "copay_ratio",
            Col::CardIssuedOn => "card_issued_on",
            Col::CardValidFrom => "card_valid_from",
            Col::CardValidTo => "card_valid_to",
            Col::ElderlyCopayRatio => "elderly_copay_ratio",
            Col::ElderlyValidFrom => "elderly_valid_from",
            Col::ElderlyValidTo => "elderly_valid_to",
            Col::LimitClassification => "limit_classification",
            Col::LimitCategory => "limit_category",
            Col::LimitValidFrom => "limit_valid_from",
            Col::LimitValidTo => "limit_valid_to",
            Col::SpecificDisease => "specific_disease",
            Col::SpecificDiseaseValidFrom => "specific_disease_valid_from",
            Col::SpecificDiseaseValidTo => "specific_disease_valid_to",
            Col::SpecificDiseaseSelfPay => "specific_disease_self_pay",
        }
    }

    /// Whether the column holds a date (`YYYY-MM-DD`).
    pub fn is_date(self) -> bool {
        matches!(
            self,
            Col::BirthDate
                | Col::AcquiredOn
                | Col::LostOn
                | Col::EffectiveOn
                | Col::CardIssuedOn
                | Col::CardValidFrom
                | Col::CardValidTo
                | Col::ElderlyValidFrom
                | Col::ElderlyValidTo
                | Col::LimitValidFrom
                | Col::LimitValidTo
                | Col::SpecificDiseaseValidFrom
                | Col::SpecificDiseaseValidTo
        )
    }

    /// The column's place in [`ALL`], which lists the variants in declaration order (a test
    /// holds the two together): a cast, because `Layout::get` asks for it for every cell.
    pub fn index(self) -> usize {
        self as usize
    }
}
