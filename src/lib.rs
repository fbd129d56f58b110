//! onshi: online insurance-eligibility confirmation and per-purpose health identifiers.
//!
//! A request flows one way: [`api`] (parse, authenticate) → the use case ([`eligibility`],
//! [`enrollment`], [`access_log`]) → [`store`] (the only SQL) → back out as a typed answer, with
//! the [`audit`] record made durable on the way. [`domain`] holds the validated types everything
//! past the edge works with.

pub mod access_log;
pub mod api;
pub mod audit;
pub mod card;
pub mod cli;
pub mod config;
pub use onshi_domain as domain;
pub mod eligibility;
pub mod enrollment;
pub mod health_id;
pub mod link_key;
pub mod parties;
pub mod secret_file;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
