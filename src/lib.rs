//! onshi: online insurance-eligibility confirmation and per-purpose health identifiers.

pub mod demo_data;
pub mod domain;
