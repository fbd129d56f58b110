//! The `access-log` command: the card holder's own list of who looked at their data.

use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::AccessLogArgs;
use crate::outcome::Failure;
use crate::signing::{holder_proof, HolderRequest};
use card_reader::binding::Purpose;

/// Runs the flow; prints the list on stdout and progress on stderr.
pub fn run(args: &AccessLogArgs) -> Result<(), Failure> {
    let (client, proof) = holder_proof(
        &HolderRequest {
            server: &args.server,
            server_timeout: args.server_timeout,
            reader: args.reader.as_deref(),
            timeout: args.timeout,
            pin_stdin: args.pin_stdin,
        },
        Purpose::SelfView,
    )?;
    let limit = args.limit.map(|n| n.to_string());
    let mut page = Vec::new();
    if let Some(limit) = &limit {
        page.push(("limit", limit.as_str()));
    }
    if let Some(before) = &args.before {
        page.push(("before", before.as_str()));
    }
    let answer = client.access_log(&proof, &page)?;
    if args.json {
        println!("{answer:#}");
    } else {
        print!("{}", list_text(&answer));
    }
    Ok(())
}

/// One line per entry, newest first, then how to see older ones.
fn list_text(answer: &Value) -> String {
    let entries = answer["entries"].as_array().map_or(&[][..], Vec::as_slice);
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("Nobody has looked at your data (in this period).\n");
    } else {
        out.push_str("Who looked at your data, newest first:\n");
    }
    for entry in entries {
        let text = |field: &str| entry[field].as_str().unwrap_or("?").to_owned();
        let _ = writeln!(
            out,
            "{}  {:<18}  {}",
            text("at"),
            text("kind"),
            who(&entry["party"])
        );
    }
    if let Some(next) = answer["next"].as_str() {
        let _ = writeln!(out, "Older entries: run again with --before {next}");
    }
    out
}

fn who(party: &Value) -> String {
    if party.is_null() {
        return "you, with your card".to_owned();
    }
    let name = party["name"].as_str().unwrap_or("(no name)");
    let role = party["role"].as_str().unwrap_or("?");
    match party["facility_code"].as_str() {
        Some(code) => format!("{name} ({role} {code})"),
        None => format!("{name} ({role})"),
    }
}

#[cfg(test)]
mod tests {
    use super::list_text;
    use serde_json::json;

    #[test]
    fn lists_each_entry_and_the_way_to_older_ones() {
        let text = list_text(&json!({
            "entries": [
                {"at": "2026-11-24T01:00:00Z", "kind": "access_log.self", "party": null,
                 "validity": 1, "check_id": "c2"},
                {"at": "2026-11-24T00:00:00Z", "kind": "eligibility.card", "validity": 1,
                 "check_id": "c1",
                 "party": {"name": "架空薬局", "role": "facility", "facility_code": "1341234522"}},
            ],
            "next": "c1", "check_id": "c3"}));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].contains("you, with your card"));
        assert!(lines[2].contains("架空薬局 (facility 1341234522)"));
        assert!(lines[3].ends_with("--before c1"));
        assert!(list_text(&json!({"entries": [], "check_id": "c"})).starts_with("Nobody"));
    }
}
