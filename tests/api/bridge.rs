//! `onshi bridge`, the real system's XML folder interface: the built binary against the real
//! server, fed request files written from the documented layout, its answers read back with
//! Python's standard XML parser.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use onshi::domain::check_digit::luhn;
use onshi::parties::Role;
use serde_json::Value;

use crate::helpers::{closed_port_url, free_port, spawn_app_with, Csv, FACILITY_CODE};

/// A 6-digit 国保 insurer number (valid check digit), which answers pad to 8 characters.
fn kokuho() -> String {
    let body = "13805";
    format!("{body}{}", luhn(body))
}

fn wrong_check_digit() -> String {
    let good = kokuho();
    let last = good.as_bytes()[5] - b'0';
    format!("{}{}", &good[..5], (last + 1) % 10)
}

/// A test folder with `req` and `res`, and the token file, removed at the end.
struct Desk {
    root: PathBuf,
    token_file: PathBuf,
}

impl Desk {
    fn new(token: &str) -> Self {
        let root = std::env::temp_dir().join(format!("onshi-bridge-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("req")).unwrap();
        let token_file = root.join("token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        Desk { root, token_file }
    }

    fn req(&self) -> PathBuf {
        self.root.join("req")
    }

    fn res(&self) -> PathBuf {
        self.root.join("res")
    }

    /// Drops a request as reception software does: written under another name, then renamed.
    fn drop_request(&self, name: &str, bytes: &[u8]) {
        let temporary = self.req().join(format!("{name}.part"));
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(temporary, self.req().join(name)).unwrap();
    }

    fn bridge(&self, server: &str, give_up_after: u64) -> Child {
        self.bridge_with(server, give_up_after, &[])
    }

    fn bridge_with(&self, server: &str, give_up_after: u64, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_onshi"))
            .arg("bridge")
            .arg("--folder")
            .arg(&self.root)
            .args(["--server", server])
            .arg("--token-file")
            .arg(&self.token_file)
            .args([
                "--give-up-after",
                &give_up_after.to_string(),
                "--poll-ms",
                "100",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.root.join("bridge.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    }

    /// The answer's path once it appears (a guard of a minute against a hung bridge).
    /// Waits without blocking the test's runtime, which serves onshi.
    async fn wait_for(&self, name: &str) -> PathBuf {
        let path = self.res().join(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "no answer {name}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        path
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("bridge.log")).unwrap_or_default()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Stops the bridge however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Text by element path.
pub type Fields = serde_json::Map<String, Value>;

/// The answer as Python's ElementTree reads it: (declared encoding, text by element path).
pub fn read_answer(path: &Path) -> (String, Fields) {
    let (encoding, fields, _) = read_entries(path);
    (encoding, fields)
}

/// [`read_answer`] and each `ResultList/ResultOfQualificationConfirmation`'s text by path.
fn read_entries(path: &Path) -> (String, Fields, Vec<Fields>) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/bridge/read_answer.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python could not read the answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = parsed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_object().unwrap().clone())
        .collect();
    (
        parsed["encoding"].as_str().unwrap().to_owned(),
        parsed["fields"].as_object().unwrap().clone(),
        entries,
    )
}

/// A single-check request in the documented layout.
fn request(encoding: &str, identifier: &str, insurer: &str, symbol: &str, consent: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="{encoding}" standalone="no"?>
<XmlMsg>
  <MessageHeader>
    <QualificationConfirmationDate>20261124</QualificationConfirmationDate>
    <MedicalInstitutionCode>{FACILITY_CODE}</MedicalInstitutionCode>
    <ArbitraryFileIdentifier>受付-0001</ArbitraryFileIdentifier>
    <CharacterCodeIdentifier>{identifier}</CharacterCodeIdentifier>
  </MessageHeader>
  <MessageBody>
    <QualificationConfirmSearchInfo>
      <InsurerNumber>{insurer}</InsurerNumber>
      <InsuredCardSymbol>{symbol}</InsuredCardSymbol>
      <InsuredIdentificationNumber>3456</InsuredIdentificationNumber>
      <InsuredBranchNumber>01</InsuredBranchNumber>
      <Birthdate>19600401</Birthdate>
      <LimitApplicationCertificateRelatedConsFlg>{consent}</LimitApplicationCertificateRelatedConsFlg>
    </QualificationConfirmSearchInfo>
  </MessageBody>
</XmlMsg>
"#
    )
}

fn shift_jis(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

async fn server_with_person() -> (crate::helpers::TestApp, String) {
    server_with_person_and(|_| {}).await
}

async fn server_with_person_and(
    configure: impl FnOnce(&mut onshi::config::Settings),
) -> (crate::helpers::TestApp, String) {
    let app = spawn_app_with(configure).await;
    let insurer = kokuho();
    let key = (insurer.as_str(), "記号１２", "3456", "01");
    let insurer_token = app.party(Role::Insurer, &[&insurer]).await;
    let csv = Csv::new()
        .acquire_with(
            1,
            key,
            "1960-04-01",
            "2020-04-01",
            &[
                ("card_valid_to", "2027-03-31"),
                ("elderly_copay_ratio", "020"),
                ("elderly_valid_from", "2025-04-01"),
                ("elderly_valid_to", "2027-03-31"),
                ("limit_classification", "01"),
                ("limit_category", "A03"),
                ("limit_valid_from", "2026-04-01"),
                ("limit_valid_to", "2027-03-31"),
            ],
        )
        .build();
    let response = app
        .upload(&insurer_token, &uuid::Uuid::new_v4().to_string(), csv)
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let token = app.party(Role::Facility, &[]).await;
    (app, token)
}

#[tokio::test]
async fn utf8_and_shift_jis_requests_are_answered_in_their_encoding_with_the_coverage() {
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    let _bridge = Running(desk.bridge(&app.address, 30));
    let insurer = kokuho();

    desk.drop_request(
        "OQSsiquc01req_utf8.xml",
        request("UTF-8", "0", &format!("  {insurer}"), "記号１２", "1").as_bytes(),
    );
    desk.drop_request(
        "OQSsiquc01req_sjis.xml",
        &shift_jis(&request("Shift_JIS", "1", &insurer, "記号１２", "0")),
    );

    for (name, encoding, consent) in [
        ("OQSsiquc01res_utf8.xml", "UTF-8", true),
        ("OQSsiquc01res_sjis.xml", "Shift_JIS", false),
    ] {
        let (declared, f) = read_answer(&desk.wait_for(name).await);
        let at = |p: &str| f.get(p).and_then(Value::as_str).map(str::to_owned);
        let h = |m: &str| at(&format!("XmlMsg/MessageHeader/{m}"));
        let r = |m: &str| {
            at(&format!(
                "XmlMsg/MessageBody/ResultList/ResultOfQualificationConfirmation/{m}"
            ))
        };
        assert_eq!(declared, encoding);
        assert_eq!(h("SegmentOfResult").as_deref(), Some("1"), "{f:#?}");
        assert_eq!(
            h("CharacterCodeIdentifier").as_deref(),
            Some(if consent { "0" } else { "1" })
        );
        assert_eq!(h("ReferenceClassification").as_deref(), Some("2"));
        assert_eq!(
            h("QualificationConfirmationDate").as_deref(),
            Some("20261124")
        );
        assert_eq!(h("MedicalInstitutionCode").as_deref(), Some(FACILITY_CODE));
        assert_eq!(h("ArbitraryFileIdentifier").as_deref(), Some("受付-0001"));
        assert_eq!(h("ProcessExecutionTime").map(|t| t.len()), Some(14));
        assert_eq!(h("ErrorCode"), None);
        assert_eq!(
            at("XmlMsg/MessageBody/ProcessingResultStatus").as_deref(),
            Some("1")
        );
        assert_eq!(
            at("XmlMsg/MessageBody/QualificationValidity").as_deref(),
            Some("1")
        );
        assert_eq!(r("InsurerNumber"), Some(format!("  {insurer}")));
        assert_eq!(r("InsuredCardSymbol").as_deref(), Some("記号１２"));
        assert_eq!(r("InsuredIdentificationNumber").as_deref(), Some("3456"));
        assert_eq!(r("InsuredBranchNumber").as_deref(), Some("01"));
        assert_eq!(r("InsuredCardClassification").as_deref(), Some("01"));
        assert_eq!(r("PersonalFamilyClassification").as_deref(), Some("1"));
        assert_eq!(r("Name").as_deref(), Some("架空 太郎"));
        assert_eq!(r("NameKana").as_deref(), Some("カクウ タロウ"));
        assert_eq!(r("Sex1").as_deref(), Some("1"));
        assert_eq!(r("Birthdate").as_deref(), Some("19600401"));
        assert_eq!(r("Address").as_deref(), Some("東京都架空区緑町1-2-3"));
        assert_eq!(r("PostNumber").as_deref(), Some("100-0001"));
        assert_eq!(r("QualificationDate").as_deref(), Some("20200401"));
        assert_eq!(r("DisqualificationDate"), None);
        assert_eq!(r("InsuredCardValidDate").as_deref(), Some("20200401"));
        assert_eq!(r("InsuredCardExpirationDate").as_deref(), Some("20270331"));
        assert_eq!(r("InsuredPartialContributionRatio").as_deref(), Some("030"));
        assert_eq!(
            r("ElderlyRecipientCertificateInfo/ElderlyRecipientContributionRatio").as_deref(),
            Some("020")
        );
        assert_eq!(
            r("ElderlyRecipientCertificateInfo/ElderlyRecipientValidEndDate").as_deref(),
            Some("20270331")
        );
        // The limit certificate only with the consent flag.
        let limit = "LimitApplicationCertificateRelatedInfo/\
                     LimitApplicationCertificateClassificationFlag";
        assert_eq!(r(limit).as_deref(), consent.then_some("A03"), "{f:#?}");
    }
    // Answered requests are gone; nothing is left half-written.
    assert_eq!(Desk::names(&desk.req()), [".processing"]);
    assert!(Desk::names(&desk.req().join(".processing")).is_empty());
    assert_eq!(
        Desk::names(&desk.res()),
        ["OQSsiquc01res_sjis.xml", "OQSsiquc01res_utf8.xml"]
    );
    assert!(!desk.log().contains(&token), "the token reached the log");
}

#[tokio::test]
async fn a_malformed_or_refused_request_gets_an_error_answer() {
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    let _bridge = Running(desk.bridge(&app.address, 30));

    desk.drop_request(
        "OQSsiquc01req_broken.xml",
        &shift_jis("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><XmlMsg><MessageHeader>壊れ"),
    );
    // Well-formed, but the insurer number's check digit is wrong: onshi refuses it.
    desk.drop_request(
        "OQSsiquc01req_refused.xml",
        request("UTF-8", "0", &wrong_check_digit(), "", "0").as_bytes(),
    );
    // Nobody with that key: answered, validity 4, no coverage.
    desk.drop_request(
        "OQSsiquc01req_nobody.xml",
        request("UTF-8", "0", &kokuho(), "記号９９", "0").as_bytes(),
    );

    let (declared, f) = read_answer(&desk.wait_for("OQSsiquc01res_broken.xml").await);
    assert_eq!(declared, "Shift_JIS");
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "9");
    assert_eq!(f["XmlMsg/MessageHeader/ErrorCode"], "request.xml");
    assert!(!f["XmlMsg/MessageHeader/ErrorMessage"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(!f.contains_key("XmlMsg/MessageBody/QualificationValidity"));

    let (_, f) = read_answer(&desk.wait_for("OQSsiquc01res_refused.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "9", "{f:#?}");
    assert_eq!(
        f["XmlMsg/MessageHeader/ErrorCode"],
        "insurer_number.check_digit"
    );

    let (_, f) = read_answer(&desk.wait_for("OQSsiquc01res_nobody.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "1", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageBody/QualificationValidity"], "4");
    assert!(!f
        .keys()
        .any(|k| k.contains("ResultOfQualificationConfirmation")));
}

#[tokio::test]
async fn with_onshi_down_the_bridge_answers_with_an_error_after_the_give_up_time() {
    // A port nothing listens on.
    let server = closed_port_url();
    let desk = Desk::new("not-a-real-token");
    let _bridge = Running(desk.bridge(&server, 2));

    desk.drop_request(
        "OQSsiquc01req_down.xml",
        request("UTF-8", "0", &kokuho(), "記号１２", "0").as_bytes(),
    );
    let (_, f) = read_answer(&desk.wait_for("OQSsiquc01res_down.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "9", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageHeader/ErrorCode"], "bridge.unreachable");
    assert!(Desk::names(&desk.req().join(".processing")).is_empty());
}

#[tokio::test]
async fn a_bridge_killed_midway_answers_each_request_exactly_once_after_restart() {
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    let unreachable = closed_port_url();

    // A bridge that cannot reach onshi claims the request, keeps asking, and is killed.
    let mut first = desk.bridge(&unreachable, 600);
    desk.drop_request(
        "OQSsiquc01req_a.xml",
        request("UTF-8", "0", &kokuho(), "記号１２", "0").as_bytes(),
    );
    let claimed = desk.req().join(".processing").join("OQSsiquc01req_a.xml");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !claimed.exists() {
        assert!(Instant::now() < deadline, "never claimed: {}", desk.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(Desk::names(&desk.res()).is_empty());

    // A request whose answer was written just before a crash, the claim not yet removed.
    std::fs::write(
        desk.req().join(".processing").join("OQSsiquc01req_b.xml"),
        request("UTF-8", "0", &kokuho(), "記号１２", "0"),
    )
    .unwrap();
    let earlier = b"<?xml version=\"1.0\"?><XmlMsg><MessageHeader><SegmentOfResult>1</SegmentOfResult></MessageHeader></XmlMsg>";
    std::fs::write(desk.res().join("OQSsiquc01res_b.xml"), earlier).unwrap();

    let _second = Running(desk.bridge(&app.address, 30));
    desk.drop_request(
        "OQSsiquc01req_c.xml",
        request("UTF-8", "0", &kokuho(), "記号１２", "0").as_bytes(),
    );
    for name in ["a", "c"] {
        let (_, f) = read_answer(&desk.wait_for(&format!("OQSsiquc01res_{name}.xml")).await);
        assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "1", "{f:#?}");
        assert_eq!(f["XmlMsg/MessageBody/QualificationValidity"], "1");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Desk::names(&desk.req().join(".processing")).is_empty() {
        assert!(Instant::now() < deadline, "claims left: {}", desk.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        Desk::names(&desk.res()),
        [
            "OQSsiquc01res_a.xml",
            "OQSsiquc01res_b.xml",
            "OQSsiquc01res_c.xml"
        ]
    );
    assert_eq!(
        std::fs::read(desk.res().join("OQSsiquc01res_b.xml")).unwrap(),
        earlier,
        "an answer already written was written again"
    );
    assert_eq!(Desk::names(&desk.req()), [".processing"]);
    // Exactly one check per request reached onshi's audit: a and c.
    assert_eq!(app.count("disclosures").await, 2);
}

/// A bulk upload in the documented layout: one `QualificationConfirmSearchInfo` per entry
/// (insurer, symbol, number, branch, birth date, limit consent).
fn bulk_request(encoding: &str, identifier: &str, entries: &[[&str; 6]]) -> String {
    let mut body = String::new();
    for [insurer, symbol, number, branch, birth, consent] in entries {
        body.push_str(&format!(
            "    <QualificationConfirmSearchInfo>
      <InsurerNumber>{insurer}</InsurerNumber>
      <InsuredCardSymbol>{symbol}</InsuredCardSymbol>
      <InsuredIdentificationNumber>{number}</InsuredIdentificationNumber>
      <InsuredBranchNumber>{branch}</InsuredBranchNumber>
      <Birthdate>{birth}</Birthdate>
      <LimitApplicationCertificateRelatedConsFlg>{consent}</LimitApplicationCertificateRelatedConsFlg>
    </QualificationConfirmSearchInfo>
"
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="{encoding}" standalone="no"?>
<XmlMsg>
  <MessageHeader>
    <QualificationConfirmationDate>20261124</QualificationConfirmationDate>
    <MedicalInstitutionCode>{FACILITY_CODE}</MedicalInstitutionCode>
    <ArbitraryFileIdentifier>前日-0001</ArbitraryFileIdentifier>
    <CharacterCodeIdentifier>{identifier}</CharacterCodeIdentifier>
  </MessageHeader>
  <MessageBody>
{body}  </MessageBody>
</XmlMsg>
"#
    )
}

/// A bulk download request: the facility and the reception number.
fn download_request(encoding: &str, reception_number: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="{encoding}" standalone="no"?>
<XmlMsg>
  <MessageHeader>
    <MedicalInstitutionCode>{FACILITY_CODE}</MedicalInstitutionCode>
  </MessageHeader>
  <MessageBody>
    <ReceptionNumber>{reception_number}</ReceptionNumber>
  </MessageBody>
</XmlMsg>
"#
    )
}

/// A 照会番号 registration: one `ReferenceNumberRegistrationInfo` per entry (reference
/// number, insurer, symbol, number, branch).
fn registration(entries: &[[&str; 5]]) -> String {
    let mut body = String::new();
    for [reference, insurer, symbol, number, branch] in entries {
        body.push_str(&format!(
            "    <ReferenceNumberRegistrationInfo>
      <ReferenceNumber>{reference}</ReferenceNumber>
      <InsurerNumber>{insurer}</InsurerNumber>
      <InsuredCardSymbol>{symbol}</InsuredCardSymbol>
      <InsuredIdentificationNumber>{number}</InsuredIdentificationNumber>
      <InsuredBranchNumber>{branch}</InsuredBranchNumber>
    </ReferenceNumberRegistrationInfo>
"
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<XmlMsg>
  <MessageHeader>
    <MedicalInstitutionCode>{FACILITY_CODE}</MedicalInstitutionCode>
    <ArbitraryFileIdentifier>登録-0001</ArbitraryFileIdentifier>
  </MessageHeader>
  <MessageBody>
{body}  </MessageBody>
</XmlMsg>
"#
    )
}

impl Desk {
    /// Waits until every request dropped is answered and let go (its metrics counted).
    async fn settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Desk::names(&self.req()) != [".processing"]
            || !Desk::names(&self.req().join(".processing")).is_empty()
        {
            assert!(Instant::now() < deadline, "requests left: {}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The bridge's metrics, read with an independent parser of the text format.
async fn scrape(port: u16) -> prometheus_parse::Scrape {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        match reqwest::get(&url).await {
            Ok(r) if r.status() == 200 => break r.text().await.unwrap(),
            _ => {
                assert!(Instant::now() < deadline, "no metrics at {url}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// A counter's value (0 when absent).
fn counter(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|have| have == *v))
        })
        .map_or(0.0, |s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            ref other => panic!("{name} is not a counter: {other:?}"),
        })
}

async fn reception_numbers(app: &crate::helpers::TestApp) -> Vec<String> {
    app.column("select reception_number from bulk_jobs order by id")
        .await
}

#[tokio::test]
async fn a_bulk_inquiry_is_received_then_downloaded_while_processing_and_when_done() {
    let (app, token) = server_with_person_and(|s| s.bulk.worker = false).await;
    let desk = Desk::new(&token);
    let _bridge = Running(desk.bridge(&app.address, 30));
    let insurer = kokuho();
    let padded = format!("  {insurer}");
    let bad = wrong_check_digit();
    let entries = [
        [padded.as_str(), "記号１２", "3456", "01", "19600401", "1"],
        [insurer.as_str(), "記号１２", "3456", "01", "19600401", "0"],
        [insurer.as_str(), "記号９９", "3456", "01", "19600401", "0"],
        [bad.as_str(), "", "3456", "", "19600401", "0"],
    ];
    // The upload in Shift_JIS: its receipt in Shift_JIS, with the reception number.
    desk.drop_request(
        "OQSmuquc01req_20261123.xml",
        &shift_jis(&bulk_request("Shift_JIS", "1", &entries)),
    );
    let (declared, f) = read_answer(&desk.wait_for("OQSmuquc01res_20261123.xml").await);
    assert_eq!(declared, "Shift_JIS");
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "1", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageHeader/CharacterCodeIdentifier"], "1");
    assert_eq!(
        f["XmlMsg/MessageHeader/ArbitraryFileIdentifier"],
        "前日-0001"
    );
    let number = f["XmlMsg/MessageBody/ReceptionNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reception_numbers(&app).await, std::slice::from_ref(&number));

    // No worker has taken the job yet: processing.
    desk.drop_request(
        "OQSmuquc02req_1.xml",
        &shift_jis(&download_request("Shift_JIS", &number)),
    );
    let (declared, f, results) = read_entries(&desk.wait_for("OQSmuquc02res_1.xml").await);
    assert_eq!(declared, "Shift_JIS");
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "2", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageBody/ReceptionNumber"], number.as_str());
    assert!(results.is_empty());

    // A worker answers it; the next download request has every entry, in upload order.
    app.another_server(|s| {
        s.bulk.worker = true;
        s.bulk.poll_millis = 20;
    })
    .await;
    let db = app.db().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: bool = db
            .query_one("select done_at is not null from bulk_jobs", &[])
            .await
            .unwrap()
            .get(0);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the job was never done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    desk.drop_request(
        "OQSmuquc02req_2.xml",
        download_request("UTF-8", &number).as_bytes(),
    );
    let (declared, f, results) = read_entries(&desk.wait_for("OQSmuquc02res_2.xml").await);
    assert_eq!(declared, "UTF-8");
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "1", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageBody/ResultCount"], "4");
    assert_eq!(results.len(), 4, "{results:#?}");
    let at = |i: usize, path: &str| {
        results[i]
            .get(path)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let limit =
        "LimitApplicationCertificateRelatedInfo/LimitApplicationCertificateClassificationFlag";
    for (i, consent) in [(0, true), (1, false)] {
        assert_eq!(
            at(i, "QualificationConfirmSearchInfo/InsurerNumber").as_deref(),
            Some(padded.as_str())
        );
        assert_eq!(at(i, "ProcessingResultStatus").as_deref(), Some("1"));
        assert_eq!(at(i, "QualificationValidity").as_deref(), Some("1"));
        assert_eq!(at(i, "Name").as_deref(), Some("架空 太郎"));
        assert_eq!(at(i, "InsurerNumber").as_deref(), Some(padded.as_str()));
        assert_eq!(at(i, "Birthdate").as_deref(), Some("19600401"));
        assert_eq!(
            at(i, "InsuredCardExpirationDate").as_deref(),
            Some("20270331")
        );
        assert_eq!(at(i, limit).as_deref(), consent.then_some("A03"), "{i}");
    }
    assert_eq!(
        at(2, "QualificationConfirmSearchInfo/InsuredCardSymbol").as_deref(),
        Some("記号９９")
    );
    assert_eq!(at(2, "QualificationValidity").as_deref(), Some("4"));
    assert_eq!(at(2, "Name"), None);
    assert_eq!(at(3, "ProcessingResultStatus").as_deref(), Some("2"));
    assert_eq!(
        at(3, "ProcessingResultCode").as_deref(),
        Some("insurer_number.check_digit")
    );
    assert_eq!(at(3, "QualificationValidity"), None);

    // An unknown reception number, and this facility's number asked by another facility.
    desk.drop_request(
        "OQSmuquc02req_unknown.xml",
        download_request("UTF-8", &"0".repeat(32)).as_bytes(),
    );
    let (_, f) = read_answer(&desk.wait_for("OQSmuquc02res_unknown.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "9", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageHeader/ErrorCode"], "bulk.not_found");
    let other = Desk::new(&app.party(Role::Facility, &[]).await);
    let _other_bridge = Running(other.bridge(&app.address, 30));
    other.drop_request(
        "OQSmuquc02req_foreign.xml",
        download_request("UTF-8", &number).as_bytes(),
    );
    let (_, f) = read_answer(&other.wait_for("OQSmuquc02res_foreign.xml").await);
    assert_eq!(
        f["XmlMsg/MessageHeader/ErrorCode"], "bulk.not_found",
        "{f:#?}"
    );
    assert!(!f.contains_key("XmlMsg/MessageBody/ResultList/ResultOfQualificationConfirmation/Name"));
    assert_eq!(reception_numbers(&app).await.len(), 1);
}

#[tokio::test]
async fn a_bulk_upload_cut_off_before_its_answer_is_one_job_and_one_answer_after_restart() {
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    // A folder where the answer goes: the upload is sent, its answer cannot be written, and the
    // bridge keeps trying (sending the upload again each time) until it is killed.
    let in_the_way = desk.res().join("OQSmuquc01res_cut.xml");
    std::fs::create_dir_all(in_the_way.join("blocked")).unwrap();
    let mut first = desk.bridge(&app.address, 30);
    let insurer = kokuho();
    let request = bulk_request(
        "UTF-8",
        "0",
        &[[insurer.as_str(), "記号１２", "3456", "01", "19600401", "0"]],
    );
    desk.drop_request("OQSmuquc01req_cut.xml", request.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(60);
    while desk.log().matches("a folder step failed").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "never failed twice: {}",
            desk.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let jobs = reception_numbers(&app).await;
    assert_eq!(jobs.len(), 1, "the upload sent again made another job");
    assert!(desk
        .req()
        .join(".processing")
        .join("OQSmuquc01req_cut.xml")
        .exists());

    std::fs::remove_dir_all(&in_the_way).unwrap();
    let _second = Running(desk.bridge(&app.address, 30));
    let (_, f) = read_answer(&desk.wait_for("OQSmuquc01res_cut.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "1", "{f:#?}");
    assert_eq!(f["XmlMsg/MessageBody/ReceptionNumber"], jobs[0].as_str());
    desk.settled().await;
    assert_eq!(reception_numbers(&app).await, jobs);
    assert_eq!(Desk::names(&desk.res()), ["OQSmuquc01res_cut.xml"]);
}

#[tokio::test]
async fn with_onshi_down_bulk_requests_get_an_error_answer_and_the_retries_are_counted() {
    let desk = Desk::new("not-a-real-token");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _bridge = Running(desk.bridge_with(&closed_port_url(), 2, &["--metrics-listen", &listen]));
    let insurer = kokuho();
    desk.drop_request(
        "OQSmuquc01req_down.xml",
        bulk_request(
            "UTF-8",
            "0",
            &[[insurer.as_str(), "", "1", "", "19600401", "0"]],
        )
        .as_bytes(),
    );
    desk.drop_request(
        "OQSmuquc02req_down.xml",
        download_request("UTF-8", &"a".repeat(32)).as_bytes(),
    );
    for name in ["OQSmuquc01res_down.xml", "OQSmuquc02res_down.xml"] {
        let (_, f) = read_answer(&desk.wait_for(name).await);
        assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "9", "{f:#?}");
        assert_eq!(f["XmlMsg/MessageHeader/ErrorCode"], "bridge.unreachable");
    }
    desk.settled().await;
    let scrape = scrape(port).await;
    let files = "onshi_bridge_files_total";
    let retries = "onshi_bridge_unreachable_retries_total";
    for kind in ["bulk_upload", "bulk_download"] {
        assert_eq!(
            counter(&scrape, files, &[("kind", kind), ("outcome", "error")]),
            1.0
        );
        assert!(
            counter(&scrape, retries, &[("kind", kind)]) >= 1.0,
            "{kind}"
        );
    }
    assert_eq!(counter(&scrape, retries, &[("kind", "single")]), 0.0);
}

#[tokio::test]
async fn malformed_requests_get_error_answers_and_the_metrics_count_each_outcome() {
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _bridge = Running(desk.bridge_with(&app.address, 30, &["--metrics-listen", &listen]));
    let insurer = kokuho();

    desk.drop_request(
        "OQSmuquc01req_broken.xml",
        &shift_jis("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><XmlMsg><MessageBody>壊れ"),
    );
    desk.drop_request(
        "OQSmuquc01req_empty.xml",
        bulk_request("UTF-8", "0", &[]).as_bytes(),
    );
    desk.drop_request(
        "OQSmuquc02req_none.xml",
        download_request("UTF-8", "").as_bytes(),
    );
    desk.drop_request(
        "OQSsiquc01req_ok.xml",
        request("UTF-8", "0", &insurer, "記号１２", "0").as_bytes(),
    );
    desk.drop_request(
        "OQSsiquc01req_refused.xml",
        request("UTF-8", "0", &wrong_check_digit(), "", "0").as_bytes(),
    );
    for (name, code) in [
        ("OQSmuquc01res_broken.xml", "request.xml"),
        ("OQSmuquc01res_empty.xml", "request.entries"),
        ("OQSmuquc02res_none.xml", "request.missing"),
    ] {
        let (declared, f) = read_answer(&desk.wait_for(name).await);
        if name.contains("broken") {
            assert_eq!(declared, "Shift_JIS");
        }
        assert_eq!(
            f["XmlMsg/MessageHeader/SegmentOfResult"], "9",
            "{name}: {f:#?}"
        );
        assert_eq!(f["XmlMsg/MessageHeader/ErrorCode"], code, "{name}");
        assert!(!f["XmlMsg/MessageHeader/ErrorMessage"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    desk.wait_for("OQSsiquc01res_ok.xml").await;
    desk.wait_for("OQSsiquc01res_refused.xml").await;
    desk.settled().await;
    assert!(reception_numbers(&app).await.is_empty());

    let scrape = scrape(port).await;
    let files = "onshi_bridge_files_total";
    for (kind, outcome, want) in [
        ("single", "answered", 1.0),
        ("single", "error", 1.0),
        ("single", "malformed", 0.0),
        ("bulk_upload", "malformed", 2.0),
        ("bulk_upload", "answered", 0.0),
        ("bulk_download", "malformed", 1.0),
    ] {
        assert_eq!(
            counter(&scrape, files, &[("kind", kind), ("outcome", outcome)]),
            want,
            "{kind} {outcome}"
        );
    }
    let other = reqwest::get(format!("http://{listen}/other"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn reference_numbers_are_registered_and_the_next_answer_carries_them() {
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    let _bridge = Running(desk.bridge(&app.address, 30));
    let insurer = kokuho();
    let padded = format!("  {insurer}");

    desk.drop_request(
        "OQSsiimm01req_1.xml",
        registration(&[["P-0001", padded.as_str(), "記号１２", "3456", "01"]]).as_bytes(),
    );
    let (_, f) = read_answer(&desk.wait_for("OQSsiimm01res_1.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "1", "{f:#?}");
    assert_eq!(
        f["XmlMsg/MessageHeader/ArbitraryFileIdentifier"],
        "登録-0001"
    );
    assert_eq!(f["XmlMsg/MessageBody/ProcessingResultStatus"], "1");
    assert_eq!(f["XmlMsg/MessageBody/RegisteredCount"], "1");

    desk.drop_request(
        "OQSsiquc01req_after.xml",
        request("UTF-8", "0", &insurer, "記号１２", "0").as_bytes(),
    );
    let (_, f) = read_answer(&desk.wait_for("OQSsiquc01res_after.xml").await);
    assert_eq!(f["XmlMsg/MessageBody/ReferenceNumber"], "P-0001", "{f:#?}");

    desk.drop_request(
        "OQSmuimm01req_1.xml",
        registration(&[
            ["P-0002", insurer.as_str(), "記号１２", "3456", "01"],
            ["P-0003", insurer.as_str(), "", "9", ""],
        ])
        .as_bytes(),
    );
    let (_, f) = read_answer(&desk.wait_for("OQSmuimm01res_1.xml").await);
    assert_eq!(f["XmlMsg/MessageBody/RegisteredCount"], "2", "{f:#?}");

    // A wrong entry refuses the whole file, naming the entry; a single registration holds one.
    let bad = wrong_check_digit();
    desk.drop_request(
        "OQSmuimm01req_2.xml",
        registration(&[
            ["P-0004", insurer.as_str(), "", "10", ""],
            ["P-0005", bad.as_str(), "", "11", ""],
        ])
        .as_bytes(),
    );
    desk.drop_request(
        "OQSsiimm01req_2.xml",
        registration(&[
            ["P-0006", insurer.as_str(), "", "12", ""],
            ["P-0007", insurer.as_str(), "", "13", ""],
        ])
        .as_bytes(),
    );
    let (_, f) = read_answer(&desk.wait_for("OQSmuimm01res_2.xml").await);
    assert_eq!(f["XmlMsg/MessageHeader/SegmentOfResult"], "9", "{f:#?}");
    assert_eq!(
        f["XmlMsg/MessageHeader/ErrorCode"],
        "insurer_number.check_digit"
    );
    assert!(f["XmlMsg/MessageHeader/ErrorMessage"]
        .as_str()
        .unwrap()
        .contains("entries[1].insurer_number"));
    let (_, f) = read_answer(&desk.wait_for("OQSsiimm01res_2.xml").await);
    assert_eq!(
        f["XmlMsg/MessageHeader/ErrorCode"], "request.entries",
        "{f:#?}"
    );
    let registered: i64 = app
        .db()
        .await
        .query_one("select count(*) from reference_numbers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(registered, 2);
}

#[tokio::test]
async fn a_request_naming_another_facility_is_answered_and_recorded_as_the_tokens() {
    // Whoever drops a file, or holds a facility's token, asks as that token's facility: the
    // file's MedicalInstitutionCode names nobody.
    let (app, token) = server_with_person().await;
    let desk = Desk::new(&token);
    let _bridge = Running(desk.bridge(&app.address, 30));
    let forged =
        request("UTF-8", "0", &kokuho(), "記号１２", "0").replace(FACILITY_CODE, "1310000017");
    desk.drop_request("OQSsiquc01req_forged.xml", forged.as_bytes());
    let (_, f) = read_answer(&desk.wait_for("OQSsiquc01res_forged.xml").await);
    assert_eq!(f["XmlMsg/MessageBody/QualificationValidity"], "1", "{f:#?}");
    let row = app
        .db()
        .await
        .query_one(
            "select d.party_id = p.id, p.facility_code from disclosures d
             join parties p on p.role = 'facility'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the disclosure is the token's party's"
    );
    assert_eq!(row.get::<_, String>(1), FACILITY_CODE);
    assert_eq!(app.count("disclosures").await, 1);
}
