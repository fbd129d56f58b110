//! The shape of one row of the enrolment file.

use serde::Serialize;

/// One CSV row; the fields are in the order of [`super::header`] and empty when absent.
#[derive(Debug, Default, Serialize)]
pub(super) struct Row {
    pub(super) change: &'static str,
    pub(super) individual_number: String,
    pub(super) insurer_number: String,
    pub(super) insurer_name: String,
    pub(super) symbol: String,
    pub(super) number: String,
    pub(super) branch: String,
    pub(super) card_classification: &'static str,
    pub(super) relationship: &'static str,
    pub(super) insured_name: String,
    pub(super) name: String,
    pub(super) name_kana: String,
    pub(super) sex: &'static str,
    pub(super) birth_date: String,
    pub(super) postcode: String,
    pub(super) address: String,
    pub(super) acquired_on: String,
    pub(super) lost_on: String,
    pub(super) loss_reason: &'static str,
    pub(super) effective_on: String,
    pub(super) copay_ratio: &'static str,
    pub(super) card_issued_on: String,
    pub(super) card_valid_from: String,
    pub(super) card_valid_to: String,
    pub(super) elderly_copay_ratio: &'static str,
    pub(super) elderly_valid_from: String,
    pub(super) elderly_valid_to: String,
    pub(super) limit_classification: &'static str,
    pub(super) limit_category: &'static str,
    pub(super) limit_valid_from: String,
    pub(super) limit_valid_to: String,
    pub(super) specific_disease: &'static str,
    pub(super) specific_disease_valid_from: String,
    pub(super) specific_disease_valid_to: String,
    pub(super) specific_disease_self_pay: &'static str,
}
