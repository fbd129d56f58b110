//! Mutual TLS: the handshake demands a certificate from the client CA, and a party bound to a
//! certificate must present it besides its token. The PKI is made afresh by each test.

use std::path::PathBuf;

use onshi::parties::Role;
use onshi::tls::TlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, spawn_app_with, status_and_json, Csv, TestApp, INSURER};

/// A certificate with its key, as PEM.
struct Identity {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Identity {
    fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }
}

/// A throwaway CA with a server certificate for 127.0.0.1 and client certificates, plus a
/// stranger's CA, written where the server can read them; removed on drop.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
    /// Client certificates from the CA: two to bind to parties, one bound to nobody.
    desk_a: Identity,
    desk_b: Identity,
    unbound: Identity,
    /// A client certificate from a CA the server does not trust.
    stranger: Identity,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn issue(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let key = KeyPair::generate().unwrap();
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("onshi-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = new_ca("onshi test CA");
        let client = |name| issue(&ca, name, &[], ExtendedKeyUsagePurpose::ClientAuth);
        let server = issue(
            &ca,
            "onshi test server",
            &["127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(dir.join("server.pem"), &server.cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &server.key_pem).unwrap();
        std::fs::write(dir.join("clients-ca.pem"), ca.pem()).unwrap();
        // The stranger's CA has the same name as ours: only its key tells them apart.
        let stranger_ca = new_ca("onshi test CA");
        Pki {
            ca_pem: ca.pem(),
            desk_a: client("desk A"),
            desk_b: client("desk B"),
            unbound: client("operator"),
            stranger: issue(
                &stranger_ca,
                "desk A",
                &[],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            dir,
        }
    }

    fn settings(&self) -> TlsSettings {
        TlsSettings {
            cert_file: Some(self.dir.join("server.pem")),
            key_file: Some(self.dir.join("server.key")),
            client_ca_file: Some(self.dir.join("clients-ca.pem")),
        }
    }

    /// A client that trusts the test CA (and nothing else), presenting `identity` if given.
    fn client(&self, identity: Option<&Identity>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap());
        if let Some(id) = identity {
            let pem = format!("{}{}", id.cert_pem, id.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The real app over TLS with client certificates required; `app.http` presents the unbound
/// certificate, so the helpers (`load`, `post_json`) work as for any party without one.
async fn spawn_mtls(pki: &Pki, cache_seconds: u64) -> TestApp {
    let tls = pki.settings();
    let mut app = spawn_app_with(|s| {
        s.tls = tls;
        s.auth_cache_seconds = std::time::Duration::from_secs(cache_seconds);
    })
    .await;
    assert!(app.address.starts_with("https://"), "{}", app.address);
    app.http = pki.client(Some(&pki.unbound));
    app
}

fn query() -> serde_json::Value {
    json!({"insurer_number": INSURER, "symbol": "12", "number": "3456", "branch": "01",
           "birth_date": "1980-04-01"})
}

async fn check(app: &TestApp, client: &reqwest::Client, token: &str) -> (u16, serde_json::Value) {
    let response = client
        .post(format!("{}/v1/eligibility", app.address))
        .bearer_auth(token)
        .json(&query())
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// Registers a party over the admin endpoint with `pem` bound; returns (token, fingerprint).
async fn register(app: &TestApp, admin: &str, role: &str, pem: &str) -> (String, String) {
    let mut body = json!({"role": role, "client_certificate": pem});
    if role == "facility" {
        body["facility_code"] = json!(crate::helpers::FACILITY_CODE);
    }
    let response = app.post_json("/v1/parties", admin, &body).await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["token"].as_str().unwrap().to_owned(),
        body["client_certificates"][0].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn only_clients_with_a_certificate_from_the_client_ca_get_through_and_only_over_tls() {
    let pki = Pki::new();
    let app = spawn_mtls(&pki, 0).await;
    let healthz = format!("{}/healthz", app.address);
    let response = pki.client(Some(&pki.unbound)).get(&healthz).send().await;
    assert_eq!(
        response.unwrap().status(),
        200,
        "a certificate from the client CA gets through"
    );
    let anonymous = pki.client(None).get(&healthz).send().await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    let stranger = pki.client(Some(&pki.stranger)).get(&healthz).send().await;
    assert!(
        stranger.is_err(),
        "a certificate from another CA: {stranger:?}"
    );
    let plain = reqwest::Client::new()
        .get(healthz.replacen("https://", "http://", 1))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP to the TLS port: {plain:?}");
}

#[tokio::test]
async fn a_bound_token_works_only_with_its_own_certificate() {
    let pki = Pki::new();
    // A cache, so that the second refusal below comes from a cached party.
    let app = spawn_mtls(&pki, 60).await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let admin = app.party(Role::Admin, &[]).await;
    let (token_a, fingerprint_a) = register(&app, &admin, "facility", &pki.desk_a.cert_pem).await;
    let (token_b, _) = register(&app, &admin, "claims", &pki.desk_b.cert_pem).await;
    assert_eq!(fingerprint_a, pki.desk_a.sha256());
    let (desk_a, desk_b) = (pki.client(Some(&pki.desk_a)), pki.client(Some(&pki.desk_b)));
    let disclosures = app.count("disclosures").await;

    for (client, why) in [
        (&desk_b, "another party's certificate"),
        (&app.http, "an unbound certificate"),
    ] {
        let (status, body) = check(&app, client, &token_a).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["error"]["code"], "auth.certificate_mismatch", "{why}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("certificate registered"),
            "{body}"
        );
    }
    assert_eq!(
        app.count("disclosures").await,
        disclosures,
        "a refused request discloses nothing"
    );

    let (status, body) = check(&app, &desk_a, &token_a).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["validity"], 1);
    assert!(body["check_id"].is_string());
    let (status, _) = check(&app, &desk_b, &token_b).await;
    assert_eq!(status, 200);
    // A's party is cached now; the certificate is still checked on every request.
    let (status, body) = check(&app, &desk_b, &token_a).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth.certificate_mismatch"))
    );
    // A party with no certificate of its own works with any certificate the handshake accepts.
    let claims = app.party(Role::Claims, &[]).await;
    let (status, _) = check(&app, &desk_a, &claims).await;
    assert_eq!(status, 200);
    assert_eq!(app.count("disclosures").await, disclosures + 3);
}

#[tokio::test]
async fn over_plain_http_a_bound_token_is_refused_and_a_bad_pem_changes_nothing() {
    let pki = Pki::new();
    let app = spawn_app().await;
    let admin = app.party(Role::Admin, &[]).await;
    let parties = app.count("parties").await;
    let damaged = pki.desk_a.cert_pem.replacen("MII", "M*I", 1);
    for (pem, why) in [
        ("not a certificate", "no PEM"),
        (damaged.as_str(), "damaged base64"),
        (pki.desk_a.key_pem.as_str(), "a key, not a certificate"),
    ] {
        let response = app
            .post_json(
                "/v1/parties",
                &admin,
                &json!({"role": "claims", "client_certificate": pem}),
            )
            .await;
        assert_eq!(response.status(), 400, "{why}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "client_certificate.format", "{why}");
        assert_eq!(body["error"]["field"], "client_certificate", "{why}");
        assert!(
            !body.to_string().contains("PRIVATE KEY"),
            "the input is not echoed"
        );
    }
    assert_eq!(app.count("parties").await, parties, "nothing registered");

    let (token, _) = register(&app, &admin, "claims", &pki.desk_a.cert_pem).await;
    let (status, body) = check(&app, &app.http, &token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "auth.certificate_mismatch");
}
