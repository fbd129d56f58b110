//! The generated file must be what the loader accepts: these tests parse every row with the
//! domain types and replay the changes per coverage key.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::{header, write_enrolment_csv, DemoSummary};
use onshi_domain::{
    parse_date, Address, BranchNumber, CardClassification, CopayRatio, IndividualNumber,
    InsuredNumber, InsuredSymbol, InsurerNumber, KanaName, LimitCategory, LimitClassification,
    LossReason, PersonName, Postcode, Relationship, Sex,
};

fn generate(persons: u64, seed: u64) -> (Vec<u8>, DemoSummary) {
    let mut out = Vec::new();
    let summary =
        write_enrolment_csv(&mut out, persons, seed).expect("writing to a Vec cannot fail");
    (out, summary)
}

fn records(bytes: &[u8]) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().expect("a header row").clone();
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .expect("well-formed CSV");
    (header, rows)
}

/// A row read by column name.
struct R<'a>(&'a csv::StringRecord);

impl R<'_> {
    fn get(&self, column: &str) -> &str {
        let i = header()
            .iter()
            .position(|c| *c == column)
            .expect("a known column");
        &self.0[i]
    }
    fn date(&self, column: &str) -> NaiveDate {
        parse_date(self.get(column)).unwrap_or_else(|e| panic!("{column}: {e}"))
    }
    fn non_empty(&self) -> Vec<&'static str> {
        header()
            .iter()
            .copied()
            .filter(|c| !self.get(c).is_empty())
            .collect()
    }
    /// The coverage key in canonical form.
    fn key(&self) -> (String, String, String, String) {
        let symbol = match self.get("symbol") {
            "" => String::new(),
            s => InsuredSymbol::parse(s).expect("symbol").as_str().to_owned(),
        };
        (
            InsurerNumber::parse(self.get("insurer_number"))
                .expect("insurer")
                .as_str()
                .to_owned(),
            symbol,
            InsuredNumber::parse(self.get("number"))
                .expect("number")
                .as_str()
                .to_owned(),
            self.get("branch").to_owned(),
        )
    }
}

fn in_file_range(d: NaiveDate) -> bool {
    (NaiveDate::from_ymd_opt(2015, 1, 1).unwrap()..=NaiveDate::from_ymd_opt(2026, 10, 31).unwrap())
        .contains(&d)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, sa) = generate(500, 7);
    let (b, _) = generate(500, 7);
    let (c, _) = generate(500, 8);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(sa.persons, 500);
}

#[test]
fn header_is_exact() {
    let (bytes, _) = generate(3, 1);
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap();
    assert_eq!(
        std::str::from_utf8(first_line).unwrap(),
        "change,individual_number,insurer_number,insurer_name,symbol,number,branch,\
         card_classification,relationship,insured_name,name,name_kana,sex,birth_date,postcode,\
         address,acquired_on,lost_on,loss_reason,effective_on,copay_ratio,card_issued_on,\
         card_valid_from,card_valid_to,elderly_copay_ratio,elderly_valid_from,elderly_valid_to,\
         limit_classification,limit_category,limit_valid_from,limit_valid_to,specific_disease,\
         specific_disease_valid_from,specific_disease_valid_to,specific_disease_self_pay"
    );
    let (none, _) = generate(0, 1);
    assert_eq!(records(&none).1.len(), 0);
}

