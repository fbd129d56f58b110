//! Integration tests: the real server, over HTTP, against a real PostgreSQL.

mod access_log;
mod answer_details;
mod audit;
mod bad_input;
mod batch;
mod card;
mod contract;
mod db_tls;
mod eligibility;
mod enrollments;
mod faults;
mod fhir;
mod health;
mod health_ids;
mod helpers;
mod limits;
mod link_key;
mod metrics;
mod migrations;
mod openapi;
mod own_server;
mod proof;
mod public_expenses;
mod reader;
mod roles;
mod tls;
