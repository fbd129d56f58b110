//! `onshi bridge`, the real system's XML folder interface: the built binary against the real
//! server, fed request files written from the documented layout, its answers read back with
//! Python's standard XML parser.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use onshi::domain::check_digit::luhn;
use onshi::parties::Role;
use serde_json::Value;

use crate::helpers::{spawn_app, Csv, FACILITY_CODE};

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
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.root.join("bridge.log")).unwrap())
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

/// The answer as Python's ElementTree reads it: (declared encoding, text by element path).
fn read_answer(path: &Path) -> (String, serde_json::Map<String, Value>) {
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
    (
        parsed["encoding"].as_str().unwrap().to_owned(),
        parsed["fields"].as_object().unwrap().clone(),
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
    let app = spawn_app().await;
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
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
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
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);

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