#[test]
fn every_row_parses_with_the_domain_types() {
    let (bytes, summary) = generate(3000, 42);
    let (written, rows) = records(&bytes);
    assert_eq!(written.iter().collect::<Vec<_>>(), header());
    assert_eq!(rows.len() as u64, summary.rows);
    let key_columns = ["change", "insurer_number", "symbol", "number", "branch"];
    for rec in &rows {
        let r = R(rec);
        let insurer = InsurerNumber::parse(r.get("insurer_number")).expect("insurer number");
        r.key();
        match r.get("branch") {
            "" => assert!(insurer.is_kouki(), "only 後期 coverages lack a branch here"),
            b => {
                BranchNumber::parse(b).expect("branch");
                assert!(!insurer.is_kouki());
            }
        }
        if let len @ (6 | 8) = r.get("insurer_number").len() {
            assert_eq!(
                len == 6,
                insurer.houbetsu().is_none(),
                "国保 numbers are written in 6 digits"
            );
        }
        match r.get("change") {
            "acquire" => {
                IndividualNumber::parse(r.get("individual_number")).expect("my number");
                CardClassification::parse(r.get("card_classification")).expect("card class");
                Relationship::parse(r.get("relationship")).expect("relationship");
                PersonName::parse(r.get("insured_name")).expect("insured name");
                PersonName::parse(r.get("name")).expect("name");
                KanaName::parse(r.get("name_kana")).expect("kana");
                Sex::parse(r.get("sex")).expect("sex");
                Postcode::parse(r.get("postcode")).expect("postcode");
                Address::parse(r.get("address")).expect("address");
                CopayRatio::parse(r.get("copay_ratio")).expect("copay");
                let birth = r.date("birth_date");
                let acquired = r.date("acquired_on");
                assert!(birth <= acquired && in_file_range(acquired));
                assert!(r.get("lost_on").is_empty() && r.get("loss_reason").is_empty());
                assert!(r.get("effective_on").is_empty());
                for c in [
                    "card_issued_on",
                    "card_valid_from",
                    "card_valid_to",
                    "elderly_valid_from",
                    "elderly_valid_to",
                    "limit_valid_from",
                    "limit_valid_to",
                ] {
                    if !r.get(c).is_empty() {
                        assert!(in_file_range(r.date(c)), "{c}");
                    }
                }
                assert!(r.date("card_issued_on") >= acquired);
                if !r.get("elderly_copay_ratio").is_empty() {
                    CopayRatio::parse(r.get("elderly_copay_ratio")).expect("elderly copay");
                    assert!(r.date("elderly_valid_from") <= r.date("elderly_valid_to"));
                }
                if !r.get("limit_category").is_empty() {
                    LimitClassification::parse(r.get("limit_classification")).expect("limit class");
                    LimitCategory::parse(r.get("limit_category")).expect("limit category");
                    assert!(r.date("limit_valid_from") <= r.date("limit_valid_to"));
                }
            }
            "lose" => {
                assert!(in_file_range(r.date("lost_on")));
                LossReason::parse(r.get("loss_reason")).expect("loss reason");
                let mut expected: Vec<&str> = key_columns.into();
                expected.extend(["lost_on", "loss_reason"]);
                expected.retain(|c| !r.get(c).is_empty());
                assert_eq!(
                    r.non_empty(),
                    expected,
                    "a lose row carries only key, date and reason"
                );
            }
            "update" => {
                assert!(in_file_range(r.date("effective_on")));
                let changed: Vec<_> = r
                    .non_empty()
                    .into_iter()
                    .filter(|c| !key_columns.contains(c) && *c != "effective_on")
                    .collect();
                assert!(!changed.is_empty(), "an update changes something");
                for c in &changed {
                    assert!(
                        [
                            "postcode",
                            "address",
                            "copay_ratio",
                            "elderly_copay_ratio",
                            "elderly_valid_from",
                            "elderly_valid_to"
                        ]
                        .contains(c),
                        "unexpected column {c} in an update"
                    );
                }
                if changed.contains(&"address") {
                    Postcode::parse(r.get("postcode")).expect("postcode");
                    Address::parse(r.get("address")).expect("address");
                }
                if changed.contains(&"copay_ratio") {
                    CopayRatio::parse(r.get("copay_ratio")).expect("copay");
                }
            }
            other => panic!("unknown change {other}"),
        }
    }
}

