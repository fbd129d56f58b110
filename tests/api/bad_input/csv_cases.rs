//! The enrolment upload's bad input: files whose one problem is named by the report's first
//! line error, and requests refused before any line is read.

use crate::helpers::{my_number, Csv, HEADER, INSURER};

use super::{Case, Who};

/// Distinct from the setup's person, so a file applied by mistake would show in the counts.
const PERSON: u64 = 500;

/// One valid acquisition, as (column, value) cells.
fn acquisition(my_number: &str) -> Vec<(&'static str, String)> {
    [
        ("change", "acquire"),
        ("individual_number", my_number),
        ("insurer_number", INSURER),
        ("insurer_name", "架空健康保険組合"),
        ("symbol", "12"),
        ("number", "9001"),
        ("branch", "01"),
        ("card_classification", "01"),
        ("relationship", "1"),
        ("insured_name", "架空 花子"),
        ("name", "架空 花子"),
        ("name_kana", "カクウ ハナコ"),
        ("sex", "2"),
        ("birth_date", "1985-05-05"),
        ("postcode", "100-0001"),
        ("address", "東京都架空区緑町1-2-3"),
        ("acquired_on", "2020-04-01"),
        ("copay_ratio", "030"),
    ]
    .into_iter()
    .map(|(c, v)| (c, v.to_owned()))
    .collect()
}

/// A file of one valid acquisition (line 2) with `column` set to `value`.
fn with(column: &str, value: &str) -> String {
    let mn = my_number(PERSON);
    let mut cells = acquisition(&mn);
    for cell in &mut cells {
        if cell.0 == column {
            cell.1 = value.to_owned();
        }
    }
    let cells: Vec<(&str, &str)> = cells.iter().map(|(c, v)| (*c, v.as_str())).collect();
    Csv::new().row(&cells).build()
}

fn valid() -> String {
    with("change", "acquire")
}

struct Cases {
    out: Vec<Case>,
}

impl Cases {
    /// A file answered 422 whose first line error has `code` in `column` on `line`.
    fn file(
        &mut self,
        name: &str,
        body: impl Into<Vec<u8>>,
        line: u64,
        column: &str,
        code: &str,
        sent: &str,
    ) {
        let key = format!("bad-input-{}", self.out.len());
        self.request(
            name,
            body,
            &key,
            "text/csv",
            (422, code, Some(column)),
            sent,
        );
        self.out.last_mut().unwrap().line = Some(line);
    }

    fn request(
        &mut self,
        name: &str,
        body: impl Into<Vec<u8>>,
        key: &str,
        content_type: &str,
        want: (u16, &str, Option<&str>),
        sent: &str,
    ) {
        let mut headers = vec![("Idempotency-Key", key.to_owned())];
        if !content_type.is_empty() {
            headers.push(("Content-Type", content_type.to_owned()));
        }
        self.out.push(Case {
            name: format!("enrolment: {name}"),
            who: Who::Insurer,
            method: "POST",
            path: "/v1/enrollments".to_owned(),
            headers,
            body: body.into(),
            status: want.0,
            code: want.1.to_owned(),
            field: want.2.map(str::to_owned),
            sent: sent.to_owned(),
            line: None,
        });
    }
}

