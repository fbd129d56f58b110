//! Building a JSON endpoint's bad-input cases: the refusals every endpoint shares, and the
//! wrong types, absences and hostile values of each member.

use serde_json::{json, Value};

use super::{Case, Who};

/// How an endpoint reads its members: one by one (`<field>.type`, `<field>.required`) or into a
/// typed body (`body.invalid` naming the field).
#[derive(Clone, Copy, PartialEq)]
pub enum Style {
    Members,
    Typed,
}

pub struct Endpoint {
    pub who: Who,
    pub path: &'static str,
    pub base: Value,
    pub style: Style,
}

/// Hostile values every string member is tried with; the expected kind is given per member.
pub const SQL: &str = "'; drop table parties; --";
pub const WILDCARDS: &str = "%_%";
pub const NUL: &str = "12\u{0}34";

pub fn long() -> String {
    "7".repeat(10_000)
}

impl Endpoint {
    pub fn case(
        &self,
        name: &str,
        body: Vec<u8>,
        want: (u16, &str, Option<&str>),
        sent: &str,
    ) -> Case {
        Case {
            name: format!("{} {name}", self.path),
            who: self.who,
            method: "POST",
            path: self.path.to_owned(),
            headers: vec![("Content-Type", "application/json".to_owned())],
            body,
            status: want.0,
            code: want.1.to_owned(),
            field: want.2.map(str::to_owned),
            sent: sent.to_owned(),
            line: None,
        }
    }

    /// The base body with `field` set to `value` (or removed, for `None`).
    pub fn with(&self, field: &str, value: Option<Value>) -> Vec<u8> {
        let mut body = self.base.clone();
        let map = body.as_object_mut().unwrap();
        match value {
            Some(v) => map.insert(field.to_owned(), v),
            None => map.remove(field),
        };
        serde_json::to_vec(&body).unwrap()
    }

    /// What every JSON endpoint must refuse whatever its members.
    pub fn generic(&self) -> Vec<Case> {
        let base = serde_json::to_vec(&self.base).unwrap();
        let invalid = (400, "body.invalid_json", None);
        let not_object = (400, "body.not_object", None);
        let mut raw_nul = base.clone();
        raw_nul.insert(base.len() - 1, 0);
        let mut bad_utf8 = br#"{"colour": "caf"#.to_vec();
        bad_utf8.extend_from_slice(b"\xff\"}");
        let mut csv_body = self.case(
            "CSV sent as JSON",
            b"number\n8421\n".to_vec(),
            invalid,
            "8421",
        );
        csv_body.headers = vec![("Content-Type", "text/csv".to_owned())];
        vec![
            self.case(
                "malformed JSON",
                base[..base.len() - 1].to_vec(),
                invalid,
                "",
            ),
            self.case("a raw NUL byte", raw_nul, invalid, ""),
            self.case("invalid UTF-8", bad_utf8, invalid, "caf"),
            self.case("an empty body", Vec::new(), invalid, ""),
            self.case(
                "an array",
                format!("[{}]", self.base).into_bytes(),
                not_object,
                "",
            ),
            self.case("null", b"null".to_vec(), not_object, ""),
            self.case("a string", br#""8421""#.to_vec(), not_object, "8421"),
            csv_body,
            self.case(
                "an unknown member",
                self.with("colour", Some(json!("marker-value"))),
                (
                    400,
                    if self.style == Style::Typed {
                        "body.invalid"
                    } else {
                        "body.unknown_field"
                    },
                    Some("colour"),
                ),
                "marker-value",
            ),
        ]
    }

    /// A string member sent as the wrong JSON type, null, absent, and as each of `bad` (value,
    /// expected kind). `required`: whether absence is an error.
    pub fn string(&self, field: &'static str, required: bool, bad: &[(&str, &str)]) -> Vec<Case> {
        let wrong_type = match self.style {
            Style::Members => format!("{field}.type"),
            Style::Typed => "body.invalid".to_owned(),
        };
        let absent = match self.style {
            Style::Members => format!("{field}.required"),
            Style::Typed => "body.invalid".to_owned(),
        };
        let mut cases = vec![
            (json!(98765), wrong_type.clone(), "98765"),
            (json!(["nested-value"]), wrong_type.clone(), "nested-value"),
            (
                json!({"k": "object-value"}),
                wrong_type.clone(),
                "object-value",
            ),
            (json!(true), wrong_type, ""),
        ];
        if required {
            cases.push((Value::Null, absent.clone(), ""));
        }
        let mut out: Vec<Case> = cases
            .into_iter()
            .map(|(value, code, sent)| {
                let name = format!("{field} = {value}");
                self.case(
                    &name,
                    self.with(field, Some(value)),
                    (400, &code, Some(field)),
                    sent,
                )
            })
            .collect();
        if required {
            let name = format!("{field} missing");
            out.push(self.case(
                &name,
                self.with(field, None),
                (400, &absent, Some(field)),
                "",
            ));
        }
        for (value, kind) in bad {
            let name: String = format!("{field} = {value:?}").chars().take(60).collect();
            let code = format!("{field}.{kind}");
            let sent: String = value.chars().take(16).collect();
            out.push(self.case(
                &name,
                self.with(field, Some(json!(value))),
                (400, &code, Some(field)),
                &sent,
            ));
        }
        out
    }

    /// A member that is not a string, sent as each of `values`, all answered `code`.
    pub fn other(&self, field: &'static str, values: &[Value], code: &str) -> Vec<Case> {
        values
            .iter()
            .map(|v| {
                let name = format!("{field} = {v}");
                self.case(
                    &name,
                    self.with(field, Some(v.clone())),
                    (400, code, Some(field)),
                    "",
                )
            })
            .collect()
    }
}

/// The hostile values, each with the kind the member's parser answers (`None`: accepted).
pub fn hostile(kinds: [Option<&'static str>; 4]) -> Vec<(String, &'static str)> {
    [SQL.to_owned(), WILDCARDS.to_owned(), NUL.to_owned(), long()]
        .into_iter()
        .zip(kinds)
        .filter_map(|(value, kind)| kind.map(|k| (value, k)))
        .collect()
}

/// `hostile` plus member-specific values.
pub fn bad(
    kinds: [Option<&'static str>; 4],
    more: &[(&str, &'static str)],
) -> Vec<(String, &'static str)> {
    let mut all = hostile(kinds);
    all.extend(more.iter().map(|(v, k)| ((*v).to_owned(), *k)));
    all
}

pub fn refs<'a>(values: &'a [(String, &'static str)]) -> Vec<(&'a str, &'static str)> {
    values.iter().map(|(v, k)| (v.as_str(), *k)).collect()
}

/// The kind most parsers answer for a malformed value.
pub const F: Option<&str> = Some("format");