#[test]
fn changes_replay_in_order_per_key() {
    let (bytes, summary) = generate(5000, 3);
    let (_, rows) = records(&bytes);
    // key -> (active, last date seen)
    let mut state: HashMap<_, (bool, NaiveDate)> = HashMap::new();
    let mut people: HashMap<String, (String, String)> = HashMap::new();
    let (mut loses, mut updates, mut changed_insurer) = (0u64, 0u64, HashSet::new());
    for rec in &rows {
        let r = R(rec);
        let key = r.key();
        match r.get("change") {
            "acquire" => {
                let d = r.date("acquired_on");
                if let Some((active, last)) = state.get(&key) {
                    assert!(!active, "acquire of an active key {key:?}");
                    assert!(d >= *last);
                }
                state.insert(key, (true, d));
                let who = (r.get("name").to_owned(), r.get("birth_date").to_owned());
                if let Some(prev) =
                    people.insert(r.get("individual_number").to_owned(), who.clone())
                {
                    assert_eq!(prev, who, "one My Number is one person");
                    changed_insurer.insert(r.get("individual_number").to_owned());
                }
            }
            change => {
                let (active, last) = state.get_mut(&key).expect("acquire comes first");
                assert!(*active, "{change} of an inactive key");
                let d = if change == "lose" {
                    r.date("lost_on")
                } else {
                    r.date("effective_on")
                };
                assert!(d > *last, "{change} must come after the key's earlier rows");
                *last = d;
                if change == "lose" {
                    *active = false;
                    loses += 1;
                } else {
                    updates += 1;
                }
            }
        }
    }
    assert_eq!(
        people.len() as u64,
        summary.persons,
        "persons counts distinct people"
    );
    let n = summary.persons as f64;
    let share = |x: u64| x as f64 / n;
    assert!(
        (0.04..0.15).contains(&share(loses)),
        "lost share {}",
        share(loses)
    );
    assert!(
        (0.02..0.10).contains(&share(updates)),
        "update share {}",
        share(updates)
    );
    assert!(
        (0.01..0.06).contains(&share(changed_insurer.len() as u64)),
        "changed share"
    );
    assert!(
        summary.insurers >= 30,
        "most insurers appear in 5000 persons"
    );
}

#[test]
fn households_share_a_key_with_distinct_branches() {
    let (bytes, _) = generate(3000, 11);
    let (_, rows) = records(&bytes);
    /// (insurer, symbol, number) -> [(branch, relationship, insured name)]
    type Cards = HashMap<(String, String, String), Vec<(String, String, String)>>;
    let mut by_card: Cards = HashMap::new();
    for rec in rows.iter().filter(|r| R(r).get("change") == "acquire") {
        let r = R(rec);
        let (insurer, symbol, number, branch) = r.key();
        by_card.entry((insurer, symbol, number)).or_default().push((
            branch,
            r.get("relationship").to_owned(),
            r.get("insured_name").to_owned(),
        ));
    }
    let mut families = 0;
    for ((insurer, ..), members) in &by_card {
        let branches: HashSet<_> = members.iter().map(|m| &m.0).collect();
        assert_eq!(
            branches.len(),
            members.len(),
            "distinct branches within a card"
        );
        assert_eq!(
            members.iter().filter(|m| m.1 == "1").count(),
            1,
            "one insured person"
        );
        let insured: HashSet<_> = members.iter().map(|m| &m.2).collect();
        assert_eq!(insured.len(), 1, "one insured name per card");
        if insurer.starts_with("39") {
            assert_eq!(members.len(), 1, "後期 coverage is single-person");
            assert_eq!(members[0].0, "");
        } else {
            assert!(
                members.iter().any(|m| m.0 == "01" && m.1 == "1"),
                "the insured person is 01"
            );
            families += usize::from(members.len() > 1);
        }
    }
    assert!(families > 100, "some households have dependants");
}

#[test]
fn kouki_members_are_75_and_over() {
    let (bytes, _) = generate(2000, 5);
    let (_, rows) = records(&bytes);
    let mut seen = 0;
    for rec in rows.iter().filter(|r| R(r).get("change") == "acquire") {
        let r = R(rec);
        let insurer = InsurerNumber::parse(r.get("insurer_number")).unwrap();
        let birth = r.date("birth_date");
        let acquired = r.date("acquired_on");
        let seventy_fifth = birth.checked_add_months(chrono::Months::new(900)).unwrap();
        assert_eq!(
            insurer.is_kouki(),
            acquired >= seventy_fifth,
            "後期 iff 75+ at acquisition"
        );
        seen += usize::from(insurer.is_kouki());
    }
    assert!(seen > 50);
}

/// `cargo test --release --lib -- --ignored million` writes a 1,000,000-person file to a sink.
#[test]
#[ignore = "slow in debug builds; run in release"]
fn million_persons_stream_to_a_sink() {
    let start = std::time::Instant::now();
    let summary = write_enrolment_csv(std::io::sink(), 1_000_000, 1).unwrap();
    assert_eq!(summary.persons, 1_000_000);
    eprintln!("{summary:?} in {:?}", start.elapsed());
}