pub fn all() -> Vec<Case> {
    let mut c = Cases { out: Vec::new() };
    let sql = "'; drop table parties; --";
    let long = "7".repeat(10_000);
    let mn = my_number(PERSON);

    let mut bytes = valid().into_bytes();
    let at = bytes.iter().position(|&b| b == 0xE8).unwrap(); // the first byte of 花
    bytes[at] = 0xFF;
    c.file("invalid UTF-8", bytes, 2, "change", "row.encoding", &mn);
    c.file(
        "a NUL byte in a name",
        with("name", "架空\0花子"),
        2,
        "name",
        "name.format",
        &mn,
    );
    c.file(
        "a NUL byte in a number",
        with("number", "90\u{0}01"),
        2,
        "number",
        "number.format",
        &mn,
    );
    for (column, value, code) in [
        ("symbol", "東京12", "symbol.mixed_width"),
        ("number", "a東", "number.mixed_width"),
        ("symbol", "１２　３４", "symbol.full_width_space"),
        (
            "insurer_number",
            "３３１２００１５",
            "insurer_number.format",
        ),
        ("branch", "０１", "branch.format"),
        ("birth_date", "１９８５-05-05", "birth_date.format"),
        ("change", sql, "change.unknown_code"),
        ("insurer_number", sql, "insurer_number.format"),
        ("symbol", "%_%", "symbol.format"),
        ("number", sql, "number.format"),
        ("sex", sql, "sex.unknown_code"),
        ("birth_date", sql, "birth_date.format"),
        ("individual_number", sql, "individual_number.format"),
        ("acquired_on", "2020-02-30", "acquired_on.format"),
        ("name", &long, "name.too_long"),
        ("address", &long, "address.too_long"),
        ("number", &long, "number.too_long"),
    ] {
        let name = format!("{column} = {}", value.chars().take(20).collect::<String>());
        let sent: String = value.chars().take(16).collect();
        c.file(&name, with(column, value), 2, column, code, &sent);
    }
    let loss = Csv::new()
        .row(&[
            ("change", "lose"),
            ("individual_number", &mn),
            ("insurer_number", INSURER),
            ("number", "3456"),
            ("lost_on", "2024-01-01"),
            ("loss_reason", "99"),
        ])
        .build();
    c.file(
        "a My Number on a loss",
        loss,
        2,
        "individual_number",
        "individual_number.not_allowed",
        &mn,
    );

    let row = valid().lines().nth(1).unwrap().to_owned();
    c.file(
        "a field too many",
        format!("{HEADER}\n{row},extra\n"),
        2,
        "change",
        "row.field_count",
        &mn,
    );
    let short = row.rsplit_once(',').unwrap().0;
    c.file(
        "a field too few",
        format!("{HEADER}\n{short}\n"),
        2,
        "change",
        "row.field_count",
        &mn,
    );
    c.file(
        "an unclosed quote",
        format!(
            "{HEADER}\n{}\n",
            row.replacen("架空 花子", "\"架空 花子", 1)
        ),
        2,
        "change",
        "row.field_count",
        &mn,
    );
    c.file(
        "an unknown column",
        format!("{HEADER},colour\n{row},blue-ish\n"),
        1,
        "colour",
        "column.unknown",
        "blue-ish",
    );
    c.file(
        "a column twice",
        format!("{HEADER},name\n{row},架空\n"),
        1,
        "name",
        "column.duplicate",
        &mn,
    );
    c.file(
        "no number column",
        "change,insurer_number\nlose,33120015\n",
        1,
        "number",
        "column.missing",
        "",
    );
    c.file("an empty file", "", 1, "change", "file.empty", "");
    let crlf = format!("{}\r\n", valid().trim_end().replace('\n', "\r\n"))
        + with("sex", "9")
            .lines()
            .nth(1)
            .unwrap()
            .replacen("9001", "9002", 1)
            .as_str()
        + "\r\n";
    c.file(
        "CRLF line ends, line 3 bad",
        crlf,
        3,
        "sex",
        "sex.unknown_code",
        &mn,
    );

    // Refused before a line is read: the file itself is valid and must not be applied.
    let unsupported = (415, "content_type.unsupported", Some("Content-Type"));
    c.request(
        "sent as JSON",
        valid(),
        "bad-input-json",
        "application/json",
        unsupported,
        &mn,
    );
    c.request(
        "no Content-Type",
        valid(),
        "bad-input-none",
        "",
        unsupported,
        &mn,
    );
    let format = (400, "idempotency_key.format", Some("Idempotency-Key"));
    for key in [
        "with space".to_owned(),
        "k".repeat(201),
        "キー".to_owned(),
        String::new(),
    ] {
        c.request(
            "a malformed Idempotency-Key",
            valid(),
            &key,
            "text/csv",
            format,
            &mn,
        );
    }
    c.request("no Idempotency-Key", valid(), "", "text/csv", format, &mn);
    let missing = c.out.last_mut().unwrap();
    missing
        .headers
        .retain(|(name, _)| *name != "Idempotency-Key");
    missing.code = "idempotency_key.required".into();
    c.out
}
