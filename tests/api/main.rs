//! Integration tests: the real server, over HTTP, against a real PostgreSQL.

mod batch;
mod eligibility;
mod enrollments;
mod health;
mod health_ids;
mod helpers;
