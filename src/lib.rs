//! onshi: online insurance-eligibility confirmation and per-purpose health identifiers.
//!
//! A request flows one way: [`api`] (parse, authenticate) → the use case ([`eligibility`],
//! [`enrollment`], [`access_log`], [`card`], [`health_id`], [`parties`], [`bulk`],
//! [`public_expense`]) → [`store`] (the only
//! SQL) → back out as a typed answer, with the [`audit`] record made durable on the way and, for
//! an eligibility answer, the [`proof`] anyone can verify signed into it.
//!
//! The layers are crates, so a backward import does not compile:
//!
//! | crate | holds | depends on |
//! |---|---|---|
//! | `onshi-domain` ([`domain`]) | the validated types everything past the edge works with | nothing of onshi |
//! | `onshi-store` ([`store`]) | every SQL statement, each module owning its rows; the migrations; the connection and its TLS | `onshi-domain` |
//! | `onshi-oqs-xml` | the real system's XML files: requests read, answers and `face` files written, names, encodings | nothing of onshi |
//! | `onshi` (this crate) | the use cases, the HTTP edge and the command line | the three above |
//! | `onshi-demo-data` | the synthetic enrolment generator (not linked by the server) | `onshi-domain` |
//! | `onshi-card-reader` | the PC/SC reader client and the virtual card of the tests | `onshi-oqs-xml` (the `face` files) |

pub mod access_log;
pub mod api;
pub mod audit;
pub mod bridge;
pub mod bulk;
pub mod card;
pub mod cli;
pub mod clock;
pub mod config;
pub use onshi_domain as domain;
pub mod eligibility;
pub mod enrollment;
pub mod health_id;
pub mod link_key;
pub mod metrics;
pub mod parties;
pub mod proof;
pub mod public_expense;
pub mod secret_file;
pub mod startup;
pub use onshi_store as store;
pub mod telemetry;
pub mod tls;
